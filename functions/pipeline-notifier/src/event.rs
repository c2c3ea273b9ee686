//! CodePipeline's EventBridge events: pipeline, stage and action execution state changes.
//!
//! EventBridge delivers them at least once and in no guaranteed order. Fields AWS adds later are
//! ignored; an event of another type, or one missing what identifies its execution, is reported
//! as [`EventError`] so the caller can log why it was skipped.

use pipeline_ext::pipeline_events::{DetailType, PipelineEvent};
use serde_json::Value;

/// `detail-type` of a pipeline's state change.
pub const PIPELINE_DETAIL_TYPE: &str = DetailType::Pipeline.as_str();
/// `detail-type` of a stage's state change.
pub const STAGE_DETAIL_TYPE: &str = DetailType::Stage.as_str();
/// `detail-type` of an action's state change.
pub const ACTION_DETAIL_TYPE: &str = DetailType::Action.as_str();

/// One state change, reduced to what the Slack message shows.
#[derive(Clone, Debug, PartialEq)]
pub struct StateChange {
    /// EventBridge's event id: the same for every delivery of one event.
    pub event_id: String,
    /// The pipeline.
    pub pipeline: String,
    /// The execution.
    pub execution_id: String,
    /// The action's region, else the event's.
    pub region: String,
    /// When the change happened, in milliseconds since the epoch.
    pub at_ms: i64,
    /// Retries of a failed stage run the same execution again with a higher attempt.
    pub attempt: u32,
    /// What changed.
    pub subject: Subject,
    /// Its new state (`STARTED`, `FAILED`…).
    pub state: String,
}

/// What a state change is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    /// The whole execution; `trigger` on its `STARTED` event.
    Pipeline {
        /// What started it.
        trigger: Option<Trigger>,
    },
    /// A stage.
    Stage {
        /// The stage.
        stage: String,
    },
    /// An action.
    Action(ActionChange),
}

/// What started an execution.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trigger {
    /// `trigger-type`.
    pub kind: String,
    /// `trigger-detail`.
    pub detail: String,
}

/// An action's change.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionChange {
    /// Its stage.
    pub stage: String,
    /// The action.
    pub action: String,
    /// `type.category`: `Source`, `Build`, `Test`, `Deploy`, `Approval`, `Invoke`, `Compute`.
    pub category: String,
    /// `type.provider`: `CodeBuild`, `Lambda`, `Manual`…
    pub provider: String,
    /// The provider's summary, when it ended.
    pub summary: Option<String>,
    /// A link to the run in the provider's console.
    pub url: Option<String>,
    /// `JobFailed`, `ConfigurationError`… on a failure.
    pub error_code: Option<String>,
}

/// Why an event is skipped.
#[derive(Debug, PartialEq)]
pub enum EventError {
    /// Not a CodePipeline execution state change (another source or detail type).
    NotAStateChange {
        /// Its `source`.
        source: String,
        /// Its `detail-type`.
        detail_type: String,
    },
    /// A state-change event without a field it must have.
    Missing(&'static str),
    /// A field has a type no CodePipeline event uses.
    Malformed(String),
    /// A field CodePipeline never sends in this shape (a 5,000-character execution id): the
    /// event can never be stored or shown, so it is skipped rather than retried.
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        why: &'static str,
    },
}

/// Most characters of a pipeline, stage or action name (CodePipeline's limit).
const MAX_NAME: usize = 100;
/// Most characters of an execution or event id (CodePipeline's and EventBridge's are UUIDs).
const MAX_ID: usize = 128;

/// Checks a name or id against what CodePipeline sends: `[A-Za-z0-9.@_-]`, at most `max`
/// characters.
fn check_id(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    check_length(field, value, max)?;
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '@' | '_' | '-'))
    {
        return Err(EventError::Invalid {
            field,
            why: "has characters CodePipeline never uses",
        });
    }
    Ok(())
}

/// Checks that `value` is there, at most `max` bytes, and visible ASCII (an event id is only
/// compared and stored, never shown).
fn check_length(field: &'static str, value: &str, max: usize) -> Result<(), EventError> {
    if value.is_empty() {
        return Err(EventError::Missing(field));
    }
    if value.len() > max {
        return Err(EventError::Invalid {
            field,
            why: "is longer than CodePipeline allows",
        });
    }
    if !value.chars().all(|c| c.is_ascii_graphic()) {
        return Err(EventError::Invalid {
            field,
            why: "has characters CodePipeline never uses",
        });
    }
    Ok(())
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotAStateChange {
                source,
                detail_type,
            } => write!(
                f,
                "not a CodePipeline execution state change (source {source:?}, detail-type {detail_type:?})"
            ),
            Self::Missing(field) => write!(f, "the event has no {field}"),
            Self::Malformed(why) => write!(f, "the event is malformed: {why}"),
            Self::Invalid { field, why } => write!(f, "the event's {field} {why}"),
        }
    }
}

/// Reads one EventBridge event.
pub fn parse(event: &Value) -> Result<StateChange, EventError> {
    let envelope =
        PipelineEvent::from_value(event).map_err(|e| EventError::Malformed(e.to_string()))?;
    let Some(kind) = envelope.state_change() else {
        return Err(EventError::NotAStateChange {
            source: envelope.source,
            detail_type: envelope.detail_type,
        });
    };
    if envelope.id.is_empty() {
        return Err(EventError::Missing("id"));
    }
    let at_ms = envelope
        .time_ms()
        .ok_or(EventError::Missing("time (RFC 3339)"))?;
    let detail = envelope.detail;
    let pipeline = detail
        .pipeline
        .ok_or(EventError::Missing("detail.pipeline"))?;
    let execution_id = detail
        .execution_id
        .ok_or(EventError::Missing("detail.execution-id"))?;
    let state = detail.state.ok_or(EventError::Missing("detail.state"))?;
    check_length("id", &envelope.id, MAX_ID)?;
    check_id("detail.pipeline", &pipeline, MAX_NAME)?;
    check_id("detail.execution-id", &execution_id, MAX_ID)?;
    check_id("detail.state", &state, MAX_NAME)?;
    for (field, name) in [
        ("detail.stage", &detail.stage),
        ("detail.action", &detail.action),
    ] {
        if let Some(name) = name {
            check_id(field, name, MAX_NAME)?;
        }
    }
    let subject = match kind {
        DetailType::Pipeline => Subject::Pipeline {
            trigger: detail.trigger.map(|t| Trigger {
                kind: t.kind,
                detail: t.detail,
            }),
        },
        DetailType::Stage => Subject::Stage {
            stage: detail.stage.ok_or(EventError::Missing("detail.stage"))?,
        },
        DetailType::Action => {
            let action_type = detail.action_type.unwrap_or_default();
            let result = detail.result.unwrap_or_default();
            Subject::Action(ActionChange {
                stage: detail.stage.ok_or(EventError::Missing("detail.stage"))?,
                action: detail.action.ok_or(EventError::Missing("detail.action"))?,
                category: action_type.category,
                provider: action_type.provider,
                summary: result.summary,
                url: result.url,
                error_code: result.error_code,
            })
        }
    };
    Ok(StateChange {
        event_id: envelope.id,
        pipeline,
        execution_id,
        region: detail.region.unwrap_or(envelope.region),
        at_ms,
        attempt: detail.attempt.unwrap_or(0),
        subject,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action_failed() -> Value {
        json!({
            "version": "0", "id": "e-1", "detail-type": ACTION_DETAIL_TYPE,
            "source": "aws.codepipeline", "account": "111111111111",
            "time": "2026-11-21T10:07:15Z", "region": "eu-west-1",
            "resources": ["arn:aws:codepipeline:eu-west-1:111111111111:web"],
            "detail": {
                "pipeline": "web", "execution-id": "x-1", "stage": "Build", "action": "Compile",
                "state": "FAILED", "region": "eu-west-1", "version": 3,
                "type": {"owner": "AWS", "provider": "CodeBuild", "category": "Build", "version": "1"},
                "execution-result": {"external-execution-summary": "Build terminated with state: FAILED",
                    "external-execution-url": "https://console.aws.amazon.com/codebuild/x", "error-code": "JobFailed"},
                "pipeline-execution-attempt": 2.0
            }
        })
    }

    #[test]
    fn reads_an_action_failure_with_its_result() {
        let change = parse(&action_failed()).unwrap();
        assert_eq!(change.event_id, "e-1");
        assert_eq!(change.attempt, 2);
        assert_eq!(change.at_ms, 1_795_255_635_000);
        let Subject::Action(action) = change.subject else {
            panic!("not an action")
        };
        assert_eq!(action.category, "Build");
        assert_eq!(action.error_code.as_deref(), Some("JobFailed"));
        assert_eq!(
            action.summary.as_deref(),
            Some("Build terminated with state: FAILED")
        );
    }

    #[test]
    fn ids_and_names_codepipeline_never_sends_are_invalid_not_retried() {
        let mut event = action_failed();
        event["detail"]["execution-id"] = json!("x".repeat(5000));
        assert_eq!(
            parse(&event).unwrap_err(),
            EventError::Invalid {
                field: "detail.execution-id",
                why: "is longer than CodePipeline allows"
            }
        );
        let mut event = action_failed();
        event["detail"]["stage"] = json!("Build\nInjected");
        assert!(parse(&event)
            .unwrap_err()
            .to_string()
            .contains("detail.stage has characters CodePipeline never uses"));
        let mut event = action_failed();
        event["detail"]["execution-id"] = json!("c8d3a1b2-36f4-4c55-9a0e-1b2c3d4e5f60");
        event["id"] = json!("6a7e8ed1-d6d8-4c1e-a4b5-1a2b3c4d5e6f");
        assert!(parse(&event).is_ok());
    }

    proptest::proptest! {
        /// Whatever a delivery holds, reading it never panics, and what is read stays within
        /// the limits that keep it storable.
        #[test]
        fn reading_any_event_never_panics_and_keeps_ids_short(
            id in "\\PC{0,200}", execution in "\\PC{0,200}", stage in "\\PC{0,120}",
        ) {
            let mut event = action_failed();
            event["id"] = json!(id);
            event["detail"]["execution-id"] = json!(execution);
            event["detail"]["stage"] = json!(stage);
            if let Ok(change) = parse(&event) {
                proptest::prop_assert!(change.execution_id.len() <= MAX_ID && change.event_id.len() <= MAX_ID);
            }
        }
    }

    #[test]
    fn names_what_is_not_a_state_change() {
        let mut event = action_failed();
        event["detail-type"] = json!("CodePipeline Stage Execution Retry");
        let err = parse(&event).unwrap_err();
        assert!(err
            .to_string()
            .contains("CodePipeline Stage Execution Retry"));
        event["detail-type"] = json!(STAGE_DETAIL_TYPE);
        event["detail"]
            .as_object_mut()
            .unwrap()
            .remove("execution-id");
        assert_eq!(
            parse(&event).unwrap_err(),
            EventError::Missing("detail.execution-id")
        );
    }
}
