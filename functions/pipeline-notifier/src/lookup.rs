//! What the events do not carry, read from CodePipeline: the execution's trigger and source
//! revisions (`GetPipelineExecution`), each failed action's error, summary, log link and who
//! updated it (`ListActionExecutions`), and the stage conditions' rules that ran
//! (`ListRuleExecutions`).

use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionExecutionDetail, ActionExecutionFilter, RuleExecutionDetail, RuleExecutionFilter,
};
use pipeline_ext::sdk::SdkFailure;
use serde::{Deserialize, Serialize};

/// The source side of an execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    /// `triggerType`.
    pub trigger: Option<String>,
    /// `triggerDetail`.
    pub trigger_detail: Option<String>,
    /// The source revisions.
    pub revisions: Vec<Revision>,
    /// `STANDARD` or `ROLLBACK`.
    #[serde(default)]
    pub execution_type: Option<String>,
    /// For a rollback: the earlier execution whose artifacts it deploys again.
    #[serde(default)]
    pub rollback_target: Option<String>,
}

/// One source revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// The artifact it is.
    pub artifact: String,
    /// The revision id (a commit, an object version).
    pub id: String,
    /// Its summary (a commit message).
    pub summary: Option<String>,
    /// A link to it.
    pub url: Option<String>,
}

/// A failed action as `ListActionExecutions` describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FailureDetail {
    /// The error code.
    pub error_code: Option<String>,
    /// The error message.
    pub error_message: Option<String>,
    /// The provider's summary.
    pub summary: Option<String>,
    /// A link to the run.
    pub url: Option<String>,
    /// The log stream of a Commands action.
    pub log_stream_arn: Option<String>,
    /// Who last changed the action.
    pub updated_by: Option<String>,
}

/// The latest run of one rule of a stage's conditions, as `ListRuleExecutions` describes it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleResult {
    /// The stage.
    pub stage: String,
    /// The rule.
    pub rule: String,
    /// `CloudWatchAlarm`, `VariableCheck`, `LambdaInvoke`, …
    pub provider: String,
    /// `InProgress`, `Succeeded`, `Failed` or `Abandoned`.
    pub status: String,
    /// The rule's summary.
    pub summary: Option<String>,
}

/// Pages read of an execution's action or rule runs: an execution has at most a few hundred.
const MAX_PAGES: usize = 20;

/// Reads what the events do not carry from CodePipeline.
#[derive(Clone, Debug)]
pub struct PipelineLookup {
    client: aws_sdk_codepipeline::Client,
}

/// Longest wait for one CodePipeline answer: a hung endpoint must not hold the invocation
/// (and the lease on the execution's message) until Lambda kills it.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `call` within [`CALL_TIMEOUT`]; no answer in time is transient, tried again on a later event.
async fn within<T, E>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, aws_sdk_codepipeline::error::SdkError<E>>>,
) -> Result<T, LookupError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(result) => result.map_err(|e| classify(operation, &e)),
        Err(_) => Err(LookupError::Transient(
            SdkFailure::timed_out("CodePipeline", operation, CALL_TIMEOUT).to_string(),
        )),
    }
}

/// Whether a failed lookup is worth trying again on a later event.
#[derive(Debug)]
pub enum LookupError {
    /// The execution or pipeline is gone, or the role may not read it: trying again won't help.
    Permanent(String),
    /// CodePipeline failed or did not answer; worth trying again.
    Transient(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Permanent(m) | Self::Transient(m) => f.write_str(m),
        }
    }
}

impl PipelineLookup {
    /// The lookups through this client.
    pub fn new(client: aws_sdk_codepipeline::Client) -> Self {
        Self { client }
    }

    /// The execution's trigger and source revisions.
    pub async fn source(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<SourceInfo, LookupError> {
        let output = within(
            "GetPipelineExecution",
            self.client
                .get_pipeline_execution()
                .pipeline_name(pipeline)
                .pipeline_execution_id(execution_id)
                .send(),
        )
        .await?;
        let Some(execution) = output.pipeline_execution else {
            return Ok(SourceInfo::default());
        };
        let trigger = execution.trigger.as_ref();
        Ok(SourceInfo {
            execution_type: execution
                .execution_type
                .as_ref()
                .map(|t| t.as_str().to_string()),
            rollback_target: execution
                .rollback_metadata
                .as_ref()
                .and_then(|m| m.rollback_target_pipeline_execution_id.clone()),
            trigger: trigger
                .and_then(|t| t.trigger_type.as_ref())
                .map(|t| t.as_str().to_string()),
            trigger_detail: trigger.and_then(|t| t.trigger_detail.clone()),
            revisions: execution
                .artifact_revisions
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| {
                    Some(Revision {
                        artifact: r.name.unwrap_or_default(),
                        id: r.revision_id?,
                        summary: r
                            .revision_summary
                            .map(|s| pipeline_ext::source_revision::commit_message(&s)),
                        url: r.revision_url,
                    })
                })
                .collect(),
        })
    }

    /// The execution an automated rollback answers: the latest `Failed` execution started
    /// before it (`ListPipelineExecutions`, newest first; CodePipeline starts the rollback
    /// right after the stage fails).
    pub async fn failed_before(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<Option<String>, LookupError> {
        let output = within(
            "ListPipelineExecutions",
            self.client
                .list_pipeline_executions()
                .pipeline_name(pipeline)
                .max_results(20)
                .send(),
        )
        .await?;
        let summaries = output.pipeline_execution_summaries();
        let Some(position) = summaries
            .iter()
            .position(|s| s.pipeline_execution_id() == Some(execution_id))
        else {
            return Ok(None);
        };
        Ok(summaries[position + 1..]
            .iter()
            .find(|s| s.status().map(|st| st.as_str()) == Some("Failed"))
            .and_then(|s| s.pipeline_execution_id().map(str::to_owned)))
    }

    /// The latest failed run of each (stage, action) of the execution.
    pub async fn failures(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<Vec<(String, String, FailureDetail)>, LookupError> {
        let mut details: Vec<ActionExecutionDetail> = Vec::new();
        let mut next_token = None;
        for _ in 0..MAX_PAGES {
            let output = within(
                "ListActionExecutions",
                self.client
                    .list_action_executions()
                    .pipeline_name(pipeline)
                    .filter(
                        ActionExecutionFilter::builder()
                            .pipeline_execution_id(execution_id)
                            .build(),
                    )
                    .set_next_token(next_token)
                    .send(),
            )
            .await?;
            details.extend(output.action_execution_details.unwrap_or_default());
            next_token = output.next_token;
            if next_token.is_none() {
                break;
            }
        }
        details.retain(|d| d.status.as_ref().is_some_and(|s| s.as_str() == "Failed"));
        details.sort_by_key(|d| d.last_update_time.map(|t| t.to_millis().unwrap_or(0)));
        let mut failures: Vec<(String, String, FailureDetail)> = Vec::new();
        for detail in details {
            let stage = detail.stage_name.clone().unwrap_or_default();
            let action = detail.action_name.clone().unwrap_or_default();
            let result = detail
                .output
                .as_ref()
                .and_then(|o| o.execution_result.as_ref());
            let failure = FailureDetail {
                error_code: result
                    .and_then(|r| r.error_details.as_ref())
                    .and_then(|e| e.code.clone()),
                error_message: result
                    .and_then(|r| r.error_details.as_ref())
                    .and_then(|e| e.message.clone()),
                summary: result.and_then(|r| r.external_execution_summary.clone()),
                url: result.and_then(|r| r.external_execution_url.clone()),
                log_stream_arn: result.and_then(|r| r.log_stream_arn.clone()),
                updated_by: detail.updated_by.clone(),
            };
            // Sorted oldest first, so the latest run of an action replaces earlier ones.
            failures.retain(|(s, a, _)| !(s == &stage && a == &action));
            failures.push((stage, action, failure));
        }
        Ok(failures)
    }

    /// The latest run of each (stage, rule) of the execution's stage conditions, in the order
    /// they ran; none for a pipeline without conditions.
    pub async fn rules(
        &self,
        pipeline: &str,
        execution_id: &str,
    ) -> Result<Vec<RuleResult>, LookupError> {
        let mut details: Vec<RuleExecutionDetail> = Vec::new();
        let mut next_token = None;
        for _ in 0..MAX_PAGES {
            let output = within(
                "ListRuleExecutions",
                self.client
                    .list_rule_executions()
                    .pipeline_name(pipeline)
                    .filter(
                        RuleExecutionFilter::builder()
                            .pipeline_execution_id(execution_id)
                            .build(),
                    )
                    .set_next_token(next_token)
                    .send(),
            )
            .await?;
            details.extend(output.rule_execution_details.unwrap_or_default());
            next_token = output.next_token;
            if next_token.is_none() {
                break;
            }
        }
        details.sort_by_key(|d| d.last_update_time.map(|t| t.to_millis().unwrap_or(0)));
        let mut rules: Vec<RuleResult> = Vec::new();
        for detail in details {
            let result = detail
                .output
                .as_ref()
                .and_then(|o| o.execution_result.as_ref());
            let summary = result
                .and_then(|r| r.error_details.as_ref())
                .and_then(|e| e.message.clone())
                .or_else(|| result.and_then(|r| r.external_execution_summary.clone()));
            let rule = RuleResult {
                stage: detail.stage_name.unwrap_or_default(),
                rule: detail.rule_name.unwrap_or_default(),
                provider: detail
                    .input
                    .and_then(|i| i.rule_type_id)
                    .map(|t| t.provider)
                    .unwrap_or_default(),
                status: detail
                    .status
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                summary,
            };
            // Oldest first, so a later run of a rule (a retried stage) replaces earlier ones.
            rules.retain(|r| !(r.stage == rule.stage && r.rule == rule.rule));
            rules.push(rule);
        }
        Ok(rules)
    }
}

fn classify<E>(
    operation: &'static str,
    err: &aws_sdk_codepipeline::error::SdkError<E>,
) -> LookupError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = SdkFailure::from_sdk("CodePipeline", operation, err);
    if failure.is_transient() {
        LookupError::Transient(failure.to_string())
    } else {
        LookupError::Permanent(failure.to_string())
    }
}
