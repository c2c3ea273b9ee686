//! What the approval message becomes: the tally while approvals are counted (buttons kept),
//! the outcome once decided (buttons gone), and the dialog that asks for a reason.

use crate::interaction::DecisionContext;
use crate::policy::Decision;
use pipeline_ext::slack::approval::{
    buttons, content_blocks, ApprovalRef, OUTCOME_BLOCK, REASON_BLOCK, REASON_INPUT, REJECT_VIEW,
    TALLY_BLOCK,
};
use pipeline_ext::slack::mrkdwn::{escape, truncate};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub enum Outcome {
    /// By these Slack user ids, in the order they approved.
    Approved(Vec<String>),
    /// By this user, for this reason.
    Rejected(String, String),
    AlreadyDecided,
    Expired,
}

/// `<@U1>`, `<@U1> and <@U2>`, `<@U1>, <@U2> and <@U3>`.
pub fn mentions(users: &[String]) -> String {
    let tagged: Vec<String> = users.iter().map(|u| format!("<@{u}>")).collect();
    match tagged.split_last() {
        None => "nobody".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// A Slack date token for `secs` (rendered in the reader's time zone).
pub fn date(secs: u64) -> String {
    pipeline_ext::slack::mrkdwn::date(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// `chat.update` arguments: the original blocks without the buttons or tally, then the outcome.
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
    let when = date(now);
    let (line, fallback) = match outcome {
        Outcome::Approved(users) => (
            truncate(&format!(":white_check_mark: *Approved* by {} {when}", mentions(users)), 3_000),
            format!("Approved: {}", approval.label()),
        ),
        Outcome::Rejected(user, reason) => (
            format!(":x: *Rejected* by <@{user}> {when}\n>{}", escape(&truncate(reason, 2_500)).replace('\n', "\n>")),
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
    let mut blocks = kept(original, approval);
    blocks.push(json!({"type": "section", "block_id": OUTCOME_BLOCK, "text": {"type": "mrkdwn", "text": line}}));
    json!({"channel": channel, "ts": ts, "text": escape(&fallback), "blocks": blocks})
}

/// `chat.update` arguments while approvals are still counted: the tally, then the buttons.
pub fn tally(
    channel: &str,
    ts: &str,
    original: &[Value],
    approval: &ApprovalRef,
    approvers: &[String],
    required: u32,
) -> Value {
    let line = truncate(
        &format!(
            ":ballot_box_with_check: {} of {required} approvals: {}",
            approvers.len(),
            mentions(approvers)
        ),
        3_000,
    );
    let mut blocks = kept(original, approval);
    blocks.push(json!({"type": "context", "block_id": TALLY_BLOCK, "elements": [{"type": "mrkdwn", "text": line}]}));
    blocks.push(buttons(approval));
    let fallback = format!(
        "Approval needed: {} ({} of {required} approvals)",
        approval.label(),
        approvers.len()
    );
    json!({"channel": channel, "ts": ts, "text": escape(&fallback), "blocks": blocks})
}

/// The message's own blocks, or its label when none came along.
fn kept(original: &[Value], approval: &ApprovalRef) -> Vec<Value> {
    let mut blocks = content_blocks(original);
    if blocks.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*", escape(&approval.label()))}}));
    }
    blocks
}

/// The modal that asks for the reason of a decision.
/// CodePipeline keeps 512 UTF-16 code units of an approval's summary, which holds the
/// decision, who made it and the reason.
const REASON_HINT: &str = "CodePipeline keeps the first 512 characters of the decision with your name and this reason (an emoji counts as two); the rest is cut there.";

pub fn reason_modal(context: &DecisionContext) -> Value {
    let mut context = context.clone();
    let mut metadata = serde_json::to_string(&context).unwrap_or_default();
    if metadata.len() > 3_000 {
        // Too big to carry the message along: the update will show a short version.
        context.blocks.clear();
        metadata = serde_json::to_string(&context).unwrap_or_default();
    }
    let verb = match context.decision {
        Decision::Approve => "Approve",
        Decision::Reject => "Reject",
    };
    json!({
        "type": "modal",
        "callback_id": REJECT_VIEW,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": verb},
        "submit": {"type": "plain_text", "text": verb},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&format!("{verb} *{}*?", escape(&context.approval.label())), 3_000)}},
            {"type": "input", "block_id": REASON_BLOCK,
             "label": {"type": "plain_text", "text": "Reason"},
             "hint": {"type": "plain_text", "text": REASON_HINT},
             "element": {"type": "plain_text_input", "action_id": REASON_INPUT, "multiline": true, "max_length": 400}}
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message approval-responder makes, as the console draws it, against the snapshots
    /// in tests/snapshots (UPDATE_SNAPSHOTS=1 accepts a change).
    #[test]
    fn messages_render_as_their_snapshots() {
        use pipeline_testkit::block_kit::{assert_html_snapshot, assert_modal_snapshot};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
        let approval = ApprovalRef {
            pipeline: "web".into(),
            stage: "Approve".into(),
            action: "ReleaseGate".into(),
            token: "0b7f8f7e-5c1e-4a8b-9a63-0d1f2e3c4b5a".into(),
            requested_by: Some("dev@example.com".into()),
        };
        let original = vec![
            json!({"type": "header", "text": {"type": "plain_text", "text": "Approval needed: web"}}),
            json!({"type": "section", "text": {"type": "mrkdwn", "text": "*Pipeline:* web\n*Stage:* Approve\n*Action:* ReleaseGate"}}),
            buttons(&approval),
        ];
        let outcomes = [
            (
                "approval-approved",
                Outcome::Approved(vec!["U0ALICE".into(), "U0BOB".into()]),
            ),
            (
                "approval-rejected",
                Outcome::Rejected(
                    "U0CAROL".into(),
                    "Release notes are missing\n<!channel> *please* fix".into(),
                ),
            ),
            ("approval-expired", Outcome::Expired),
            ("approval-already-decided", Outcome::AlreadyDecided),
        ];
        for (name, outcome) in outcomes {
            let update = decided("C0DEPLOYS", "1.2", &original, &approval, &outcome);
            assert_html_snapshot(&dir, name, &update["blocks"]);
        }
        let update = tally(
            "C0DEPLOYS",
            "1.2",
            &original,
            &approval,
            &["U0ALICE".into()],
            2,
        );
        assert_html_snapshot(&dir, "approval-tally", &update["blocks"]);
        let modal = reason_modal(&DecisionContext {
            decision: Decision::Reject,
            approval,
            channel: "C0DEPLOYS".into(),
            message_ts: "1.2".into(),
            blocks: original,
        });
        assert_modal_snapshot(&dir, "reject-reason-modal", &modal);
    }

    #[test]
    fn names_approvers_as_a_sentence() {
        let users = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(mentions(&users(&[])), "nobody");
        assert_eq!(mentions(&users(&["U1"])), "<@U1>");
        assert_eq!(mentions(&users(&["U1", "U2"])), "<@U1> and <@U2>");
        assert_eq!(
            mentions(&users(&["U1", "U2", "U3"])),
            "<@U1>, <@U2> and <@U3>"
        );
    }
}
