//! SNS delivers at least once: the `EXECUTIONS_TABLE` item `approval#<token>` makes sure one
//! approval is posted once. A run claims the token with a conditional write before posting,
//! records the message after, and gives the claim back if posting failed. A delivery that
//! finds a claim still `posting` fails (so Lambda retries it later) instead of skipping: the
//! claimer may have died. A claim older than the lease, shorter than Lambda's first retry
//! delay (one minute) and longer than posting can take, is taken over.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a claim blocks others before it counts as abandoned: longer than one posting
/// (20 s of Slack budget and the secret), shorter than Lambda's first retry (60 s).
/// `APPROVAL_CLAIM_LEASE_SECONDS` overrides it.
const CLAIM_LEASE_SECONDS: u64 = 45;
/// Items expire (DynamoDB TTL on `expires_at`) after 30 days; approvals last at most 7.
const KEEP_SECONDS: u64 = 30 * 24 * 60 * 60;

#[derive(Clone, Debug)]
pub struct ApprovalLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

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

impl ApprovalLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn claim(&self, token: &str) -> Result<Claim, String> {
        let now = now();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(key(token)))
            .item("status", AttributeValue::S("posting".into()))
            .item("claimed_at", AttributeValue::N(now.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now + KEEP_SECONDS).to_string()),
            )
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :posting AND claimed_at < :stale)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":posting", AttributeValue::S("posting".into()))
            .expression_attribute_values(
                ":stale",
                AttributeValue::N(now.saturating_sub(claim_lease_seconds()).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Won),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => {
                self.existing(token, now).await
            }
            Err(err) => Err(describe("PutItem", &err)),
        }
    }

    /// Whom the claim that stopped ours belongs to: posted, or still being posted.
    async fn existing(&self, token: &str, now: u64) -> Result<Claim, String> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key(token)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| describe("GetItem", &e))?;
        let item = item.item().cloned().unwrap_or_default();
        let status = item.get("status").and_then(|v| v.as_s().ok()).cloned();
        if status.as_deref() == Some("posting") {
            let claimed_at = item
                .get("claimed_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(now);
            Ok(Claim::InProgress(now.saturating_sub(claimed_at)))
        } else {
            Ok(Claim::Taken)
        }
    }

    pub async fn posted(&self, token: &str, channel: &str, ts: &str) -> Result<(), String> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key(token)))
            .update_expression("SET #status = :posted, channel = :channel, ts = :ts")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":posted", AttributeValue::S("posted".into()))
            .expression_attribute_values(":channel", AttributeValue::S(channel.into()))
            .expression_attribute_values(":ts", AttributeValue::S(ts.into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("UpdateItem", &e))
    }

    /// pipeline-notifier's message for an execution (its item `execution#<id>`): channel and ts.
    pub async fn execution_message(
        &self,
        execution_id: &str,
    ) -> Result<Option<(String, String)>, String> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("execution#{execution_id}")))
            .send()
            .await
            .map_err(|e| describe("GetItem", &e))?;
        let text = |name: &str| {
            item.item()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_s().ok())
                .filter(|v| !v.is_empty())
                .cloned()
        };
        Ok(text("channel").zip(text("ts")))
    }

    /// Records where the approval of `action` in `execution` was posted, with its blocks, under
    /// `approval-action#<execution>#<stage>#<action>`: pipeline-notifier reads it when that
    /// action ends without a decision made in Slack, to rewrite the message.
    pub async fn index_by_action(
        &self,
        execution_id: &str,
        approval: &pipeline_ext::slack::approval::ApprovalRef,
        channel: &str,
        ts: &str,
        blocks: &serde_json::Value,
    ) -> Result<(), String> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(pipeline_ext::slack::approval::action_key(
                    execution_id,
                    &approval.stage,
                    &approval.action,
                )),
            )
            .item("token", AttributeValue::S(approval.token.clone()))
            .item("channel", AttributeValue::S(channel.into()))
            .item("ts", AttributeValue::S(ts.into()))
            .item("blocks", AttributeValue::S(blocks.to_string()))
            .item(
                "expires_at",
                AttributeValue::N((now() + KEEP_SECONDS).to_string()),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("PutItem", &e))
    }

    /// Gives a claim back so that SNS's retry can post.
    pub async fn release(&self, token: &str) {
        let released = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(key(token)))
            .condition_expression("#status = :posting")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":posting", AttributeValue::S("posting".into()))
            .send()
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %describe("DeleteItem", &err), "could not release the approval claim; a retry can take it over in two minutes");
        }
    }
}

fn key(token: &str) -> String {
    pipeline_ext::slack::approval::request_key(token)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn describe<E>(operation: &'static str, err: &aws_sdk_dynamodb::error::SdkError<E>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    pipeline_ext::sdk::SdkFailure::from_sdk("DynamoDB", operation, err).to_string()
}
