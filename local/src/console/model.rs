//! What the console shows of a state folder's executions: the pipeline's shape, and for each
//! execution the states of its stages and actions, folded from the same EventBridge events the
//! notifier receives, plus what only the local run knows of an action (its log lines, output
//! variables, artifacts, each invocation of a continued job). Kept in the state folder
//! (`console.json`) so `pipeline-local console` shows earlier runs.

use pipeline_ext::pipeline_events::{DetailType, PipelineEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// The file in a state folder that holds the console's record.
pub const CONSOLE_FILE: &str = "console.json";

/// Executions kept: the newest ones.
const MAX_EXECUTIONS: usize = 50;

/// An action as the pipeline declares it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionShape {
    /// The action's name.
    pub name: String,
    /// `Source`, `Invoke`, `Approval`…
    pub category: String,
    /// `S3`, `Lambda`, `Manual`…
    pub provider: String,
    /// Its `RunOrder`.
    pub run_order: u64,
}

/// A stage as the pipeline declares it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageShape {
    /// The stage's name.
    pub name: String,
    /// Its actions.
    pub actions: Vec<ActionShape>,
    /// "OnFailure: ROLLBACK", "BeforeEntry: 1 rule"… as the stage header shows them.
    pub notes: Vec<String>,
}

/// An artifact an action read or wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ArtifactRef {
    /// The artifact's name.
    pub name: String,
    /// Its bucket.
    pub bucket: String,
    /// Its key.
    pub key: String,
}

/// An action's run in an execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionRun {
    /// Its stage.
    pub stage: String,
    /// The action.
    pub action: String,
    /// Its state (`STARTED`, `SUCCEEDED`…).
    pub state: String,
    /// What to show instead of the state (`NOT DEPLOYED`, `SKIPPED`), when it would mislead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown_as: Option<String>,
    /// The attempt.
    pub attempt: u32,
    /// When it started (epoch milliseconds).
    pub started_ms: Option<i64>,
    /// When it ended.
    pub finished_ms: Option<i64>,
    /// The result's summary.
    pub summary: Option<String>,
    /// The error code of a failure.
    pub error_code: Option<String>,
    /// What the run said along the way: each invocation of a continued job, snapshots…
    pub notes: Vec<String>,
    /// Its output variables.
    pub variables: Vec<(String, String)>,
    /// The artifacts it read.
    pub inputs: Vec<ArtifactRef>,
    /// The artifacts it wrote.
    pub outputs: Vec<ArtifactRef>,
    /// The function's log lines for this action (JSON lines when the function logs JSON).
    pub logs: Vec<String>,
}

/// A stage's run in an execution.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageRun {
    /// The stage's name.
    pub name: String,
    /// Its state.
    pub state: String,
    /// The attempt.
    pub attempt: u32,
    /// When it started.
    pub started_ms: Option<i64>,
    /// When it ended.
    pub finished_ms: Option<i64>,
}

/// A condition rule as checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleRun {
    /// Its stage.
    pub stage: String,
    /// `BeforeEntry` or `OnSuccess`.
    pub kind: String,
    /// The rule.
    pub rule: String,
    /// Its provider (`CloudWatchAlarm`…).
    pub provider: String,
    /// `MET`, `NOT MET` or `NOT EMULATED`.
    pub state: String,
    /// What it found.
    pub summary: String,
}

/// One execution of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionView {
    /// The execution id.
    pub id: String,
    /// `STANDARD` or `ROLLBACK`.
    pub kind: String,
    /// `trigger-type`.
    pub trigger: String,
    /// `trigger-detail`.
    pub trigger_detail: String,
    /// Its state.
    pub state: String,
    /// When it started.
    pub started_ms: Option<i64>,
    /// When it ended.
    pub finished_ms: Option<i64>,
    /// Its stages' runs.
    pub stages: Vec<StageRun>,
    /// Its actions' runs (a retried action twice).
    pub actions: Vec<ActionRun>,
    /// The condition rules checked.
    pub rules: Vec<RuleRun>,
}

impl ExecutionView {
    fn stage_mut(&mut self, name: &str) -> &mut StageRun {
        if let Some(i) = self.stages.iter().position(|s| s.name == name) {
            return &mut self.stages[i];
        }
        self.stages.push(StageRun {
            name: name.into(),
            attempt: 1,
            ..Default::default()
        });
        self.stages.last_mut().expect("just pushed")
    }

    /// Marks `stage` as where a newer execution superseded this one: it waited there and
    /// never entered.
    pub fn superseded_at(&mut self, stage: &str) {
        self.stage_mut(stage).state = "SUPERSEDED".into();
    }

    /// The latest run of an action (a retried action has one per attempt).
    pub fn action_mut(&mut self, stage: &str, action: &str) -> &mut ActionRun {
        if let Some(i) = self
            .actions
            .iter()
            .rposition(|a| a.stage == stage && a.action == action)
        {
            return &mut self.actions[i];
        }
        self.actions.push(ActionRun {
            stage: stage.into(),
            action: action.into(),
            attempt: 1,
            ..Default::default()
        });
        self.actions.last_mut().expect("just pushed")
    }
}

/// Everything the console shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsoleRecord {
    /// The pipeline's name.
    pub pipeline: String,
    /// `SUPERSEDED`, `QUEUED` or `PARALLEL`.
    pub execution_mode: String,
    /// Its stages as declared.
    pub stages: Vec<StageShape>,
    /// Oldest first.
    pub executions: Vec<ExecutionView>,
    /// The recorded Slack channel: `SlackMessage`s as JSON.
    pub slack: Vec<Value>,
}

impl ConsoleRecord {
    /// The record kept in `dir`, or an empty one.
    pub fn load(dir: &Path) -> Result<Self, String> {
        let file = dir.join(CONSOLE_FILE);
        match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "{} is not a pipeline-local console record ({e}); move it away to start afresh",
                    file.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("cannot read {}: {e}", file.display())),
        }
    }

    /// Writes the record to `dir` (a new file renamed over the old one).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let file = dir.join(CONSOLE_FILE);
        let partial = file.with_extension("json.partial");
        std::fs::write(
            &partial,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&partial, &file)
    }

    /// The execution with this id, added when new (the oldest dropped past the limit).
    pub fn execution_mut(&mut self, id: &str) -> &mut ExecutionView {
        if let Some(i) = self.executions.iter().position(|e| e.id == id) {
            return &mut self.executions[i];
        }
        self.executions.push(ExecutionView {
            id: id.into(),
            kind: "STANDARD".into(),
            state: "STARTED".into(),
            ..Default::default()
        });
        if self.executions.len() > MAX_EXECUTIONS {
            self.executions.remove(0);
        }
        self.executions.last_mut().expect("just pushed")
    }

    /// Folds one CodePipeline EventBridge event in, received at `received_ms` (events carry
    /// whole seconds; a local run's actions often take less); events of other kinds change
    /// nothing.
    pub fn apply(&mut self, event: &Value, received_ms: Option<i64>) {
        let Ok(event) = PipelineEvent::from_value(event) else {
            return;
        };
        let detail = &event.detail;
        let (Some(id), Some(state)) = (detail.execution_id.as_deref(), detail.state.as_deref())
        else {
            return;
        };
        let Some(kind) = DetailType::parse(&event.detail_type) else {
            return;
        };
        let at = received_ms.or_else(|| event.time_ms());
        let attempt = detail.attempt.unwrap_or(1);
        let execution = self.execution_mut(id);
        match kind {
            DetailType::Pipeline => {
                execution.state = state.into();
                if state == "STARTED" {
                    execution.started_ms = at;
                    let trigger = detail.trigger.clone().unwrap_or_default();
                    execution.trigger = trigger.kind;
                    execution.trigger_detail = trigger.detail;
                    if execution.trigger.ends_with("Rollback") {
                        execution.kind = "ROLLBACK".into();
                    }
                } else {
                    execution.finished_ms = at;
                }
            }
            DetailType::Stage => {
                let Some(name) = detail.stage.as_deref() else {
                    return;
                };
                let stage = execution.stage_mut(name);
                stage.state = state.into();
                stage.attempt = attempt;
                if state == "STARTED" {
                    stage.started_ms = at;
                    stage.finished_ms = None;
                } else {
                    stage.finished_ms = at;
                }
            }
            DetailType::Action => {
                let (Some(stage), Some(name)) = (detail.stage.as_deref(), detail.action.as_deref())
                else {
                    return;
                };
                let retried = execution
                    .actions
                    .iter()
                    .rev()
                    .find(|a| a.stage == stage && a.action == name)
                    .is_some_and(|a| a.attempt < attempt && state == "STARTED");
                if retried {
                    execution.actions.push(ActionRun {
                        stage: stage.into(),
                        action: name.into(),
                        ..Default::default()
                    });
                }
                let action = execution.action_mut(stage, name);
                action.state = state.into();
                action.attempt = attempt;
                if state == "STARTED" {
                    action.started_ms = at;
                } else {
                    action.finished_ms = at;
                }
                if let Some(result) = &detail.result {
                    if let Some(summary) = &result.summary {
                        action.summary = Some(summary.clone());
                    }
                    if let Some(code) = &result.error_code {
                        action.error_code = Some(code.clone());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, time: &str, detail: Value) -> Value {
        json!({"detail-type": format!("CodePipeline {kind} Execution State Change"), "time": time,
            "source": "aws.codepipeline", "detail": detail})
    }

    #[test]
    fn a_retry_attempt_sent_as_a_float_is_a_retry() {
        // CodePipeline sends `pipeline-execution-attempt` as 2.0, not 2.
        let mut record = ConsoleRecord::default();
        for (time, state, attempt) in [
            ("2026-12-03T10:00:01Z", "FAILED", json!(1.0)),
            ("2026-12-03T10:00:06Z", "STARTED", json!(2.0)),
        ] {
            let detail = json!({"execution-id": "e1", "state": state, "stage": "Deploy",
                "action": "Gate", "pipeline-execution-attempt": attempt});
            record.apply(&event("Action", time, detail), None);
        }
        let actions = &record.executions[0].actions;
        assert_eq!(actions.len(), 2, "{actions:?}");
        assert_eq!(
            (actions[1].attempt, actions[1].state.as_str()),
            (2, "STARTED")
        );
    }

    #[test]
    fn folds_events_into_stage_and_action_states() {
        let mut record = ConsoleRecord::default();
        let events = [
            event(
                "Pipeline",
                "2026-12-03T10:00:00Z",
                json!({"execution-id": "e1", "state": "STARTED",
                "execution-trigger": {"trigger-type": "AutomatedRollback", "trigger-detail": "e0"}}),
            ),
            event(
                "Stage",
                "2026-12-03T10:00:01Z",
                json!({"execution-id": "e1", "state": "STARTED", "stage": "Deploy"}),
            ),
            event(
                "Action",
                "2026-12-03T10:00:01Z",
                json!({"execution-id": "e1", "state": "STARTED", "stage": "Deploy", "action": "Gate"}),
            ),
            event(
                "Action",
                "2026-12-03T10:00:05Z",
                json!({"execution-id": "e1", "state": "FAILED", "stage": "Deploy", "action": "Gate",
                "execution-result": {"external-execution-summary": "health 404", "error-code": "JobFailed"}}),
            ),
            event(
                "Action",
                "2026-12-03T10:00:06Z",
                json!({"execution-id": "e1", "state": "STARTED", "stage": "Deploy", "action": "Gate",
                "pipeline-execution-attempt": 2}),
            ),
            event(
                "Stage",
                "2026-12-03T10:00:09Z",
                json!({"execution-id": "e1", "state": "SUCCEEDED", "stage": "Deploy", "pipeline-execution-attempt": 2}),
            ),
            json!({"detail-type": "Something Else", "detail": {"execution-id": "e1", "state": "X"}}),
        ];
        for e in &events {
            record.apply(e, None);
        }
        let execution = &record.executions[0];
        assert_eq!(execution.kind, "ROLLBACK");
        assert_eq!(execution.trigger_detail, "e0");
        assert_eq!(execution.stages[0].state, "SUCCEEDED");
        assert_eq!(execution.stages[0].attempt, 2);
        assert_eq!(
            execution.actions.len(),
            2,
            "a retried action has a run per attempt"
        );
        assert_eq!(execution.actions[0].summary.as_deref(), Some("health 404"));
        assert_eq!(execution.actions[0].state, "FAILED");
        assert_eq!(execution.actions[1].attempt, 2);
        assert_eq!(
            execution.actions[0].finished_ms.unwrap() - execution.actions[0].started_ms.unwrap(),
            4_000
        );
    }

    #[test]
    fn a_damaged_record_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONSOLE_FILE), "{not json").unwrap();
        let err = ConsoleRecord::load(dir.path()).unwrap_err();
        assert!(err.contains(CONSOLE_FILE), "{err}");
        let mut record = ConsoleRecord::default();
        record.execution_mut("e1");
        record.save(dir.path()).unwrap();
        assert_eq!(ConsoleRecord::load(dir.path()).unwrap(), record);
    }
}
