//! SNS delivers at least once: the executions-table item `approval#<token>` makes sure one
//! approval is posted once. A run claims the token (`status` = `posting`) before posting,
//! records the message after (`status` = `posted`, `channel`, `ts`), and gives the claim back
//! if posting failed. A delivery that finds a claim still `posting` fails (so Lambda retries
//! it later) instead of skipping: the claimer may have died. A claim older than the lease,
//! shorter than Lambda's first retry delay (one minute) and longer than posting can take, is
//! taken over.

use pipeline_ext::executions_table::{
    now, AttributeValue, ClaimRule, Claimed, ExecutionsTable, ItemKey, TableError, Update,
};
use pipeline_ext::slack::approval::ApprovalRef;
use std::time::Duration;

/// How long a claim blocks others before it counts as abandoned: longer than one posting
/// (20 s of Slack budget and the secret), shorter than Lambda's first retry (60 s).
/// `APPROVAL_CLAIM_LEASE_SECONDS` overrides it.
const CLAIM_LEASE_SECONDS: u64 = 45;

/// Where this function records its claims and messages.
#[derive(Clone, Debug)]
pub struct ApprovalLedger {
    table: ExecutionsTable,
}

/// How claiming an approval came out.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This run posts.
    Won,
    /// Another delivery posted it.
    Taken,
    /// Another delivery claimed it this many seconds ago and has not posted it (yet).
    InProgress(u64),
}

/// The lease in force.
pub fn claim_lease_seconds() -> u64 {
    std::env::var("APPROVAL_CLAIM_LEASE_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CLAIM_LEASE_SECONDS)
}

fn posting_rule(lease: u64) -> ClaimRule<'static> {
    ClaimRule {
        attribute: "status",
        marker: "posting",
        since: "claimed_at",
        lease: Duration::from_secs(lease),
    }
}

impl ApprovalLedger {
    /// The ledger in the executions table.
    pub fn new(table: ExecutionsTable) -> Self {
        Self { table }
    }

    /// Claims the approval of `token` for this delivery.
    pub async fn claim(&self, token: &str) -> Result<Claim, TableError> {
        let key = ItemKey::approval_request(token);
        let rule = posting_rule(claim_lease_seconds());
        Ok(match self.table.claim(&key, &rule, Update::new()).await? {
            Claimed::Won(_) => Claim::Won,
            Claimed::Held(Some(item)) if item.text("status") == Some("posting") => {
                let claimed_at = item.number("claimed_at").unwrap_or_else(now);
                Claim::InProgress(now().saturating_sub(claimed_at))
            }
            Claimed::Held(_) => Claim::Taken,
        })
    }

    /// Records that the approval was posted, and where.
    pub async fn posted(&self, token: &str, channel: &str, ts: &str) -> Result<(), TableError> {
        let update = Update::new()
            .set_text("status", "posted")
            .set_text("channel", channel)
            .set_text("ts", ts);
        self.table
            .update(&ItemKey::approval_request(token), update)
            .await
            .map(drop)
    }

    /// pipeline-notifier's message for an execution (its item `execution#<id>`): channel and ts.
    pub async fn execution_message(
        &self,
        execution_id: &str,
    ) -> Result<Option<(String, String)>, TableError> {
        let item = self.table.get(&ItemKey::execution(execution_id)).await?;
        Ok(item.and_then(|item| item.nonempty_text("channel").zip(item.nonempty_text("ts"))))
    }

    /// Records where the approval of `approval` in `execution` was posted, with its blocks,
    /// under `approval-action#<execution>#<stage>#<action>`: pipeline-notifier reads it when
    /// that action ends without a decision made in Slack, to rewrite the message.
    pub async fn index_by_action(
        &self,
        execution_id: &str,
        approval: &ApprovalRef,
        channel: &str,
        ts: &str,
        blocks: &serde_json::Value,
    ) -> Result<(), TableError> {
        let key = ItemKey::approval_action(execution_id, &approval.stage, &approval.action);
        let text = |value: &str| AttributeValue::S(value.to_string());
        self.table
            .put(
                &key,
                [
                    ("token", text(&approval.token)),
                    ("channel", text(channel)),
                    ("ts", text(ts)),
                    ("blocks", text(&blocks.to_string())),
                ],
            )
            .await
    }

    /// Gives a claim back so that SNS's retry can post.
    pub async fn release(&self, token: &str) {
        let rule = posting_rule(claim_lease_seconds());
        self.table
            .release_claim(&ItemKey::approval_request(token), &rule)
            .await;
    }
}
