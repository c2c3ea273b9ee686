//! What is known about one pipeline execution, folded from its events in any order.
//!
//! Every state (of the pipeline, a stage, an action) only moves forward: a change replaces the
//! current one only when it is of a later attempt, or of the same attempt and further along
//! (STARTED < STOPPING < a final state), or as far along but later. So a late STARTED never
//! overwrites FAILED, while a retried stage (a new attempt) starts again. Ties are broken on the
//! state's name, so the same events give the same record whatever order they arrive in.

use crate::event::{StateChange, Subject, Trigger};
use serde::{Deserialize, Serialize};

/// States a pipeline, stage or action can end in.
pub const FINAL_STATES: [&str; 6] = [
    "SUCCEEDED",
    "FAILED",
    "CANCELED",
    "SUPERSEDED",
    "STOPPED",
    "ABANDONED",
];

/// A state and where it sits in the order of an execution's life.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// `STARTED`, `SUCCEEDED`, `FAILED`…
    pub state: String,
    /// The attempt it belongs to.
    pub attempt: u32,
    /// When it happened (epoch milliseconds).
    pub at_ms: i64,
}

impl Progress {
    fn from_change(change: &StateChange) -> Self {
        Self {
            state: change.state.clone(),
            attempt: change.attempt,
            at_ms: change.at_ms,
        }
    }

    /// The state is an end (nothing follows it in this attempt).
    pub fn is_final(&self) -> bool {
        FINAL_STATES.contains(&self.state.as_str())
    }

    fn rank(&self) -> u8 {
        match self.state.as_str() {
            "STARTED" | "RESUMED" => 1,
            "STOPPING" => 2,
            s if FINAL_STATES.contains(&s) => 3,
            _ => 0,
        }
    }

    fn order_key(&self) -> (u32, u8, i64, &str) {
        (self.attempt, self.rank(), self.at_ms, self.state.as_str())
    }

    fn replaced_by(&self, next: &Progress) -> bool {
        next.order_key() > self.order_key()
    }
}

/// A stage's state, and when its current attempt started.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The stage.
    pub name: String,
    /// Where it stands.
    pub progress: Progress,
    /// Start of the latest attempt seen: (attempt, time).
    pub started: Option<(u32, i64)>,
}

impl StageRecord {
    /// How long the stage took, once it has ended.
    pub fn duration_ms(&self) -> Option<i64> {
        let (attempt, started) = self.started?;
        (self.progress.is_final() && attempt == self.progress.attempt)
            .then(|| (self.progress.at_ms - started).max(0))
    }
}

/// What is known of one action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Its stage.
    pub stage: String,
    /// The action.
    pub action: String,
    /// `Source`, `Build`, `Approval`…
    pub category: String,
    /// `CodeBuild`, `Lambda`, `Manual`…
    pub provider: String,
    /// Where it stands.
    pub progress: Progress,
    /// The provider's summary.
    pub summary: Option<String>,
    /// A link to the run.
    pub url: Option<String>,
    /// The error code of a failure.
    pub error_code: Option<String>,
}

impl ActionRecord {
    /// It ended in failure.
    pub fn failed(&self) -> bool {
        self.progress.state == "FAILED"
    }

    /// It is a manual approval.
    pub fn is_approval(&self) -> bool {
        self.category == "Approval"
    }

    /// Identifies one failure: a retried action that fails again is a new one.
    pub fn failure_key(&self) -> String {
        format!("{}/{}#{}", self.stage, self.action, self.progress.attempt)
    }
}

/// Everything the parent message shows, plus the ids of the events already folded in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionRecord {
    /// The pipeline.
    pub pipeline: String,
    /// The execution.
    pub execution_id: String,
    /// The pipeline's region.
    pub region: String,
    /// The execution's own state, once an event said it.
    pub progress: Option<Progress>,
    /// The attempt and time of its latest start.
    pub started: Option<(u32, i64)>,
    /// What started it.
    pub trigger: Option<Trigger>,
    /// In the order the stages started.
    pub stages: Vec<StageRecord>,
    /// Its actions, in the order they were first seen.
    pub actions: Vec<ActionRecord>,
    /// Event ids already applied (repeat deliveries change nothing).
    pub events: Vec<String>,
}

impl ExecutionRecord {
    /// The record of an execution whose first event is `change`.
    pub fn new(change: &StateChange) -> Self {
        Self {
            pipeline: change.pipeline.clone(),
            execution_id: change.execution_id.clone(),
            region: change.region.clone(),
            ..Self::default()
        }
    }

    /// The pipeline's state; an execution seen only through stage or action events is running.
    pub fn state(&self) -> &str {
        self.progress
            .as_ref()
            .map(|p| p.state.as_str())
            .unwrap_or("STARTED")
    }

    /// Whether the event was applied already.
    pub fn seen(&self, event_id: &str) -> bool {
        self.events.iter().any(|e| e == event_id)
    }

    /// The actions that ended in failure.
    pub fn failed_actions(&self) -> impl Iterator<Item = &ActionRecord> {
        self.actions.iter().filter(|a| a.failed())
    }

    /// How long the execution took, once it has ended.
    pub fn duration_ms(&self) -> Option<i64> {
        let progress = self.progress.as_ref().filter(|p| p.is_final())?;
        let (_, started) = self.started?;
        Some((progress.at_ms - started).max(0))
    }

    /// Folds one change in. Returns false, changing nothing, for an event already folded in.
    pub fn apply(&mut self, change: &StateChange) -> bool {
        if self.seen(&change.event_id) {
            return false;
        }
        self.events.push(change.event_id.clone());
        if self.region.is_empty() {
            self.region = change.region.clone();
        }
        let next = Progress::from_change(change);
        let is_start = next.rank() == 1;
        match &change.subject {
            Subject::Pipeline { trigger } => {
                if trigger.is_some() && self.trigger.is_none() {
                    self.trigger = trigger.clone();
                }
                if is_start {
                    self.started = earliest_start(self.started, next.attempt, next.at_ms);
                }
                if self.progress.as_ref().is_none_or(|p| p.replaced_by(&next)) {
                    self.progress = Some(next);
                }
            }
            Subject::Stage { stage } => {
                let index = match self.stages.iter().position(|s| &s.name == stage) {
                    Some(index) => index,
                    None => {
                        self.stages.push(StageRecord {
                            name: stage.clone(),
                            progress: next.clone(),
                            started: None,
                        });
                        self.stages.len() - 1
                    }
                };
                let record = &mut self.stages[index];
                if is_start {
                    record.started = earliest_start(record.started, next.attempt, next.at_ms);
                }
                if record.progress.replaced_by(&next) {
                    record.progress = next;
                }
                self.stages.sort_by_key(|s| {
                    (
                        s.started.map(|(_, at)| at).unwrap_or(i64::MAX),
                        s.progress.at_ms,
                    )
                });
            }
            Subject::Action(action) => {
                let existing = self
                    .actions
                    .iter_mut()
                    .find(|a| a.stage == action.stage && a.action == action.action);
                let record = match existing {
                    Some(record) if !record.progress.replaced_by(&next) => return true,
                    Some(record) => record,
                    None => {
                        self.actions.push(ActionRecord {
                            stage: action.stage.clone(),
                            action: action.action.clone(),
                            category: String::new(),
                            provider: String::new(),
                            progress: next.clone(),
                            summary: None,
                            url: None,
                            error_code: None,
                        });
                        self.actions.last_mut().expect("just pushed")
                    }
                };
                record.progress = next;
                record.category = action.category.clone();
                record.provider = action.provider.clone();
                record.summary = action.summary.clone();
                record.url = action.url.clone();
                record.error_code = action.error_code.clone();
            }
        }
        true
    }
}

/// Keeps the start of the latest attempt (the earliest event of that attempt).
fn earliest_start(current: Option<(u32, i64)>, attempt: u32, at_ms: i64) -> Option<(u32, i64)> {
    match current {
        Some((a, at)) if a > attempt || (a == attempt && at <= at_ms) => Some((a, at)),
        _ => Some((attempt, at_ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ActionChange;

    fn change(id: &str, subject: Subject, state: &str, at_s: i64, attempt: u32) -> StateChange {
        StateChange {
            event_id: id.into(),
            pipeline: "web".into(),
            execution_id: "x".into(),
            region: "us-east-1".into(),
            at_ms: at_s * 1000,
            attempt,
            subject,
            state: state.into(),
        }
    }

    fn pipeline(id: &str, state: &str, at_s: i64) -> StateChange {
        change(id, Subject::Pipeline { trigger: None }, state, at_s, 1)
    }

    fn stage(id: &str, name: &str, state: &str, at_s: i64, attempt: u32) -> StateChange {
        change(
            id,
            Subject::Stage { stage: name.into() },
            state,
            at_s,
            attempt,
        )
    }

    #[test]
    fn a_late_started_never_overwrites_failed() {
        let mut record = ExecutionRecord::new(&pipeline("a", "FAILED", 20));
        record.apply(&pipeline("a", "FAILED", 20));
        record.apply(&pipeline("b", "STARTED", 0));
        assert_eq!(record.state(), "FAILED");
        assert_eq!(record.duration_ms(), Some(20_000));
    }

    #[test]
    fn the_same_events_in_any_order_give_the_same_record() {
        let events = [
            pipeline("p1", "STARTED", 0),
            stage("s1", "Source", "STARTED", 1, 1),
            stage("s2", "Source", "SUCCEEDED", 5, 1),
            stage("s3", "Build", "STARTED", 6, 1),
            change(
                "a1",
                Subject::Action(ActionChange {
                    stage: "Build".into(),
                    action: "Compile".into(),
                    category: "Build".into(),
                    provider: "CodeBuild".into(),
                    summary: Some("exit 2".into()),
                    url: None,
                    error_code: Some("JobFailed".into()),
                }),
                "FAILED",
                30,
                1,
            ),
            stage("s4", "Build", "FAILED", 30, 1),
            pipeline("p2", "FAILED", 31),
        ];
        let mut forward = ExecutionRecord::new(&events[0]);
        events.iter().for_each(|e| {
            forward.apply(e);
        });
        let mut backward = ExecutionRecord::new(&events[0]);
        events.iter().rev().chain(events.iter()).for_each(|e| {
            backward.apply(e);
        });
        backward.events.sort();
        forward.events.sort();
        assert_eq!(forward, backward);
        let names: Vec<_> = forward.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["Source", "Build"]);
        assert_eq!(forward.stages[1].duration_ms(), Some(24_000));
        assert_eq!(forward.failed_actions().count(), 1);
    }

    #[test]
    fn a_retried_stage_starts_again() {
        let mut record = ExecutionRecord::new(&pipeline("p", "STARTED", 0));
        record.apply(&stage("1", "Deploy", "STARTED", 10, 1));
        record.apply(&stage("2", "Deploy", "FAILED", 20, 1));
        record.apply(&stage("3", "Deploy", "STARTED", 100, 2));
        assert_eq!(record.stages[0].progress.state, "STARTED");
        record.apply(&stage("4", "Deploy", "SUCCEEDED", 130, 2));
        assert_eq!(record.stages[0].duration_ms(), Some(30_000));
    }
}
