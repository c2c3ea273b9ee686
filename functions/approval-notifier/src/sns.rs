//! The SNS event and CodePipeline's manual-approval notification inside it (a JSON string in
//! `Records[].Sns.Message`). Unknown fields are tolerated: AWS adds them over time.

use serde::Deserialize;

/// The event SNS invokes the function with.
#[derive(Debug, Deserialize)]
pub struct SnsEvent {
    /// One record per message (SNS sends one, but the shape allows more).
    #[serde(rename = "Records", default)]
    pub records: Vec<SnsRecord>,
}

/// One SNS record.
#[derive(Debug, Deserialize)]
pub struct SnsRecord {
    /// The message and its metadata.
    #[serde(rename = "Sns")]
    pub sns: SnsMessage,
}

/// An SNS message.
#[derive(Debug, Deserialize)]
pub struct SnsMessage {
    /// SNS's id of the message: the same for every delivery of it.
    #[serde(rename = "MessageId", default)]
    pub message_id: String,
    /// The body: CodePipeline's notification as a JSON string.
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// CodePipeline's manual-approval notification.
#[derive(Clone, Debug, Deserialize)]
pub struct ApprovalNotification {
    /// The pipeline's region.
    #[serde(default)]
    pub region: String,
    /// The pipeline in the AWS console.
    #[serde(rename = "consoleLink", default)]
    pub console_link: String,
    /// What waits for a decision.
    pub approval: Approval,
}

/// The approval action waiting, as the notification names it.
#[derive(Clone, Debug, Deserialize)]
pub struct Approval {
    /// The pipeline.
    #[serde(rename = "pipelineName")]
    pub pipeline_name: String,
    /// The stage.
    #[serde(rename = "stageName")]
    pub stage_name: String,
    /// The approval action.
    #[serde(rename = "actionName")]
    pub action_name: String,
    /// The token `PutApprovalResult` needs.
    pub token: String,
    /// When the approval expires, as CodePipeline writes it.
    #[serde(default)]
    pub expires: String,
    /// The action's `ExternalEntityLink`: what to review.
    #[serde(rename = "externalEntityLink", default)]
    pub external_entity_link: Option<String>,
    /// The approval in the AWS console.
    #[serde(rename = "approvalReviewLink", default)]
    pub approval_review_link: Option<String>,
    /// The action's `CustomData`.
    #[serde(rename = "customData", default)]
    pub custom_data: Option<String>,
}

/// Why an SNS message is skipped: it is not an approval request.
#[derive(Debug, thiserror::Error)]
pub enum NotAnApproval {
    /// Not the JSON CodePipeline publishes.
    #[error("not a CodePipeline manual-approval notification: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// A field that names the approval is empty.
    #[error("the approval has an empty pipelineName, stageName, actionName or token")]
    Incomplete,
}

/// The approval request in an SNS message, or why it is not one.
pub fn parse_approval(message: &str) -> Result<ApprovalNotification, NotAnApproval> {
    let notification: ApprovalNotification = serde_json::from_str(message)?;
    let a = &notification.approval;
    if [&a.pipeline_name, &a.stage_name, &a.action_name, &a.token]
        .iter()
        .any(|v| v.trim().is_empty())
    {
        return Err(NotAnApproval::Incomplete);
    }
    Ok(notification)
}
