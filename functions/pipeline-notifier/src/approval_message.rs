//! The approval message of a manual-approval action that ended without a decision made in
//! Slack (approved or rejected in the console or the API, expired, the execution stopped or
//! superseded): its buttons would lie, so it is rewritten to say how it ended.
//!
//! approval-notifier records where it posted each approval under the executions-table item
//! `approval-action#<execution>#<stage>#<action>` (with the blocks); approval-responder records
//! Slack decisions under `votes#<token>`. The first event of the action's end claims the
//! rewrite (`closed_at`, conditional), so repeats and concurrent deliveries rewrite once.

use pipeline_ext::executions_table::{
    now, Condition, ExecutionsTable, ItemKey, StoredItem, TableError, Update,
};
use pipeline_ext::slack::approval::{content_blocks, OUTCOME_BLOCK};
use pipeline_ext::slack::mrkdwn::{escape, truncate};
use serde_json::{json, Value};

/// An approval message as approval-notifier posted it.
#[derive(Debug)]
pub struct PostedApproval {
    /// Its channel.
    pub channel: String,
    /// Its ts.
    pub ts: String,
    blocks: Vec<Value>,
}

/// The approval messages' items in the executions table.
#[derive(Clone)]
pub struct ApprovalMessages {
    table: ExecutionsTable,
}

/// The action states after which an approval no longer waits.
pub fn ended(state: &str) -> bool {
    matches!(state, "SUCCEEDED" | "FAILED" | "ABANDONED" | "CANCELED")
}

impl ApprovalMessages {
    /// The approval messages in the executions table.
    pub fn new(table: ExecutionsTable) -> Self {
        Self { table }
    }

    /// The message to rewrite, when there is one, Slack did not decide it, and no other
    /// delivery rewrote it already.
    pub async fn claim(
        &self,
        execution_id: &str,
        stage: &str,
        action: &str,
    ) -> Result<Option<PostedApproval>, TableError> {
        let key = ItemKey::approval_action(execution_id, stage, action);
        let Some(index) = self.table.get(&key).await? else {
            return Ok(None);
        };
        if index.has("closed_at") {
            return Ok(None);
        }
        let votes = self.votes(&index).await?;
        // Decided (or being decided) in Slack: approval-responder rewrote it.
        if votes.is_some_and(|v| v.has("decision")) {
            return Ok(None);
        }
        let claim = Update::new()
            .set_number("closed_at", now())
            .when(Condition::ItemExists.and(Condition::absent("closed_at")));
        Ok(self
            .table
            .update(&key, claim)
            .await?
            .map(|item| PostedApproval {
                channel: text(&item, "channel"),
                ts: text(&item, "ts"),
                blocks: serde_json::from_str(&text(&item, "blocks")).unwrap_or_default(),
            }))
    }

    /// approval-responder's item of the approval an index item points to.
    async fn votes(&self, index: &StoredItem) -> Result<Option<StoredItem>, TableError> {
        self.table.get(&ItemKey::votes(text(index, "token"))).await
    }

    /// Gives the claim back when Slack did not take the rewrite, so a repeat event retries.
    pub async fn release(&self, execution_id: &str, stage: &str, action: &str) {
        let key = ItemKey::approval_action(execution_id, stage, action);
        let release = Update::new()
            .remove("closed_at")
            .when(Condition::ItemExists);
        if let Err(err) = self.table.update(&key, release).await {
            tracing::warn!(error = %err, "could not give back the approval rewrite");
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
    /// The reason given with a rejection.
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
    ) -> Result<Option<SlackDecision>, TableError> {
        let key = ItemKey::approval_action(execution_id, stage, action);
        let Some(index) = self.table.get(&key).await? else {
            return Ok(None);
        };
        let votes = self.votes(&index).await?;
        Ok(votes.as_ref().and_then(|item| {
            let status = text(item, "decision");
            // "deciding" is a claim in flight, not a decision.
            if status != "Approved" && status != "Rejected" {
                return None;
            }
            Some(SlackDecision {
                status,
                by: item.string_list("decided_by"),
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

fn text(item: &StoredItem, name: &str) -> String {
    item.text(name).unwrap_or_default().to_owned()
}
