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
/// `block_id` of the tally line while approvals are counted.
pub const TALLY_BLOCK: &str = "approval_tally";
/// `block_id` of the line that says how the approval ended.
pub const OUTCOME_BLOCK: &str = "approval_outcome";

/// An approval message's own blocks: without the buttons, tally or outcome, which whoever
/// rewrites the message replaces.
pub fn content_blocks(blocks: &[serde_json::Value]) -> Vec<serde_json::Value> {
    blocks
        .iter()
        .filter(|b| {
            let id = b["block_id"].as_str();
            b["type"] != "actions"
                && id != Some(ACTIONS_BLOCK)
                && id != Some(TALLY_BLOCK)
                && id != Some(OUTCOME_BLOCK)
        })
        .cloned()
        .collect()
}

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
    /// Who asked for the release, when the pipeline says so in the approval's custom data
    /// (`requested-by: <email>`, see [`requested_by`]): the approval policy's
    /// `forbid_self_approval` refuses their approval.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
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
            && fits(&parsed.token, 200)
            && parsed.requested_by.as_deref().is_none_or(is_email))
        .then_some(parsed)
    }

    /// `pipeline / stage / action`, for messages.
    pub fn label(&self) -> String {
        format!("{} / {} / {}", self.pipeline, self.stage, self.action)
    }
}

/// The Approve (with a confirm dialog) and Reject buttons of an approval message; the
/// responder rebuilds them when it rewrites a message that is still waiting.
pub fn buttons(reference: &ApprovalRef) -> serde_json::Value {
    use super::mrkdwn::{escape, truncate};
    let value = reference.encode();
    serde_json::json!({
        "type": "actions",
        "block_id": ACTIONS_BLOCK,
        "elements": [
            {"type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": value,
             "text": {"type": "plain_text", "text": "Approve"},
             "confirm": {
                "title": {"type": "plain_text", "text": "Approve?"},
                "text": {"type": "mrkdwn", "text": truncate(&format!("Let *{}* go on past *{}*?", escape(&reference.pipeline), escape(&reference.action)), 300)},
                "confirm": {"type": "plain_text", "text": "Approve"},
                "deny": {"type": "plain_text", "text": "Cancel"}}},
            {"type": "button", "action_id": REJECT_ACTION, "style": "danger", "value": value,
             "text": {"type": "plain_text", "text": "Reject"}}
        ]
    })
}

/// The email after `requested-by:` in an approval's custom data (case-insensitive), where a
/// pipeline passes who asked for the release, e.g. `requested-by: #{Build.AUTHOR_EMAIL}`.
pub fn requested_by(custom_data: &str) -> Option<String> {
    const MARK: &str = "requested-by:";
    let lower = custom_data.to_ascii_lowercase();
    let at = lower.find(MARK)? + MARK.len();
    let email = custom_data[at..]
        .split_whitespace()
        .next()?
        .trim_matches(|c: char| matches!(c, '<' | '>' | ',' | ';' | '"' | '\'' | '(' | ')'));
    is_email(email).then(|| email.to_ascii_lowercase())
}

/// A plausible email address (what `users.lookupByEmail` can be asked about).
pub fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    text.len() <= 254
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && text
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '|' | '&' | '*'))
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
            requested_by: Some(format!("{}@example.com", "r".repeat(200))),
        };
        let value = reference.encode();
        assert!(value.len() < 2_000);
        assert_eq!(ApprovalRef::decode(&value), Some(reference));
        assert_eq!(
            ApprovalRef::decode("{\"p\":\"\",\"s\":\"a\",\"a\":\"b\",\"t\":\"c\"}"),
            None
        );
        assert_eq!(ApprovalRef::decode("not json"), None);
        assert_eq!(
            ApprovalRef::decode(
                "{\"p\":\"p\",\"s\":\"a\",\"a\":\"b\",\"t\":\"c\",\"e\":\"<!channel>\"}"
            ),
            None
        );
    }

    #[test]
    fn finds_who_requested_the_release_in_custom_data() {
        assert_eq!(
            requested_by("Release 1.4 requested-by: Alice@Example.com, see the plan").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            requested_by("REQUESTED-BY: <bob@example.org>").as_deref(),
            Some("bob@example.org")
        );
        assert_eq!(requested_by("requested-by: #{Build.AUTHOR}"), None);
        assert_eq!(requested_by("requested-by:"), None);
        assert_eq!(requested_by("no marker bob@example.org"), None);
    }

    proptest::proptest! {
        #[test]
        fn requested_by_never_panics_and_returns_an_email(data in "\\PC{0,200}") {
            if let Some(email) = requested_by(&data) {
                proptest::prop_assert!(is_email(&email));
            }
            let with_marker = format!("x requested-by: {data}");
            if let Some(email) = requested_by(&with_marker) {
                proptest::prop_assert!(is_email(&email));
            }
        }
    }
}
