//! What an approval-notifier invocation fails with. Each variant has a stable `errorType`:
//! SNS retries the notification, and what reaches a dead-letter queue says why.

use pipeline_ext::event_runner::EventFailure;

/// Why an approval request was not delivered (yet).
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// `ApprovalLedgerUnavailable`: the executions table could not be used to claim the approval.
    #[error("executions table: {0}")]
    Ledger(#[from] pipeline_ext::executions_table::TableError),
    /// `ApprovalPostInProgress`: another delivery claimed the approval and has not posted it;
    /// a retry after the lease posts it if that delivery died.
    #[error("approval {approval}: another delivery claimed it {age} s ago and has not posted it yet; a retry after the {lease} s lease posts it if that delivery died")]
    InProgress {
        /// `pipeline / stage / action`.
        approval: String,
        /// Seconds since the claim.
        age: u64,
        /// The claim's lease in seconds.
        lease: u64,
    },
    /// `ApprovalNotDelivered`: neither Slack nor the fallback topic took the request.
    #[error("approval request not delivered: {0}")]
    NotDelivered(String),
    /// Several records of one SNS event failed; the first one's type is the invocation's.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Several(Vec<DeliveryError>),
}

impl EventFailure for DeliveryError {
    fn error_type(&self) -> &'static str {
        match self {
            DeliveryError::Ledger(_) => "ApprovalLedgerUnavailable",
            DeliveryError::InProgress { .. } => "ApprovalPostInProgress",
            DeliveryError::NotDelivered(_) => "ApprovalNotDelivered",
            DeliveryError::Several(all) => all
                .first()
                .map_or("ApprovalNotDelivered", EventFailure::error_type),
        }
    }
}
