//! Where an approval stands in its pipeline: the execution waiting on it, read from
//! `GetPipelineState` (the approval token is only ever in the state of the action waiting on it).

use crate::slack::approval::ApprovalRef;
use tokio::time::Instant;

/// Why the execution of an approval could not be told.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// CodePipeline failed or did not answer by the deadline.
    #[error("{0}")]
    Call(String),
    /// The state shows no action waiting with this token: it ended, or is not this pipeline's.
    #[error("the approval is no longer the one waiting in the pipeline's state")]
    NotWaiting,
}

/// The id of the pipeline execution waiting on `approval`.
pub async fn waiting_execution(
    codepipeline: &aws_sdk_codepipeline::Client,
    approval: &ApprovalRef,
    deadline: Instant,
) -> Result<String, StateError> {
    let state = tokio::time::timeout_at(
        deadline,
        codepipeline
            .get_pipeline_state()
            .name(&approval.pipeline)
            .send(),
    )
    .await
    .map_err(|_| StateError::Call("CodePipeline GetPipelineState did not answer in time".into()))?
    .map_err(|err| {
        StateError::Call(
            crate::sdk::SdkFailure::from_sdk("CodePipeline", "GetPipelineState", &err).to_string(),
        )
    })?;
    state
        .stage_states()
        .iter()
        .filter(|stage| stage.stage_name() == Some(approval.stage.as_str()))
        .find(|stage| {
            stage.action_states().iter().any(|action| {
                action.action_name() == Some(approval.action.as_str())
                    && action
                        .latest_execution()
                        .and_then(|e| e.token())
                        .is_some_and(|t| t == approval.token)
            })
        })
        .and_then(|stage| stage.latest_execution())
        .map(|e| e.pipeline_execution_id().to_string())
        .ok_or(StateError::NotWaiting)
}
