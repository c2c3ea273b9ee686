//! The approval message of a manual-approval action that ended without a decision made in
//! Slack (approved or rejected in the console or the API, expired, the execution stopped or
//! superseded): its buttons would lie, so it is rewritten to say how it ended.
//!
//! approval-notifier records where it posted each approval under
//! `approval-action#<execution>#<stage>#<action>` (with the blocks); approval-responder records
//! Slack decisions under `votes#<token>`. The first event of the action's end claims the
//! rewrite (`closed_at`, conditional), so repeats and concurrent deliveries rewrite once.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use pipeline_ext::slack::approval::{action_key, content_blocks, votes_key, OUTCOME_BLOCK};
use pipeline_ext::slack::mrkdwn::{escape, truncate};
use serde_json::{json, Value};
use std::collections::HashMap;

/// An approval message as approval-notifier posted it.
#[derive(Debug)]
pub struct PostedApproval {
    pub channel: String,
    pub ts: String,
    blocks: Vec<Value>,
}

#[derive(Clone)]
pub struct ApprovalMessages {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The action states after which an approval no longer waits.
pub fn ended(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | "ABANDONED" | "CANCELED")
}

impl ApprovalMessages {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The message to rewrite, when there is one, Slack did not decide it, and no other
    /// delivery rewrote it already.
    pub async fn claim(
        &self,
        execution_id: &str,
        stage: &str,
        action: &str,
    ) -> Result<Option<PostedApproval>, String> {
        let key = action_key(execution_id, stage, action);
        let Some(index) = self.read(&key).await? else {
            return Ok(None);
        };
        if index.contains_key("closed_at") {
            return Ok(None);
        }
        let votes = self.read(&votes_key(&text(&index, "token"))).await?;
        // Decided (or being decided) in Slack: approval-responder rewrote it.
        if votes.is_some_and(|v| v.contains_key("decision")) {
            return Ok(None);
        }
        let claimed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key))
            .update_expression("SET closed_at = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(closed_at)")
            .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match claimed {
            Ok(output) => {
                let item = output.attributes().cloned().unwrap_or_default();
                Ok(Some(PostedApproval {
                    channel: text(&item, "channel"),
                    ts: text(&item, "ts"),
                    blocks: serde_json::from_str(&text(&item, "blocks")).unwrap_or_default(),
                }))
            }
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(err) => Err(describe("UpdateItem", &err)),
        }
    }

    /// One item of the table, read consistently.
    async fn read(&self, key: &str) -> Result<Option<HashMap<String, AttributeValue>>, String> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map(|output| output.item)
            .map_err(|e| describe("GetItem", &e))
    }

    /// Gives the claim back when Slack did not take the rewrite, so a repeat event retries.
    pub async fn release(&self, execution_id: &str, stage: &str, action: &str) {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(action_key(execution_id, stage, action)),
            )
            .update_expression("REMOVE closed_at")
            .send()
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %describe("UpdateItem", &err), "could not give back the approval rewrite");
        }
    }
}

/// A decision made in Slack, as approval-responder recorded it under `votes#<token>`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SlackDecision {
    /// `Approved` or `Rejected`.
    pub status: String,
    /// The Slack user ids that decided.
    pub by: Vec<String>,
    pub reason: Option<String>,
}

impl ApprovalMessages {
    /// The Slack decision of an approval action, when approval-responder recorded one (the
    /// action's message index gives the token; `votes#<token>` the decision).
    pub async fn slack_decision(
        &self,
        execution_id: &str,
        stage: &str,
        action: &str,
    ) -> Result<Option<SlackDecision>, String> {
        let Some(index) = self.read(&action_key(execution_id, stage, action)).await? else {
            return Ok(None);
        };
        let votes = self.read(&votes_key(&text(&index, "token"))).await?;
        Ok(votes.as_ref().and_then(|item| {
            let status = text(item, "decision");
            // "deciding" is a claim in flight, not a decision.
            if status != "Approved" && status != "Rejected" {
                return None;
            }
            Some(SlackDecision {
                status,
                by: item
                    .get("decided_by")
                    .and_then(|v| v.as_l().ok())
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_s().ok().cloned())
                    .collect(),
                reason: Some(text(item, "reason")).filter(|r| !r.is_empty() && r != "-"),
            })
        }))
    }
}

/// `chat.update` arguments: the message without its buttons (or tally), and how it ended.
pub fn closed(posted: &PostedApproval, state: &str, summary: Option<&str>, at_ms: i64) -> Value {
    let secs = at_ms / 1000;
    let when = pipeline_ext::slack::mrkdwn::date(secs);
    let mut line = match state {
        "SUCCEEDED" => format!(":information_source: *Approved outside Slack* (in the console or the API) {when}."),
        "FAILED" => format!(":information_source: *Rejected outside Slack, or expired* {when}; nothing was decided here."),
        _ => format!(":information_source: *No longer waiting*: the execution was stopped or superseded {when}."),
    };
    if let Some(summary) = summary.filter(|s| !s.trim().is_empty()) {
        line.push_str(&format!(
            "\n>{}",
            escape(&truncate(summary, 1_000)).replace('\n', "\n>")
        ));
    }
    let mut blocks = content_blocks(&posted.blocks);
    blocks.push(json!({"type": "section", "block_id": OUTCOME_BLOCK, "text": {"type": "mrkdwn", "text": line}}));
    json!({"channel": posted.channel, "ts": posted.ts, "text": "Approval no longer waiting", "blocks": blocks})
}

fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn describe<E>(operation: &'static str, err: &aws_sdk_dynamodb::error::SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    pipeline_ext::sdk::SdkFailure::from_sdk("DynamoDB", operation, err).to_string()
}
