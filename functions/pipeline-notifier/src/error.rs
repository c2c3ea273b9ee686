//! What a pipeline-notifier invocation fails with. Each variant has a stable `errorType`
//! (README, "pipeline-notifier"): Lambda retries the event, and an alarm or a dead-letter
//! queue can tell a Slack outage from a table that is gone.

use pipeline_ext::event_runner::EventFailure;

/// Why the event was not fully shown; Lambda's retry (or the next event) finishes it.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `ExecutionsTableUnavailable`: the executions table could not be read or written.
    #[error("executions table: {0}")]
    Table(#[from] pipeline_ext::executions_table::TableError),
    /// `ExecutionWriteContended`: other invocations kept changing the execution's item.
    #[error("execution {execution}: gave up after {attempts} conflicting writes")]
    Contended {
        /// The execution.
        execution: String,
        /// Conditional writes tried.
        attempts: usize,
    },
    /// `SlackSecretUnavailable`: the Slack secret could not be read.
    #[error("Slack secret: {0}")]
    Secret(String),
    /// `SlackUndelivered`: Slack did not take the message or a reply.
    #[error("Slack: {0}")]
    Slack(String),
    /// `FailureNoticeUndelivered`: a failure notice reached neither Slack nor the fallback topic.
    #[error("failure notice not delivered: {0}")]
    NoticeLost(String),
}

impl EventFailure for NotifyError {
    fn error_type(&self) -> &'static str {
        match self {
            NotifyError::Table(_) => "ExecutionsTableUnavailable",
            NotifyError::Contended { .. } => "ExecutionWriteContended",
            NotifyError::Secret(_) => "SlackSecretUnavailable",
            NotifyError::Slack(_) => "SlackUndelivered",
            NotifyError::NoticeLost(_) => "FailureNoticeUndelivered",
        }
    }
}
