//! A failed stage whose `OnFailure` (or `OnSuccess` condition) says `ROLLBACK`, run again in
//! an execution of its own with the inputs of its last successful execution.

use super::observer::Progress;
use super::{ArtifactLocation, Execution};
use crate::pipeline::model::{StageDef, Variables};
use crate::pipeline::ExecutionState;
use serde_json::json;

impl Execution<'_> {
    /// Rolls `stage` back: a new execution of type ROLLBACK (trigger `AutomatedRollback`) runs
    /// the stage again with the artifacts and variables of its last successful execution.
    pub(super) async fn rollback(&mut self, stage: &StageDef) {
        let codepipeline = &self.context.aws.codepipeline;
        let Some((target, inputs)) =
            codepipeline.last_success_of_stage(&self.pipeline.name, &stage.name)
        else {
            self.observers
                .tell(Progress::RollbackImpossible { stage: &stage.name })
                .await;
            return;
        };
        let failed_execution = self.execution_id.clone();
        let rollback_id = uuid::Uuid::new_v4().to_string();
        // A rollback deploys the target's revisions again.
        let (target_execution, target_sources) = codepipeline
            .execution(&self.pipeline.name, &target)
            .unwrap_or_default();
        codepipeline.register_execution_with_sources(json!({
            "pipelineName": self.pipeline.name, "pipelineExecutionId": rollback_id,
            "status": "InProgress", "pipelineVersion": 1,
            "artifactRevisions": target_execution["artifactRevisions"].as_array().cloned().unwrap_or_default(),
            "trigger": {"triggerType": "AutomatedRollback", "triggerDetail": failed_execution},
            "executionType": "ROLLBACK",
            "executionMode": self.pipeline.execution_mode,
            "rollbackMetadata": {"rollbackTargetPipelineExecutionId": target}
        }), target_sources);
        self.execution_id = rollback_id.clone();
        self.artifacts = inputs["artifacts"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, at)| {
                let text = |k: &str| at[k].as_str().unwrap_or_default().to_string();
                (
                    name.clone(),
                    ArtifactLocation {
                        bucket: text("bucket"),
                        key: text("key"),
                    },
                )
            })
            .collect();
        self.variables = Variables::default();
        for (namespace, values) in inputs["variables"].as_object().into_iter().flatten() {
            let values = values
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()));
            self.variables.set(namespace, values);
        }
        self.variables.set(
            "codepipeline",
            [("PipelineExecutionId".to_string(), rollback_id.clone())],
        );
        self.observers
            .tell(Progress::ExecutionStarted {
                execution_id: &rollback_id,
                trigger: ("AutomatedRollback", &failed_execution),
                rollback: Some((&stage.name, &target)),
            })
            .await;
        // The rollback restores what worked; gating it on the conditions that just failed
        // would keep the broken release in place.
        let state = match self.enter_stage(&stage.name).await {
            Some(by) => {
                say!("  ⤳ the rollback of {} was SUPERSEDED by {by}", stage.name);
                ExecutionState::Superseded
            }
            None => {
                let outcome = self.run_stage_with_conditions(stage, false).await;
                self.leave_stage(&stage.name);
                match outcome {
                    None => ExecutionState::Succeeded,
                    Some(_) => ExecutionState::Failed,
                }
            }
        };
        self.finish_execution(state, true).await;
    }
}
