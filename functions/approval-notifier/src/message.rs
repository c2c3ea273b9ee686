//! The Slack message for one approval: what is waiting, the custom data, links, expiry, and
//! the Approve (with a confirm dialog) and Reject buttons.

use crate::sns::ApprovalNotification;
use pipeline_ext::slack::approval::{buttons, requested_by, ApprovalRef};
use pipeline_ext::slack::mrkdwn::{escape, join_within, link, truncate};
use serde_json::{json, Value};

/// Slack's limit for a section's text.
const MAX_SECTION_CHARS: usize = 3_000;

/// The button value of this approval: pipeline, stage, action, token and `requested-by`.
pub fn approval_ref(notification: &ApprovalNotification) -> ApprovalRef {
    let a = &notification.approval;
    ApprovalRef {
        pipeline: a.pipeline_name.clone(),
        stage: a.stage_name.clone(),
        action: a.action_name.clone(),
        token: a.token.clone(),
        requested_by: a.custom_data.as_deref().and_then(requested_by),
    }
}

/// `chat.postMessage` arguments for `channel`; `context` (what is being released) goes after
/// the custom data.
pub fn build(notification: &ApprovalNotification, channel: &str, context: Vec<Value>) -> Value {
    let a = &notification.approval;
    let reference = approval_ref(notification);
    let mut facts = format!(
        "*Pipeline:* {}\n*Stage:* {}\n*Action:* {}",
        escape(&a.pipeline_name),
        escape(&a.stage_name),
        escape(&a.action_name)
    );
    if !a.expires.is_empty() {
        facts.push_str(&format!("\n*Expires:* {}", escape(&a.expires)));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&format!("Approval needed: {}", a.pipeline_name), 150)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": facts}}),
    ];
    if let Some(data) = a.custom_data.as_deref().filter(|d| !d.trim().is_empty()) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*Details:*\n{}", escape(data)), MAX_SECTION_CHARS)}}));
    }
    blocks.extend(context);
    let mut links = Vec::new();
    if let Some(url) = a.approval_review_link.as_deref() {
        links.push(link(url, "Review"));
    }
    if let Some(url) = a.external_entity_link.as_deref() {
        links.push(link(url, "What is being approved"));
    }
    if !notification.console_link.is_empty() {
        links.push(link(&notification.console_link, "Pipeline in the console"));
    }
    if !links.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": join_within(&links, "  ·  ", MAX_SECTION_CHARS)}]}));
    }
    blocks.push(buttons(&reference));
    json!({
        "channel": channel,
        "text": truncate(&format!("Approval needed: {}", escape(&reference.label())), MAX_SECTION_CHARS),
        "blocks": blocks,
        "unfurl_links": false,
    })
}

/// The plain-text copy sent to the fallback topic when Slack cannot be reached.
pub fn plain_text(notification: &ApprovalNotification) -> String {
    let a = &notification.approval;
    let mut text = format!(
        "Approval needed: {} / {} / {}\n",
        a.pipeline_name, a.stage_name, a.action_name
    );
    if let Some(data) = &a.custom_data {
        text.push_str(&format!("Details: {data}\n"));
    }
    if let Some(url) = &a.approval_review_link {
        text.push_str(&format!("Review: {url}\n"));
    }
    if !notification.console_link.is_empty() {
        text.push_str(&format!("Console: {}\n", notification.console_link));
    }
    if !a.expires.is_empty() {
        text.push_str(&format!("Expires: {}\n", a.expires));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(custom: &str) -> ApprovalNotification {
        crate::sns::parse_approval(&json!({
            "region": "us-east-1",
            "consoleLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/web",
            "approval": {"pipelineName": "web", "stageName": "Staging", "actionName": "Approve",
                "token": "1a2b3c4d-0000-4000-8000-000000000001", "expires": "2026-11-28T10:00Z",
                "externalEntityLink": null, "approvalReviewLink": "https://console.aws.amazon.com/codepipeline/approve",
                "customData": custom}
        }).to_string()).unwrap()
    }

    /// The approval message as the console draws it, against tests/snapshots
    /// (UPDATE_SNAPSHOTS=1 accepts a change).
    #[test]
    fn the_approval_message_renders_as_its_snapshot() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
        let message = build(
            &notification(
                "Release 2.4: new checkout\nrequested-by: dev@example.com\n<!here> `v2.4.0`",
            ),
            "C0DEPLOYS",
            vec![
                json!({"type": "context", "elements": [{"type": "mrkdwn", "text": "Source: `a1b2c3d4e5` fix three"}]}),
            ],
        );
        pipeline_testkit::block_kit::assert_html_snapshot(
            &dir,
            "approval-request",
            &message["blocks"],
        );
    }

    #[test]
    fn escapes_custom_data_and_keeps_button_values_small() {
        let message = build(
            &notification(&format!("<!channel> deploy {}", "x".repeat(10_000))),
            "C1",
            Vec::new(),
        );
        let text = message.to_string();
        assert!(!text.contains("<!channel>"));
        assert!(text.contains("&lt;!channel&gt;"));
        let buttons = message["blocks"].as_array().unwrap().last().unwrap()["elements"]
            .as_array()
            .unwrap()
            .clone();
        for button in buttons {
            let value = button["value"].as_str().unwrap();
            assert!(value.len() <= 2_000);
            assert_eq!(
                ApprovalRef::decode(value).unwrap().token,
                "1a2b3c4d-0000-4000-8000-000000000001"
            );
        }
        for block in message["blocks"].as_array().unwrap() {
            if let Some(t) = block["text"]["text"].as_str() {
                assert!(t.chars().count() <= 3_000);
            }
        }
    }
}
