//! The executions table (`EXECUTIONS_TABLE`): the one DynamoDB table the notifiers and the
//! responder share, keyed by the string `pk` ([`ItemKey`]), with DynamoDB TTL on
//! `expires_at`. This module owns the key formats, consistent reads, conditional writes,
//! claims and leases and the expiry; each function keeps only what its items mean.
//! `docs/architecture.md` ("The executions table") lists every item's attributes.
//!
//! Every write refreshes `expires_at` to [`KEEP`] from now, so an item lives 30 days after
//! its last change. Reads are strongly consistent: each reader decides on what it read.

mod item;
mod key;
mod update;

/// The value of one attribute, as the AWS SDK for DynamoDB writes it.
pub use aws_sdk_dynamodb::types::AttributeValue;
pub use item::StoredItem;
pub use key::ItemKey;
pub use update::{Condition, Update};

use crate::sdk::SdkFailure;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::ReturnValue;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The attribute DynamoDB's TTL reads.
pub const EXPIRES_AT: &str = "expires_at";
/// How long an item lives after its last write (approvals last at most 7 days).
pub const KEEP: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A call on the executions table failed.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    /// DynamoDB refused the call or did not answer (a failed condition is not an error: the
    /// call that checks one says how it came out).
    #[error(transparent)]
    Sdk(#[from] SdkFailure),
    /// An attribute holds something its writer never writes.
    #[error("the item {key} of the executions table has an unreadable {attribute}: {reason}")]
    Unreadable {
        /// The item's key.
        key: String,
        /// The attribute.
        attribute: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl TableError {
    /// Worth another attempt (no answer, throttling, a 5xx).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Sdk(failure) if failure.is_transient())
    }
}

/// A claim of an item: `attribute` holds `marker` and `since` the time it was taken while the
/// claimant works; another claimant may take it over once it is older than `lease` (its
/// holder died). Finished work replaces the marker with a result, which no claim takes.
#[derive(Clone, Copy, Debug)]
pub struct ClaimRule<'a> {
    /// The attribute that holds the marker, then the result.
    pub attribute: &'a str,
    /// The value that means "being worked on".
    pub marker: &'a str,
    /// The attribute that holds when the claim was taken (epoch seconds).
    pub since: &'a str,
    /// After how long an unfinished claim counts as abandoned.
    pub lease: Duration,
}

/// How a claim came out.
#[derive(Debug)]
pub enum Claimed {
    /// This caller holds the claim; the item as written.
    Won(StoredItem),
    /// Someone else holds it or finished the work; the item as it stands (`None` when it was
    /// deleted in between).
    Held(Option<StoredItem>),
}

/// The executions table, through a DynamoDB client.
#[derive(Clone, Debug)]
pub struct ExecutionsTable {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl ExecutionsTable {
    /// The table `name`, reached with the SDK configuration of the function.
    pub fn new(sdk: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_dynamodb::Client::new(sdk), name)
    }

    /// The table `name` through an existing client.
    pub fn with_client(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// The item, read strongly consistently; `None` when there is none.
    pub async fn get(&self, key: &ItemKey) -> Result<Option<StoredItem>, TableError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure("GetItem", key, &e))?;
        Ok(output
            .item
            .map(|attributes| StoredItem::new(key, attributes)))
    }

    /// Writes the whole item (replacing any), with its expiry.
    pub async fn put(
        &self,
        key: &ItemKey,
        attributes: impl IntoIterator<Item = (&str, AttributeValue)>,
    ) -> Result<(), TableError> {
        let mut put = self
            .client
            .put_item()
            .table_name(&self.name)
            .item("pk", AttributeValue::S(key.to_string()))
            .item(EXPIRES_AT, expiry());
        for (name, value) in attributes {
            put = put.item(name, value);
        }
        put.send()
            .await
            .map(|_| ())
            .map_err(|e| failure("PutItem", key, &e))
    }

    /// Creates the item with `update` only when no item has this key (put-if-absent); `None`
    /// when one exists.
    pub async fn create(
        &self,
        key: &ItemKey,
        update: Update,
    ) -> Result<Option<StoredItem>, TableError> {
        self.update(key, update.when(Condition::ItemAbsent)).await
    }

    /// Applies `update` (creating the item unless its condition requires it to exist) and
    /// returns the item as written; `None` when its condition did not hold.
    pub async fn update(
        &self,
        key: &ItemKey,
        update: Update,
    ) -> Result<Option<StoredItem>, TableError> {
        let rendered = update.set(EXPIRES_AT, expiry()).render();
        let mut call = self
            .client
            .update_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.to_string()))
            .update_expression(rendered.update)
            .set_expression_attribute_names(Some(rendered.names))
            .set_expression_attribute_values(Some(rendered.values))
            .return_values(ReturnValue::AllNew);
        if let Some(condition) = rendered.condition {
            call = call.condition_expression(condition);
        }
        match call.send().await {
            Ok(output) => Ok(Some(StoredItem::new(
                key,
                output.attributes.unwrap_or_default(),
            ))),
            Err(err) if condition_failed(&err) => Ok(None),
            Err(err) => Err(failure("UpdateItem", key, &err)),
        }
    }

    /// Takes the claim `rule` describes, writing `with` in the same request; when it is held,
    /// reads the item as it stands.
    pub async fn claim(
        &self,
        key: &ItemKey,
        rule: &ClaimRule<'_>,
        with: Update,
    ) -> Result<Claimed, TableError> {
        let now = now();
        let stale = now.saturating_sub(rule.lease.as_secs());
        let update = with
            .set_text(rule.attribute, rule.marker)
            .set_number(rule.since, now)
            .when(
                Condition::absent(rule.attribute).or(Condition::text_is(
                    rule.attribute,
                    rule.marker,
                )
                .and(Condition::number_below(rule.since, stale))),
            );
        match self.update(key, update).await? {
            Some(item) => Ok(Claimed::Won(item)),
            None => Ok(Claimed::Held(self.get(key).await?)),
        }
    }

    /// Gives a claim back after its work failed, so the next claimant need not wait for the
    /// lease; `false` when it was no longer an unfinished claim. Never fails: a claim that
    /// could not be given back lapses with its lease, which the log says.
    pub async fn release_claim(&self, key: &ItemKey, rule: &ClaimRule<'_>) -> bool {
        let update = Update::new()
            .remove(rule.attribute)
            .remove(rule.since)
            .when(Condition::text_is(rule.attribute, rule.marker));
        match self.update(key, update).await {
            Ok(released) => released.is_some(),
            Err(err) => {
                tracing::warn!(error = %err, lease_seconds = rule.lease.as_secs(), "could not give a claim back; it lapses with its lease");
                false
            }
        }
    }

    /// Takes the lease of an existing item for `owner` until `lease` from now (`lease_owner`,
    /// `lease_until`) and returns the item under the lease; `None` while another owner holds
    /// an unexpired one, or when there is no item.
    pub async fn lease(
        &self,
        key: &ItemKey,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<StoredItem>, TableError> {
        let now = now();
        let update =
            Update::new()
                .set_text(LEASE_OWNER, owner)
                .set_number(LEASE_UNTIL, now + lease.as_secs())
                .when(Condition::ItemExists.and(
                    Condition::absent(LEASE_UNTIL).or(Condition::number_below(LEASE_UNTIL, now)),
                ));
        self.update(key, update).await
    }

    /// Applies `update` while `owner` holds the lease; `None` when it no longer does.
    pub async fn update_under_lease(
        &self,
        key: &ItemKey,
        owner: &str,
        update: Update,
    ) -> Result<Option<StoredItem>, TableError> {
        self.update(key, update.when(Condition::text_is(LEASE_OWNER, owner)))
            .await
    }

    /// Gives the lease back, writing `update` in the same request, and returns the item after
    /// release; `None` when the lease had lapsed and another owner took it.
    pub async fn release_lease(
        &self,
        key: &ItemKey,
        owner: &str,
        update: Update,
    ) -> Result<Option<StoredItem>, TableError> {
        let update = update.remove(LEASE_OWNER).remove(LEASE_UNTIL);
        self.update_under_lease(key, owner, update).await
    }
}

/// Who holds an item's lease.
const LEASE_OWNER: &str = "lease_owner";
/// Until when (epoch seconds).
const LEASE_UNTIL: &str = "lease_until";

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn expiry() -> AttributeValue {
    AttributeValue::N((now() + KEEP.as_secs()).to_string())
}

fn condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

fn failure<E>(
    operation: &'static str,
    key: &ItemKey,
    err: &aws_sdk_dynamodb::error::SdkError<E>,
) -> TableError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    TableError::Sdk(SdkFailure::from_sdk("DynamoDB", operation, err).on(key.to_string()))
}
