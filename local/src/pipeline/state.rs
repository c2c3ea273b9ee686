//! The states a pipeline, stage or action execution goes through, as CodePipeline names them.

/// An execution's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutionState {
    /// Running.
    Started,
    /// Finished successfully.
    Succeeded,
    /// Finished with a failure.
    Failed,
    /// Not run (an action type pipeline-local does not emulate).
    Abandoned,
    /// Ended at a stage boundary by a newer execution (`SUPERSEDED` mode).
    Superseded,
}

impl ExecutionState {
    /// The state in EventBridge events and in what `run` prints (`SUCCEEDED`).
    pub fn event_name(self) -> &'static str {
        match self {
            ExecutionState::Started => "STARTED",
            ExecutionState::Succeeded => "SUCCEEDED",
            ExecutionState::Failed => "FAILED",
            ExecutionState::Abandoned => "ABANDONED",
            ExecutionState::Superseded => "SUPERSEDED",
        }
    }

    /// The status in the CodePipeline API (`GetPipelineExecution`: `Succeeded`).
    pub fn api_name(self) -> &'static str {
        match self {
            ExecutionState::Started => "InProgress",
            ExecutionState::Succeeded => "Succeeded",
            ExecutionState::Failed => "Failed",
            ExecutionState::Abandoned => "Stopped",
            ExecutionState::Superseded => "Superseded",
        }
    }
}

impl std::fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.event_name())
    }
}
