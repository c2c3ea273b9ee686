//! What an approval message carries between the notifier and the responder: the approval's
//! address in CodePipeline, in each button's value (Slack caps values at 2,000 characters).

use serde::{Deserialize, Serialize};

/// `action_id`s of the two buttons.
pub const APPROVE_ACTION: &str = "approve";
/// `action_id` of the Reject button.
pub const REJECT_ACTION: &str = "reject";
/// `callback_id` of the reject-reason modal, and its input's ids.
pub const REJECT_VIEW: &str = "reject_reason";
/// `block_id` of the reason input in the reject modal.
pub const REASON_BLOCK: &str = "reason";
/// `action_id` of the reason input.
pub const REASON_INPUT: &str = "reason_input";
/// `block_id` of the buttons, replaced by the decision.
pub const ACTIONS_BLOCK: &str = "approval_actions";

/// Everything `PutApprovalResult` needs. CodePipeline names are at most 100 characters and the
/// token is a UUID, so the encoded value stays far below Slack's limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRef {
    /// Pipeline name.
    #[serde(rename = "p")]
    pub pipeline: String,
    /// Stage name.
    #[serde(rename = "s")]
    pub stage: String,
    /// Action name.
    #[serde(rename = "a")]
    pub action: String,
    /// The approval token.
    #[serde(rename = "t")]
    pub token: String,
}

impl ApprovalRef {
    /// The button value.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads a button value; `None` when it is not ours.
    pub fn decode(value: &str) -> Option<Self> {
        let parsed: Self = serde_json::from_str(value).ok()?;
        let fits = |s: &str, max: usize| !s.is_empty() && s.len() <= max;
        (fits(&parsed.pipeline, 100)
            && fits(&parsed.stage, 100)
            && fits(&parsed.action, 100)
            && fits(&parsed.token, 200))
        .then_some(parsed)
    }

    /// `pipeline / stage / action`, for messages.
    pub fn label(&self) -> String {
        format!("{} / {} / {}", self.pipeline, self.stage, self.action)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_small_at_the_longest_names() {
        let long = "x".repeat(100);
        let reference = ApprovalRef {
            pipeline: long.clone(),
            stage: long.clone(),
            action: long,
            token: "3f0b3a51-7d2c-4a58-9b9e-0c5d1f1e2a3b".into(),
        };
        let value = reference.encode();
        assert!(value.len() < 2_000);
        assert_eq!(ApprovalRef::decode(&value), Some(reference));
        assert_eq!(
            ApprovalRef::decode("{\"p\":\"\",\"s\":\"a\",\"a\":\"b\",\"t\":\"c\"}"),
            None
        );
        assert_eq!(ApprovalRef::decode("not json"), None);
    }
}
