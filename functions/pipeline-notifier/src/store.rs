//! The `EXECUTIONS_TABLE` item of one execution (`pk = execution#<id>`), which turns
//! at-least-once, unordered, concurrent deliveries into one message updated in order.
//!
//! - `record` (the folded [`ExecutionRecord`], JSON) and `version` change together, under a
//!   condition on the version read: concurrent invocations never lose each other's events, and
//!   an event id already in the record is not applied twice.
//! - Only the holder of the `lease_owner`/`lease_until` lease talks to Slack for the execution:
//!   it posts the parent message (so there is one), updates it, posts the thread replies and
//!   records what it showed (`rendered`, `ts`, `replied`). It releases the lease and then reads
//!   the version again; an invocation that finds the lease taken leaves after writing its
//!   event, because the holder's read after release sees that event. A lease left by a run that
//!   died expires after [`LEASE_SECONDS`].
//! - `expires_at` is the table's TTL attribute.

use crate::execution::ExecutionRecord;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a lease keeps other invocations from rendering.
pub const LEASE_SECONDS: u64 = 60;
/// Items are kept for 30 days after the last event.
const KEEP_SECONDS: u64 = 30 * 24 * 60 * 60;

/// The stored state of one execution.
#[derive(Clone, Debug, Default)]
pub struct ExecutionItem {
    pub record: ExecutionRecord,
    pub version: u64,
    /// The version the Slack message shows.
    pub rendered: u64,
    pub channel: Option<String>,
    pub ts: Option<String>,
    /// Failure keys already answered in the thread.
    pub replied: Vec<String>,
    /// Failure keys already copied to the fallback topic.
    pub fallback: Vec<String>,
    /// The source revision, once looked up (JSON written by [`crate::source`]).
    pub source: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ExecutionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A DynamoDB call failed for another reason than a condition.
#[derive(Debug)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl ExecutionStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub async fn load(&self, execution_id: &str) -> Result<Option<ExecutionItem>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(execution_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| describe("GetItem", &e))?;
        let Some(item) = output.item else {
            return Ok(None);
        };
        let record = string(&item, "record").unwrap_or_default();
        let record: ExecutionRecord = serde_json::from_str(&record).map_err(|e| {
            StoreError(format!(
                "the stored record of execution {execution_id} is unreadable: {e}"
            ))
        })?;
        Ok(Some(ExecutionItem {
            record,
            version: number(&item, "version"),
            rendered: number(&item, "rendered"),
            channel: string(&item, "channel"),
            ts: string(&item, "ts"),
            replied: strings(&item, "replied"),
            fallback: strings(&item, "fallback"),
            source: string(&item, "source"),
        }))
    }

    /// Writes the record if the item is still at `read_version` (`None`: not created yet).
    /// `Ok(false)` when another invocation wrote first.
    pub async fn save(
        &self,
        record: &ExecutionRecord,
        read_version: Option<u64>,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError(e.to_string()))?;
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&record.execution_id))
            .update_expression("SET #record = :record, #version = :next, expires_at = :expires")
            .expression_attribute_names("#record", "record")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":record", AttributeValue::S(json))
            .expression_attribute_values(
                ":next",
                AttributeValue::N((read_version.unwrap_or(0) + 1).to_string()),
            )
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((now() + KEEP_SECONDS).to_string()),
            );
        update = match read_version {
            None => update.condition_expression("attribute_not_exists(pk)"),
            Some(version) => update
                .condition_expression("#version = :read")
                .expression_attribute_values(":read", AttributeValue::N(version.to_string())),
        };
        conditional(update.send().await, "UpdateItem")
    }

    /// Takes the rendering lease; `Ok(false)` while another invocation holds it.
    pub async fn acquire(&self, execution_id: &str, owner: &str) -> Result<bool, StoreError> {
        let now = now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(execution_id))
            .update_expression("SET lease_owner = :owner, lease_until = :until")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            )
            .expression_attribute_values(":owner", AttributeValue::S(owner.into()))
            .expression_attribute_values(
                ":until",
                AttributeValue::N((now + LEASE_SECONDS).to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .send()
            .await;
        conditional(result, "UpdateItem")
    }

    /// Records the parent message, while holding the lease.
    pub async fn posted(
        &self,
        execution_id: &str,
        owner: &str,
        channel: &str,
        ts: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .leased_update(
                execution_id,
                owner,
                "SET channel = :channel, ts = :ts",
                &[
                    (":channel", AttributeValue::S(channel.into())),
                    (":ts", AttributeValue::S(ts.into())),
                ],
            )
            .await;
        conditional(result, "UpdateItem")
    }

    /// Adds `key` to the string set `set` (`replied` or `fallback`), while holding the lease.
    pub async fn remember(
        &self,
        execution_id: &str,
        owner: &str,
        set: &str,
        keys: &[String],
    ) -> Result<bool, StoreError> {
        let result = self
            .leased_update(
                execution_id,
                owner,
                &format!("ADD {set} :keys"),
                &[(":keys", AttributeValue::Ss(keys.to_vec()))],
            )
            .await;
        conditional(result, "UpdateItem")
    }

    pub async fn set_source(
        &self,
        execution_id: &str,
        owner: &str,
        source: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .leased_update(
                execution_id,
                owner,
                "SET #source = :source",
                &[(":source", AttributeValue::S(source.into()))],
            )
            .await;
        conditional(result, "UpdateItem")
    }

    /// Gives the lease back, recording the version shown when rendering succeeded.
    pub async fn release(
        &self,
        execution_id: &str,
        owner: &str,
        rendered: Option<u64>,
    ) -> Result<bool, StoreError> {
        let result = match rendered {
            Some(version) => {
                self.leased_update(
                    execution_id,
                    owner,
                    "SET rendered = :rendered REMOVE lease_owner, lease_until",
                    &[(":rendered", AttributeValue::N(version.to_string()))],
                )
                .await
            }
            None => {
                self.leased_update(execution_id, owner, "REMOVE lease_owner, lease_until", &[])
                    .await
            }
        };
        conditional(result, "UpdateItem")
    }

    async fn leased_update(
        &self,
        execution_id: &str,
        owner: &str,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        aws_sdk_dynamodb::error::SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
        >,
    > {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(execution_id))
            .update_expression(expression)
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.into()));
        if expression.contains("#source") {
            update = update.expression_attribute_names("#source", "source");
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        update.send().await
    }
}

fn key(execution_id: &str) -> AttributeValue {
    AttributeValue::S(format!("execution#{execution_id}"))
}

fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn strings(item: &HashMap<String, AttributeValue>, name: &str) -> Vec<String> {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `Ok(true)` when written, `Ok(false)` when the condition did not hold.
fn conditional<T, E>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E>>,
    operation: &str,
) -> Result<bool, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(err) => Err(describe(operation, &err)),
    }
}

fn describe<E>(operation: &str, err: &aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    StoreError(pipeline_ext::sdk::describe_error(
        "DynamoDB", operation, err,
    ))
}
