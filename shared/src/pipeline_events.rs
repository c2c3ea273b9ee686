//! CodePipeline's EventBridge events (pipeline, stage and action execution state changes), as
//! one serde model: pipeline-notifier reads them, pipeline-local emits them and its console
//! folds them. Reading is tolerant the way AWS asks consumers to be: fields added later are
//! ignored, every field may be missing (the reader decides what it needs), and
//! `pipeline-execution-attempt`, which CodePipeline sends as a float (`1.0`), reads as a whole
//! number.

use serde::{Deserialize, Deserializer, Serialize};

/// `source` of every CodePipeline event.
pub const SOURCE: &str = "aws.codepipeline";

/// The three state-change `detail-type`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetailType {
    /// `CodePipeline Pipeline Execution State Change`.
    Pipeline,
    /// `CodePipeline Stage Execution State Change`.
    Stage,
    /// `CodePipeline Action Execution State Change`.
    Action,
}

impl DetailType {
    /// Every state-change detail type.
    pub const ALL: [DetailType; 3] = [Self::Pipeline, Self::Stage, Self::Action];

    /// The `detail-type` string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pipeline => "CodePipeline Pipeline Execution State Change",
            Self::Stage => "CodePipeline Stage Execution State Change",
            Self::Action => "CodePipeline Action Execution State Change",
        }
    }

    /// The detail type a `detail-type` string names; `None` for any other event.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One EventBridge event as delivered to a Lambda target.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PipelineEvent {
    /// The envelope's version, `0`.
    pub version: String,
    /// EventBridge's event id: the same for every delivery of one event.
    pub id: String,
    /// What changed (see [`DetailType`]); other values are other services' events.
    #[serde(rename = "detail-type", alias = "detailType")]
    pub detail_type: String,
    /// `aws.codepipeline` for CodePipeline's events.
    pub source: String,
    /// The pipeline's account.
    pub account: String,
    /// When the change happened (RFC 3339, whole seconds).
    pub time: String,
    /// The pipeline's region.
    pub region: String,
    /// The pipeline's ARN.
    pub resources: Vec<String>,
    /// The change.
    pub detail: EventDetail,
}

/// The `detail` of a state change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EventDetail {
    /// The pipeline's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// The execution.
    #[serde(rename = "execution-id", skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// When the execution started (RFC 3339 with milliseconds).
    #[serde(rename = "start-time", skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// The stage, for stage and action changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The action, for action changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// `STARTED`, `SUCCEEDED`, `FAILED`, `CANCELED`, `SUPERSEDED`, `RESUMED`, `STOPPING`,
    /// `STOPPED`, `ABANDONED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The action's region, for action changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The pipeline structure's version.
    #[serde(
        deserialize_with = "whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<u32>,
    /// Which attempt of the execution: 2 and up while a failed stage is retried.
    #[serde(
        rename = "pipeline-execution-attempt",
        deserialize_with = "whole_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub attempt: Option<u32>,
    /// What started the execution, on its `STARTED` pipeline change.
    #[serde(rename = "execution-trigger", skip_serializing_if = "Option::is_none")]
    pub trigger: Option<ExecutionTrigger>,
    /// The action's type, for action changes.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub action_type: Option<ActionType>,
    /// How the action ended, for ended action changes.
    #[serde(rename = "execution-result", skip_serializing_if = "Option::is_none")]
    pub result: Option<ExecutionResult>,
}

/// What started an execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionTrigger {
    /// `StartPipelineExecution`, `Webhook`, `CloudWatchEvent`, `AutomatedRollback`…
    #[serde(rename = "trigger-type")]
    pub kind: String,
    /// Who or what: an ARN, a commit, the failed execution of a rollback.
    #[serde(rename = "trigger-detail")]
    pub detail: String,
}

/// An action's type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActionType {
    /// `AWS`, `ThirdParty`, `Custom`.
    pub owner: String,
    /// `CodeBuild`, `Lambda`, `Manual`…
    pub provider: String,
    /// `Source`, `Build`, `Test`, `Deploy`, `Approval`, `Invoke`, `Compute`.
    pub category: String,
    /// The type's version, `1`.
    pub version: String,
}

/// How an action ended.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecutionResult {
    /// The provider's summary.
    #[serde(
        rename = "external-execution-summary",
        skip_serializing_if = "Option::is_none"
    )]
    pub summary: Option<String>,
    /// A link to the run in the provider's console.
    #[serde(
        rename = "external-execution-url",
        skip_serializing_if = "Option::is_none"
    )]
    pub url: Option<String>,
    /// The provider's id of the run.
    #[serde(
        rename = "external-execution-id",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// `JobFailed`, `ConfigurationError`, `PermissionError`… on a failure.
    #[serde(rename = "error-code", skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl PipelineEvent {
    /// Reads an event; `Err` only when a field has a type no CodePipeline event uses.
    pub fn from_value(event: &serde_json::Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(event)
    }

    /// Which state change this is; `None` for another service's event or another kind.
    pub fn state_change(&self) -> Option<DetailType> {
        (self.source == SOURCE)
            .then(|| DetailType::parse(&self.detail_type))
            .flatten()
    }

    /// `time` in milliseconds since the epoch, when it is RFC 3339.
    pub fn time_ms(&self) -> Option<i64> {
        aws_smithy_types::DateTime::from_str(
            &self.time,
            aws_smithy_types::date_time::Format::DateTime,
        )
        .ok()?
        .to_millis()
        .ok()
    }
}

/// `1`, `1.0` and `"1"` are 1 (attempts and versions); a negative, fractional or absurd attempt is none.
fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .and_then(|n| u32::try_from(n).ok()),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The shape of the samples in AWS's "Monitoring CodePipeline events" page, with the
    /// fields it documents for each level (`start-time`, `input-artifacts`…, which this model
    /// ignores but must tolerate).
    fn documented_action_event() -> serde_json::Value {
        json!({
            "version": "0", "id": "01234567-0123-0123-0123-012345678901",
            "detail-type": "CodePipeline Action Execution State Change",
            "source": "aws.codepipeline", "account": "123456789012",
            "time": "2020-01-24T22:03:44Z", "region": "us-east-1",
            "resources": ["arn:aws:codepipeline:us-east-1:123456789012:myPipeline"],
            "detail": {
                "pipeline": "myPipeline", "execution-id": "12345678-1234-5678-abcd-12345678abcd",
                "start-time": "2020-01-24T22:03:00.000Z",
                "stage": "Deploy", "action": "myAction", "state": "FAILED",
                "region": "us-west-2", "type": {"owner": "AWS", "provider": "CodeDeploy", "category": "Deploy", "version": "1"},
                "execution-result": {
                    "external-execution-url": "https://us-west-2.console.aws.amazon.com/codedeploy/home?#/deployments/d-EXAMPLE",
                    "external-execution-summary": "Deployment Failed",
                    "external-execution-id": "d-EXAMPLE", "error-code": "JobFailed"
                },
                "input-artifacts": [{"name": "SourceArtifact", "s3location": {"bucket": "b", "key": "k"}}],
                "output-artifacts": [],
                "version": 1.0, "pipeline-execution-attempt": 2.0
            }
        })
    }

    #[test]
    fn reads_the_documented_action_event() {
        let event = PipelineEvent::from_value(&documented_action_event()).unwrap();
        assert_eq!(event.state_change(), Some(DetailType::Action));
        assert_eq!(event.detail.attempt, Some(2));
        assert_eq!(
            event.detail.action_type.as_ref().unwrap().category,
            "Deploy"
        );
        let result = event.detail.result.as_ref().unwrap();
        assert_eq!(result.error_code.as_deref(), Some("JobFailed"));
        assert_eq!(result.external_id.as_deref(), Some("d-EXAMPLE"));
        assert_eq!(event.time_ms(), Some(1_579_903_424_000));
    }

    #[test]
    fn reads_every_sample_event_of_the_repository() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let mut read = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if !path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("eventbridge-")
            {
                continue;
            }
            let value: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let event = PipelineEvent::from_value(&value).unwrap();
            assert!(event.state_change().is_some(), "{}", path.display());
            assert!(event.detail.execution_id.is_some() && event.time_ms().is_some());
            read += 1;
        }
        assert!(read >= 4, "only {read} samples under events/");
    }

    #[test]
    fn what_it_writes_reads_back_the_same_and_omits_what_is_absent() {
        let event = PipelineEvent::from_value(&documented_action_event()).unwrap();
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(PipelineEvent::from_value(&written).unwrap(), event);
        let stage = PipelineEvent {
            detail_type: DetailType::Stage.as_str().into(),
            detail: EventDetail {
                stage: Some("Build".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let written = serde_json::to_value(&stage).unwrap();
        assert_eq!(written["detail"], json!({"stage": "Build"}));
    }

    #[test]
    fn other_events_are_not_state_changes() {
        let mut value = documented_action_event();
        value["detail-type"] = json!("CodePipeline Stage Execution Retry");
        assert_eq!(
            PipelineEvent::from_value(&value).unwrap().state_change(),
            None
        );
        value["detail-type"] = json!(DetailType::Action.as_str());
        value["source"] = json!("aws.ec2");
        assert_eq!(
            PipelineEvent::from_value(&value).unwrap().state_change(),
            None
        );
    }

    #[test]
    fn attempts_read_as_whole_numbers_only() {
        for (attempt, read) in [
            (json!(1), Some(1)),
            (json!(3.0), Some(3)),
            (json!("2"), Some(2)),
            (json!(1.5), None),
            (json!(-1), None),
            (json!(1e20), None),
            (json!(null), None),
        ] {
            let mut value = documented_action_event();
            value["detail"]["pipeline-execution-attempt"] = attempt.clone();
            let event = PipelineEvent::from_value(&value).unwrap();
            assert_eq!(event.detail.attempt, read, "{attempt}");
        }
    }

    proptest::proptest! {
        /// Any JSON in any field either reads or is refused; never a panic.
        #[test]
        fn reading_never_panics(field in "[a-z-]{1,20}", text in "\\PC{0,40}", n in proptest::num::f64::ANY) {
            let mut value = documented_action_event();
            value["detail"][field.as_str()] = json!(text);
            let _ = PipelineEvent::from_value(&value);
            value["detail"]["pipeline-execution-attempt"] = json!(n);
            let _ = PipelineEvent::from_value(&value);
            value[field.as_str()] = json!(n);
            let _ = PipelineEvent::from_value(&value);
        }
    }
}
