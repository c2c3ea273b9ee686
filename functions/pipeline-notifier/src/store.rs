//! The `EXECUTIONS_TABLE` item of one execution (`pk = execution#<id>`), which turns
//! at-least-once, unordered, concurrent deliveries into one message updated in order.
//!
//! - `record` (the folded [`ExecutionRecord`], JSON) and `version` change together, under a
//!   condition on the version read: concurrent invocations never lose each other's events, and
//!   an event id already in the record is not applied twice.
//! - Only the holder of the `lease_owner`/`lease_until` lease talks to Slack for the execution:
//!   it posts the parent message (so there is one), updates it, posts the thread replies
//!   (each recorded in `replied` at once) and, when it gives the lease back, records what it
//!   showed (`rendered`, `ts`, `source`). The release returns the item, so the holder sees any
//!   version written meanwhile and renders again; an invocation that finds the lease taken
//!   leaves after writing its event, because the holder's release sees that event. A lease left by a run that
//!   died expires after [`LEASE_SECONDS`].
//! - `expires_at` is the table's TTL attribute.

use crate::execution::ExecutionRecord;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
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
    /// The source revision, once looked up (JSON written by [`crate::lookup::SourceInfo`]).
    pub source: Option<String>,
    /// The parent message was found deleted once and posted again; it is not reposted twice.
    pub reposted: bool,
}

#[derive(Clone, Debug)]
pub struct ExecutionStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// A DynamoDB call failed for another reason than a condition.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

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
        output
            .item
            .map(|item| parse(execution_id, &item))
            .transpose()
    }

    /// Writes the record if the item is still at `read_version` (`None`: not created yet), and
    /// returns the item as written; `Ok(None)` when another invocation wrote first.
    pub async fn save(
        &self,
        record: &ExecutionRecord,
        read_version: Option<u64>,
    ) -> Result<Option<ExecutionItem>, StoreError> {
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
            )
            .return_values(ReturnValue::AllNew);
        update = match read_version {
            None => update.condition_expression("attribute_not_exists(pk)"),
            Some(version) => update
                .condition_expression("#version = :read")
                .expression_attribute_values(":read", AttributeValue::N(version.to_string())),
        };
        self.written(&record.execution_id, update.send().await)
    }

    /// Takes the rendering lease and returns the item as it is under the lease; `Ok(None)`
    /// while another invocation holds it.
    pub async fn acquire(
        &self,
        execution_id: &str,
        owner: &str,
    ) -> Result<Option<ExecutionItem>, StoreError> {
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
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        self.written(execution_id, result)
    }

    /// Adds `keys` to the string set `set` (`replied` or `fallback`), while holding the lease.
    pub async fn remember(
        &self,
        execution_id: &str,
        owner: &str,
        set: &str,
        keys: &[String],
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(execution_id))
            .update_expression(format!("ADD {set} :keys"))
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.into()))
            .expression_attribute_values(":keys", AttributeValue::Ss(keys.to_vec()))
            .send()
            .await;
        Ok(self
            .written(
                execution_id,
                result.map(|_| None::<HashMap<String, AttributeValue>>),
            )?
            .is_some())
    }

    /// Gives the lease back with what the holder showed: the version rendered (when rendering
    /// succeeded), the parent message and the source revision (when new). Returns the item
    /// after release; `Ok(None)` when the lease had expired and another invocation took it.
    pub async fn release(
        &self,
        execution_id: &str,
        owner: &str,
        shown: &Shown,
    ) -> Result<Option<ExecutionItem>, StoreError> {
        let mut sets = Vec::new();
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(execution_id))
            .condition_expression("lease_owner = :me")
            .expression_attribute_values(":me", AttributeValue::S(owner.into()))
            .return_values(ReturnValue::AllNew);
        if let Some(version) = shown.rendered {
            sets.push("rendered = :rendered");
            update = update
                .expression_attribute_values(":rendered", AttributeValue::N(version.to_string()));
        }
        if let Some((channel, ts)) = &shown.message {
            sets.push("channel = :channel, ts = :ts");
            update = update
                .expression_attribute_values(":channel", AttributeValue::S(channel.clone()))
                .expression_attribute_values(":ts", AttributeValue::S(ts.clone()));
        }
        if let Some(source) = &shown.source {
            sets.push("#source = :source");
            update = update
                .expression_attribute_names("#source", "source")
                .expression_attribute_values(":source", AttributeValue::S(source.clone()));
        }
        let set = if sets.is_empty() {
            String::new()
        } else {
            format!("SET {} ", sets.join(", "))
        };
        let result = update
            .update_expression(format!("{set}REMOVE lease_owner, lease_until"))
            .send()
            .await;
        self.written(execution_id, result)
    }

    /// The item a conditional `UpdateItem` returned, `None` when its condition failed.
    fn written<O: UpdatedItem, E>(
        &self,
        execution_id: &str,
        result: Result<O, aws_sdk_dynamodb::error::SdkError<E>>,
    ) -> Result<Option<ExecutionItem>, StoreError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match result {
            Ok(output) => match output.item() {
                Some(item) => parse(execution_id, item).map(Some),
                None => Ok(Some(ExecutionItem::default())),
            },
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(err) => Err(describe("UpdateItem", &err)),
        }
    }
}

/// What a lease holder showed in Slack, recorded when it gives the lease back.
#[derive(Debug, Default)]
pub struct Shown {
    pub rendered: Option<u64>,
    pub message: Option<(String, String)>,
    pub source: Option<String>,
}

/// Outputs that may carry the item (`ReturnValues: ALL_NEW`).
trait UpdatedItem {
    fn item(&self) -> Option<&HashMap<String, AttributeValue>>;
}

impl UpdatedItem for aws_sdk_dynamodb::operation::update_item::UpdateItemOutput {
    fn item(&self) -> Option<&HashMap<String, AttributeValue>> {
        self.attributes.as_ref()
    }
}

impl UpdatedItem for Option<HashMap<String, AttributeValue>> {
    fn item(&self) -> Option<&HashMap<String, AttributeValue>> {
        self.as_ref()
    }
}

fn parse(
    execution_id: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<ExecutionItem, StoreError> {
    let record = string(item, "record").unwrap_or_default();
    let record: ExecutionRecord = serde_json::from_str(&record).map_err(|e| {
        StoreError(format!(
            "the stored record of execution {execution_id} is unreadable: {e}"
        ))
    })?;
    Ok(ExecutionItem {
        record,
        version: number(item, "version"),
        rendered: number(item, "rendered"),
        channel: string(item, "channel"),
        ts: string(item, "ts"),
        replied: strings(item, "replied"),
        fallback: strings(item, "fallback"),
        source: string(item, "source"),
        reposted: !strings(item, "reposted").is_empty(),
    })
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

fn describe<E>(operation: &'static str, err: &aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    StoreError(pipeline_ext::sdk::SdkFailure::from_sdk("DynamoDB", operation, err).to_string())
}
