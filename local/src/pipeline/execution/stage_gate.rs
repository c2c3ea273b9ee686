//! Executions of one pipeline entering its stages, as the pipeline's `ExecutionMode` lets
//! them when several run at once (CodePipeline V2):
//!
//! - `SUPERSEDED`: a stage holds one execution at a time; an execution waits at the boundary
//!   while the stage is busy, and when a newer one arrives at the same boundary the older
//!   waiting one is superseded there (it ends `SUPERSEDED`). An execution inside a stage is
//!   never stopped by a newer one.
//! - `QUEUED`: a stage holds one execution at a time; the waiting ones enter in the order they
//!   arrived, none superseded.
//! - `PARALLEL`: executions are independent; no stage is held.
//!
//! The gates live in the process that holds the state folder, shared by every execution it
//! runs, its own and those other `run`s join to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What an execution waiting at a stage boundary is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// The stage is this execution's until it leaves.
    Entered,
    /// A newer execution arrived at the boundary: this one ends here (`SUPERSEDED` mode).
    Superseded {
        /// The newer execution.
        by: String,
    },
}

/// The stage gates of every pipeline this process runs.
#[derive(Clone, Default)]
pub struct StageGates {
    state: Arc<Mutex<HashMap<String, PipelineGates>>>,
    changed: Arc<Notify>,
}

/// One pipeline's stages: who is inside, who waits (in arrival order), who was superseded.
#[derive(Default)]
struct PipelineGates {
    inside: HashMap<String, String>,
    waiting: HashMap<String, Vec<String>>,
    superseded: HashMap<String, String>,
}

impl StageGates {
    /// Waits until `execution` may enter `stage` of `pipeline` under `mode` (the pipeline's
    /// `ExecutionMode`), or is superseded while it waits.
    pub async fn enter(&self, pipeline: &str, mode: &str, stage: &str, execution: &str) -> Entry {
        if mode == "PARALLEL" {
            return Entry::Entered;
        }
        {
            let mut state = self.state.lock().expect("stage gates");
            let gates = state.entry(pipeline.to_string()).or_default();
            let queue = gates.waiting.entry(stage.to_string()).or_default();
            if mode == "SUPERSEDED" {
                for older in queue.drain(..) {
                    gates.superseded.insert(older, execution.to_string());
                }
            }
            gates
                .waiting
                .entry(stage.to_string())
                .or_default()
                .push(execution.to_string());
        }
        self.changed.notify_waiters();
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = self.state.lock().expect("stage gates");
                let gates = state.entry(pipeline.to_string()).or_default();
                if let Some(by) = gates.superseded.remove(execution) {
                    return Entry::Superseded { by };
                }
                let first = gates
                    .waiting
                    .get(stage)
                    .and_then(|q| q.first())
                    .is_some_and(|first| first == execution);
                if first && !gates.inside.contains_key(stage) {
                    gates.waiting.get_mut(stage).map(|q| q.remove(0));
                    gates
                        .inside
                        .insert(stage.to_string(), execution.to_string());
                    return Entry::Entered;
                }
            }
            notified.await;
        }
    }

    /// `execution` leaves `stage` (done, failed or stopped), letting the next one in.
    pub fn leave(&self, pipeline: &str, stage: &str, execution: &str) {
        {
            let mut state = self.state.lock().expect("stage gates");
            if let Some(gates) = state.get_mut(pipeline) {
                if gates.inside.get(stage).is_some_and(|e| e == execution) {
                    gates.inside.remove(stage);
                }
            }
        }
        self.changed.notify_waiters();
    }

    /// The execution inside `stage` of `pipeline`, if any (what a waiting one waits for).
    pub fn occupant(&self, pipeline: &str, stage: &str) -> Option<String> {
        let state = self.state.lock().expect("stage gates");
        state.get(pipeline)?.inside.get(stage).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(30)).await;
    }

    #[tokio::test]
    async fn superseded_mode_ends_the_older_waiting_execution_at_the_boundary() {
        let gates = StageGates::default();
        assert_eq!(
            gates.enter("p", "SUPERSEDED", "Build", "a").await,
            Entry::Entered
        );
        let b = tokio::spawn({
            let gates = gates.clone();
            async move { gates.enter("p", "SUPERSEDED", "Build", "b").await }
        });
        settle().await;
        let c = tokio::spawn({
            let gates = gates.clone();
            async move { gates.enter("p", "SUPERSEDED", "Build", "c").await }
        });
        settle().await;
        assert_eq!(b.await.unwrap(), Entry::Superseded { by: "c".into() });
        // a is inside and stays until it leaves; then c enters.
        assert!(!c.is_finished());
        gates.leave("p", "Build", "a");
        assert_eq!(c.await.unwrap(), Entry::Entered);
        assert_eq!(gates.occupant("p", "Build").as_deref(), Some("c"));
    }

    #[tokio::test]
    async fn queued_mode_lets_waiting_executions_in_one_at_a_time_in_order() {
        let gates = StageGates::default();
        assert_eq!(
            gates.enter("p", "QUEUED", "Build", "a").await,
            Entry::Entered
        );
        let mut waiting = Vec::new();
        for id in ["b", "c"] {
            waiting.push(tokio::spawn({
                let gates = gates.clone();
                async move { gates.enter("p", "QUEUED", "Build", id).await }
            }));
            settle().await;
        }
        gates.leave("p", "Build", "a");
        settle().await;
        assert_eq!(gates.occupant("p", "Build").as_deref(), Some("b"));
        assert!(!waiting[1].is_finished());
        gates.leave("p", "Build", "b");
        settle().await;
        assert_eq!(gates.occupant("p", "Build").as_deref(), Some("c"));
        for handle in waiting {
            assert_eq!(handle.await.unwrap(), Entry::Entered);
        }
    }

    #[tokio::test]
    async fn parallel_mode_holds_no_stage_and_pipelines_do_not_share_gates() {
        let gates = StageGates::default();
        assert_eq!(
            gates.enter("p", "PARALLEL", "Build", "a").await,
            Entry::Entered
        );
        assert_eq!(
            gates.enter("p", "PARALLEL", "Build", "b").await,
            Entry::Entered
        );
        assert_eq!(
            gates.enter("p", "QUEUED", "Build", "c").await,
            Entry::Entered
        );
        assert_eq!(
            gates.enter("q", "QUEUED", "Build", "d").await,
            Entry::Entered
        );
    }
}
