//! What a handler returns: success, a continuation, or a classified failure.

use std::collections::BTreeMap;
use std::fmt;

/// The failure types CodePipeline accepts in `PutJobFailureResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The job failed (the default).
    JobFailed,
    /// The action's configuration or artifacts are wrong.
    ConfigurationError,
    /// The function was not allowed to do something.
    PermissionError,
}

impl FailureKind {
    /// The name CodePipeline expects.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::JobFailed => "JobFailed",
            FailureKind::ConfigurationError => "ConfigurationError",
            FailureKind::PermissionError => "PermissionError",
        }
    }
}

/// A failure a handler reports; the message is what the pipeline's user reads in the console.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobError {
    /// The failure type.
    pub kind: FailureKind,
    /// What the pipeline's user reads in the console.
    pub message: String,
}

impl JobError {
    /// A failure of that type.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    /// A `JobFailed` failure.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(FailureKind::JobFailed, message)
    }
    /// A `ConfigurationError` failure.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(FailureKind::ConfigurationError, message)
    }
    /// A `PermissionError` failure.
    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(FailureKind::PermissionError, message)
    }
    /// Prefixes the message with where the failure happened (a step, a file).
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for JobError {}

/// A finished job: what the console shows and the variables later actions can use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobSuccess {
    /// `executionDetails.summary`.
    pub summary: String,
    /// Output variables for later actions (`#{Namespace.Key}`).
    pub output_variables: BTreeMap<String, String>,
}

impl JobSuccess {
    /// A success with that summary and no variables.
    pub fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
            output_variables: BTreeMap::new(),
        }
    }
    /// Adds an output variable.
    pub fn variable(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.output_variables.insert(key.into(), value.to_string());
        self
    }
}

/// What a handler hands back to the runner.
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutcome<S> {
    /// Done: report success with a summary and output variables.
    Succeeded(JobSuccess),
    /// Not done yet: report success with a continuation token carrying `state`; CodePipeline
    /// invokes the function again with it.
    Continue {
        /// Handed back typed on the next invocation.
        state: S,
        /// `executionDetails.summary` of this round.
        summary: String,
        /// `executionDetails.percentComplete`.
        percent_complete: Option<u8>,
    },
}
