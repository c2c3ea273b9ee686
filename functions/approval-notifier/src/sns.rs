//! The SNS event and CodePipeline's manual-approval notification inside it (a JSON string in
//! `Records[].Sns.Message`). Unknown fields are tolerated: AWS adds them over time.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct SnsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
pub struct SnsRecord {
    #[serde(rename = "Sns")]
    pub sns: SnsMessage,
}

#[derive(Debug, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "MessageId", default)]
    pub message_id: String,
    #[serde(rename = "Message", default)]
    pub message: String,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ApprovalNotification {
    #[serde(default)]
    pub region: String,
    #[serde(rename = "consoleLink", default)]
    pub console_link: String,
    pub approval: Approval,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Approval {
    #[serde(rename = "pipelineName")]
    pub pipeline_name: String,
    #[serde(rename = "stageName")]
    pub stage_name: String,
    #[serde(rename = "actionName")]
    pub action_name: String,
    pub token: String,
    #[serde(default)]
    pub expires: String,
    #[serde(rename = "externalEntityLink", default)]
    pub external_entity_link: Option<String>,
    #[serde(rename = "approvalReviewLink", default)]
    pub approval_review_link: Option<String>,
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
