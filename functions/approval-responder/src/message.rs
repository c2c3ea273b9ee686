//! What the approval message becomes once someone acts: the buttons replaced by the outcome.

use pipeline_ext::slack::approval::{
    ApprovalRef, ACTIONS_BLOCK, REASON_BLOCK, REASON_INPUT, REJECT_VIEW,
};
use pipeline_ext::slack::mrkdwn::{escape, truncate};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::interaction::{RejectContext, SlackUser};

pub enum Outcome<'a> {
    Approved(&'a SlackUser),
    Rejected(&'a SlackUser, &'a str),
    AlreadyDecided,
    Expired,
}

/// `chat.update` arguments: the original blocks without the buttons, then the outcome.
pub fn decided(
    channel: &str,
    ts: &str,
    original: &[Value],
    approval: &ApprovalRef,
    outcome: &Outcome,
) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let when = format!("<!date^{now}^{{date_short_pretty}} at {{time}}|{now}>");
    let (line, fallback) = match outcome {
        Outcome::Approved(user) => (
            format!(":white_check_mark: *Approved* by <@{}> {when}", user.id),
            format!("Approved: {}", approval.label()),
        ),
        Outcome::Rejected(user, reason) => (
            format!(":x: *Rejected* by <@{}> {when}\n>{}", user.id, escape(&truncate(reason, 2_500)).replace('\n', "\n>")),
            format!("Rejected: {}", approval.label()),
        ),
        Outcome::AlreadyDecided => (
            ":information_source: This approval was already decided (in the console or by someone else); nothing more was recorded.".to_string(),
            format!("Already decided: {}", approval.label()),
        ),
        Outcome::Expired => (
            ":hourglass: This approval has expired or is no longer waiting; nothing was recorded.".to_string(),
            format!("Expired: {}", approval.label()),
        ),
    };
    let mut blocks: Vec<Value> = original
        .iter()
        .filter(|b| b["block_id"].as_str() != Some(ACTIONS_BLOCK) && b["type"] != "actions")
        .cloned()
        .collect();
    if blocks.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", escape(&approval.label()))}}));
    }
    blocks.push(json!({"type": "section", "block_id": "approval_outcome", "text": {"type": "mrkdwn", "text": line}}));
    json!({"channel": channel, "ts": ts, "text": fallback, "blocks": blocks})
}

/// The modal that asks for the reason of a rejection.
pub fn reject_modal(context: &RejectContext) -> Value {
    let mut context = context.clone();
    let mut metadata = serde_json::to_string(&context).unwrap_or_default();
    if metadata.len() > 3_000 {
        // Too big to carry the message along: the update will show a short version.
        context.blocks.clear();
        metadata = serde_json::to_string(&context).unwrap_or_default();
    }
    json!({
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Reject"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("Reject *{}*?", escape(&context.approval.label()))}},
            {"type": "input", "block_id": REASON_BLOCK,
             "label": {"type": "plain_text", "text": "Reason"},
             "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": true, "max_length": 400}}
        ]
    })
}
