//! What is being released, for the approval message: the execution's source revisions, what
//! started it, and the results of its earlier actions (`GetPipelineExecution`,
//! `ListActionExecutions`). Best effort within the lookup budget: what cannot be read is left
//! out, and the approval is posted anyway.

use pipeline_ext::slack::mrkdwn::{escape, join_within, link, truncate};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Slack's limit for a section's text.
const MAX_SECTION_CHARS: usize = 3_000;
/// One action's summary in the message.
const MAX_ACTION_SUMMARY: usize = 300;

/// The execution an approval belongs to, as far as it could be read.
#[derive(Debug, Default)]
pub struct ExecutionContext {
    pub execution_id: String,
    /// `(artifact, revision id, summary, url)`.
    pub revisions: Vec<(String, String, String, Option<String>)>,
    /// `(trigger type, detail)`.
    pub trigger: Option<(String, String)>,
    /// `(stage, action, status, summary)`, in the order they ran.
    pub actions: Vec<(String, String, String, String)>,
}

/// Reads the execution's revisions, trigger and earlier actions.
pub async fn read(
    codepipeline: &aws_sdk_codepipeline::Client,
    pipeline: &str,
    execution_id: &str,
    deadline: Instant,
) -> ExecutionContext {
    let mut context = ExecutionContext {
        execution_id: execution_id.to_string(),
        ..Default::default()
    };
    let execution = codepipeline
        .get_pipeline_execution()
        .pipeline_name(pipeline)
        .pipeline_execution_id(execution_id)
        .send();
    let actions = codepipeline
        .list_action_executions()
        .pipeline_name(pipeline)
        .filter(
            aws_sdk_codepipeline::types::ActionExecutionFilter::builder()
                .pipeline_execution_id(execution_id)
                .build(),
        )
        .max_results(100)
        .send();
    let (execution, actions) = tokio::join!(
        tokio::time::timeout_at(deadline, execution),
        tokio::time::timeout_at(deadline, actions)
    );
    match execution {
        Ok(Ok(output)) => {
            if let Some(execution) = output.pipeline_execution() {
                context.revisions = execution
                    .artifact_revisions()
                    .iter()
                    .map(|r| {
                        (
                            r.name().unwrap_or_default().to_string(),
                            r.revision_id().unwrap_or_default().to_string(),
                            r.revision_summary().unwrap_or_default().to_string(),
                            r.revision_url().map(str::to_owned),
                        )
                    })
                    .collect();
                context.trigger = execution.trigger().map(|t| {
                    (
                        t.trigger_type()
                            .map(|k| k.as_str().to_string())
                            .unwrap_or_default(),
                        t.trigger_detail().unwrap_or_default().to_string(),
                    )
                });
            }
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %pipeline_ext::sdk::SdkFailure::from_sdk("CodePipeline", "GetPipelineExecution", &err), "execution details left out of the approval message")
        }
        Err(_) => tracing::warn!(
            "GetPipelineExecution did not answer in time; left out of the approval message"
        ),
    }
    match actions {
        Ok(Ok(output)) => {
            let mut details: Vec<_> = output.action_execution_details().iter().collect();
            details.sort_by(|a, b| {
                let at = |d: &&aws_sdk_codepipeline::types::ActionExecutionDetail| {
                    d.start_time().map(|t| t.as_secs_f64()).unwrap_or_default()
                };
                at(a).total_cmp(&at(b))
            });
            context.actions = details
                .into_iter()
                .filter(|d| {
                    d.input()
                        .and_then(|i| i.action_type_id())
                        .is_none_or(|t| t.category().as_str() != "Approval")
                })
                .map(|d| {
                    (
                        d.stage_name().unwrap_or_default().to_string(),
                        d.action_name().unwrap_or_default().to_string(),
                        d.status()
                            .map(|s| s.as_str().to_string())
                            .unwrap_or_default(),
                        d.output()
                            .and_then(|o| o.execution_result())
                            .and_then(|r| r.external_execution_summary())
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect();
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %pipeline_ext::sdk::SdkFailure::from_sdk("CodePipeline", "ListActionExecutions", &err), "earlier actions left out of the approval message")
        }
        Err(_) => tracing::warn!(
            "ListActionExecutions did not answer in time; left out of the approval message"
        ),
    }
    context
}

/// The blocks that show the context, each within Block Kit's limits.
pub fn blocks(context: &ExecutionContext) -> Vec<Value> {
    let mut blocks = Vec::new();
    let mut facts = vec![format!(
        "*Execution:* `{}`",
        escape(&context.execution_id.chars().take(36).collect::<String>())
    )];
    for (name, id, summary, url) in &context.revisions {
        let short: String = id.chars().take(12).collect();
        let shown = match url.as_deref() {
            Some(url) if url.starts_with("https://") => link(url, &short),
            _ => format!("`{}`", escape(&short)),
        };
        let summary = summary.lines().next().unwrap_or_default();
        facts.push(format!(
            "*Source* {}: {shown} {}",
            escape(name),
            escape(&truncate(summary, 200))
        ));
    }
    if let Some((kind, detail)) = &context.trigger {
        facts.push(format!(
            "*Started by:* {} {}",
            escape(kind),
            escape(&truncate(detail, 300))
        ));
    }
    {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": join_within(&facts, "\n", MAX_SECTION_CHARS)}}));
    }
    if !context.actions.is_empty() {
        let lines: Vec<String> = context
            .actions
            .iter()
            .map(|(stage, action, status, summary)| {
                let mark = match status.as_str() {
                    "Succeeded" => ":white_check_mark:",
                    "Failed" => ":x:",
                    _ => ":hourglass_flowing_sand:",
                };
                let mut line = format!("{mark} *{} / {}*", escape(stage), escape(action));
                if !summary.trim().is_empty() {
                    line.push_str(&format!(
                        ": {}",
                        escape(&truncate(&summary.replace('\n', " "), MAX_ACTION_SUMMARY))
                    ));
                }
                line
            })
            .collect();
        let text = format!(
            "*Earlier in this execution:*\n{}",
            join_within(&lines, "\n", MAX_SECTION_CHARS - 40)
        );
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_block_kit_limits_for_any_size() {
        let long = "x*<&>".repeat(2_000);
        let context = ExecutionContext {
            execution_id: "e".into(),
            revisions: vec![(
                "Src".into(),
                long.clone(),
                long.clone(),
                Some(format!("https://example.com/{long}")),
            )],
            trigger: Some(("StartPipelineExecution".into(), long.clone())),
            actions: (0..200)
                .map(|i| {
                    (
                        format!("S{i}"),
                        long.clone(),
                        "Succeeded".into(),
                        long.clone(),
                    )
                })
                .collect(),
        };
        for block in blocks(&context) {
            let text = block["text"]["text"].as_str().unwrap();
            assert!(text.chars().count() <= MAX_SECTION_CHARS, "{}", text.len());
            assert!(!text.contains("<&"), "escaped");
        }
    }
}
