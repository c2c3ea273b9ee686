//! The executions-table item of one execution (`pk = execution#<id>`), which turns
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
use pipeline_ext::executions_table::{
    Condition, ExecutionsTable, ItemKey, StoredItem, TableError, Update,
};
use std::time::Duration;

/// How long a lease keeps other invocations from rendering.
pub const LEASE_SECONDS: u64 = 60;

/// The stored state of one execution.
#[derive(Clone, Debug, Default)]
pub struct ExecutionItem {
    /// The folded events.
    pub record: ExecutionRecord,
    /// Bumped by every write of `record`.
    pub version: u64,
    /// The version the Slack message shows.
    pub rendered: u64,
    /// The parent message's channel, once posted.
    pub channel: Option<String>,
    /// The parent message's ts, once posted.
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

/// The executions' items in the executions table.
#[derive(Clone, Debug)]
pub struct ExecutionStore {
    table: ExecutionsTable,
}

impl ExecutionStore {
    /// The store in the executions table.
    pub fn new(table: ExecutionsTable) -> Self {
        Self { table }
    }

    /// The item of an execution, when there is one.
    pub async fn load(&self, execution_id: &str) -> Result<Option<ExecutionItem>, TableError> {
        self.table
            .get(&ItemKey::execution(execution_id))
            .await?
            .map(|item| parse(&item))
            .transpose()
    }

    /// Writes the record if the item is still at `read_version` (`None`: not created yet), and
    /// returns the item as written; `Ok(None)` when another invocation wrote first.
    pub async fn save(
        &self,
        record: &ExecutionRecord,
        read_version: Option<u64>,
    ) -> Result<Option<ExecutionItem>, TableError> {
        let key = ItemKey::execution(&record.execution_id);
        let json = serde_json::to_string(record).map_err(|e| TableError::Unreadable {
            key: key.to_string(),
            attribute: "record".into(),
            reason: e.to_string(),
        })?;
        let update = Update::new()
            .set_text("record", json)
            .set_number("version", read_version.unwrap_or(0) + 1);
        let written = match read_version {
            None => self.table.create(&key, update).await?,
            Some(version) => {
                let update = update.when(Condition::number_is("version", version));
                self.table.update(&key, update).await?
            }
        };
        written.map(|item| parse(&item)).transpose()
    }

    /// Takes the rendering lease and returns the item as it is under the lease; `Ok(None)`
    /// while another invocation holds it.
    pub async fn acquire(
        &self,
        execution_id: &str,
        owner: &str,
    ) -> Result<Option<ExecutionItem>, TableError> {
        let lease = Duration::from_secs(LEASE_SECONDS);
        self.table
            .lease(&ItemKey::execution(execution_id), owner, lease)
            .await?
            .map(|item| parse(&item))
            .transpose()
    }

    /// Adds `keys` to the string set `set` (`replied` or `fallback`), while holding the lease;
    /// `false` when the lease was lost.
    pub async fn remember(
        &self,
        execution_id: &str,
        owner: &str,
        set: &str,
        keys: &[String],
    ) -> Result<bool, TableError> {
        let update = Update::new().add_to_set(set, keys.to_vec());
        Ok(self
            .table
            .update_under_lease(&ItemKey::execution(execution_id), owner, update)
            .await?
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
    ) -> Result<Option<ExecutionItem>, TableError> {
        let mut update = Update::new();
        if let Some(version) = shown.rendered {
            update = update.set_number("rendered", version);
        }
        if let Some((channel, ts)) = &shown.message {
            update = update.set_text("channel", channel).set_text("ts", ts);
        }
        if let Some(source) = &shown.source {
            update = update.set_text("source", source);
        }
        self.table
            .release_lease(&ItemKey::execution(execution_id), owner, update)
            .await?
            .map(|item| parse(&item))
            .transpose()
    }
}

/// What a lease holder showed in Slack, recorded when it gives the lease back.
#[derive(Debug, Default)]
pub struct Shown {
    /// The version now shown.
    pub rendered: Option<u64>,
    /// The parent message (channel, ts), when posted by this holder.
    pub message: Option<(String, String)>,
    /// The source revision, when looked up by this holder.
    pub source: Option<String>,
}

fn parse(item: &StoredItem) -> Result<ExecutionItem, TableError> {
    Ok(ExecutionItem {
        record: item.json("record")?.ok_or_else(|| TableError::Unreadable {
            key: item.key().to_string(),
            attribute: "record".into(),
            reason: "missing".into(),
        })?,
        version: item.number("version").unwrap_or(0),
        rendered: item.number("rendered").unwrap_or(0),
        channel: item.text("channel").map(str::to_owned),
        ts: item.text("ts").map(str::to_owned),
        replied: item.string_set("replied"),
        fallback: item.string_set("fallback"),
        source: item.text("source").map(str::to_owned),
        reposted: !item.string_set("reposted").is_empty(),
    })
}
