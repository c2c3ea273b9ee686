//! Every click is recorded in the `EXECUTIONS_TABLE` item `votes#<token>` before anything else
//! happens: who, what, the reason, when. The same item carries the decision once it is made,
//! so a late click learns who decided and when, and pipeline-notifier reads "rejected by" from
//! here rather than from free-form summary text.
//!
//! Counting: the approvals are the distinct users with an `approve` click. Deciding: the click
//! that meets the policy claims `decision` with a conditional write (so `PutApprovalResult` is
//! called once however many click together), then writes what CodePipeline took; a claim whose
//! call failed is given back so a later click can try again.

use crate::policy::Decision;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use pipeline_ext::slack::approval::ApprovalRef;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// Items expire (DynamoDB TTL on `expires_at`) after 30 days; approvals last at most 7.
const KEEP_SECONDS: u64 = 30 * 24 * 60 * 60;
/// More clicks than this on one approval are refused (the item stays far below 400 KB).
const MAX_CLICKS: usize = 500;
/// A claim older than this was left by an invocation that died; it can be taken over.
const CLAIM_LEASE_SECONDS: u64 = 30;
const DECIDING: &str = "deciding";

#[derive(Clone, Debug)]
pub struct VoteLedger {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// One recorded click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    pub user: String,
    pub name: String,
    pub approve: bool,
    pub at: u64,
}

/// What the item says after a click.
#[derive(Debug)]
pub struct Tally {
    clicks: Vec<Click>,
    /// The decision, once made: `Approved`, `Rejected`, or how it ended elsewhere.
    pub decision: Option<Decided>,
}

#[derive(Clone, Debug)]
pub struct Decided {
    pub status: String,
    /// Slack user ids of who decided (empty when it ended elsewhere).
    pub by: Vec<String>,
    pub at: u64,
    /// Still being recorded by another click.
    pub in_progress: bool,
}

impl Tally {
    /// Distinct approvers in the order they approved.
    pub fn approvers(&self) -> Vec<&Click> {
        let mut seen: Vec<&Click> = Vec::new();
        for click in self.clicks.iter().filter(|c| c.approve) {
            if !seen.iter().any(|s| s.user == click.user) {
                seen.push(click);
            }
        }
        seen
    }

    /// Whether `user` had already approved before their latest click.
    pub fn repeated_approval(&self, user: &str) -> bool {
        self.clicks
            .iter()
            .filter(|c| c.approve && c.user == user)
            .count()
            > 1
    }
}

impl VoteLedger {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Where approval-notifier posted the message of this approval (`channel`, `ts`), when
    /// it recorded one.
    pub async fn posted_at(&self, token: &str) -> Result<Option<(String, String)>, String> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(
                "pk",
                AttributeValue::S(pipeline_ext::slack::approval::request_key(token)),
            )
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| describe("GetItem", &e))?;
        let text = |name: &str| {
            item.item()
                .and_then(|i| i.get(name))
                .and_then(|v| v.as_s().ok())
                .cloned()
        };
        Ok(text("channel").zip(text("ts")))
    }

    /// Records a click and returns the tally including it.
    pub async fn record(
        &self,
        approval: &ApprovalRef,
        user: &str,
        name: &str,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<Tally, String> {
        let now = now();
        let mut click = HashMap::from([
            ("user".to_string(), AttributeValue::S(user.into())),
            ("name".to_string(), AttributeValue::S(or_dash(name))),
            (
                "decision".to_string(),
                AttributeValue::S(
                    match decision {
                        Decision::Approve => "approve",
                        Decision::Reject => "reject",
                    }
                    .into(),
                ),
            ),
            ("at".to_string(), AttributeValue::N(now.to_string())),
        ]);
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            click.insert("reason".into(), AttributeValue::S(reason.into()));
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&approval.token))
            .update_expression(
                "SET clicks = list_append(if_not_exists(clicks, :none), :click), \
                 pipeline_name = :pipeline, stage_name = :stage, action_name = :action, \
                 expires_at = if_not_exists(expires_at, :expires)",
            )
            .condition_expression("attribute_not_exists(clicks) OR size(clicks) < :max")
            .expression_attribute_values(":none", AttributeValue::L(Vec::new()))
            .expression_attribute_values(
                ":click",
                AttributeValue::L(vec![AttributeValue::M(click)]),
            )
            .expression_attribute_values(":pipeline", AttributeValue::S(approval.pipeline.clone()))
            .expression_attribute_values(":stage", AttributeValue::S(approval.stage.clone()))
            .expression_attribute_values(":action", AttributeValue::S(approval.action.clone()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((now + KEEP_SECONDS).to_string()),
            )
            .expression_attribute_values(":max", AttributeValue::N(MAX_CLICKS.to_string()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(tally(output.attributes().cloned().unwrap_or_default())),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Err(format!(
                "this approval already has {MAX_CLICKS} recorded clicks"
            )),
            Err(err) => Err(describe("UpdateItem", &err)),
        }
    }

    /// Claims the right to call `PutApprovalResult`: `Ok(None)` when this click has it,
    /// `Ok(Some(decided))` when a decision is made or being made.
    pub async fn claim(&self, approval: &ApprovalRef) -> Result<Option<Decided>, String> {
        let now = now();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&approval.token))
            .update_expression("SET decision = :deciding, decision_at = :now")
            .condition_expression(
                "attribute_not_exists(decision) OR (decision = :deciding AND decision_at < :stale)",
            )
            .expression_attribute_values(":deciding", AttributeValue::S(DECIDING.into()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(
                ":stale",
                AttributeValue::N(now.saturating_sub(CLAIM_LEASE_SECONDS).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => {
                let decided = self.current(approval).await?.decision;
                Ok(Some(decided.unwrap_or(Decided {
                    status: DECIDING.into(),
                    by: Vec::new(),
                    at: now,
                    in_progress: true,
                })))
            }
            Err(err) => Err(describe("UpdateItem", &err)),
        }
    }

    /// The item as it stands (a strongly consistent read).
    pub async fn current(&self, approval: &ApprovalRef) -> Result<Tally, String> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key(&approval.token))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| describe("GetItem", &e))?;
        Ok(tally(item.item().cloned().unwrap_or_default()))
    }

    /// Writes what CodePipeline took (`Approved`/`Rejected`) or how the approval ended.
    pub async fn decided(
        &self,
        approval: &ApprovalRef,
        status: &str,
        by: &[String],
        reason: Option<&str>,
    ) -> Result<(), String> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&approval.token))
            .update_expression(if reason.is_some() {
                "SET decision = :status, decision_at = :now, decided_by = :by, reason = :reason"
            } else {
                "SET decision = :status, decision_at = :now, decided_by = :by"
            })
            .expression_attribute_values(":status", AttributeValue::S(status.into()))
            .expression_attribute_values(":now", AttributeValue::N(now().to_string()))
            .expression_attribute_values(
                ":by",
                AttributeValue::L(by.iter().map(|u| AttributeValue::S(u.clone())).collect()),
            );
        if let Some(reason) = reason {
            update =
                update.expression_attribute_values(":reason", AttributeValue::S(or_dash(reason)));
        }
        update
            .send()
            .await
            .map(|_| ())
            .map_err(|e| describe("UpdateItem", &e))
    }

    /// Gives the claim back after `PutApprovalResult` failed, so a later click can decide.
    pub async fn release(&self, approval: &ApprovalRef) {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key(&approval.token))
            .update_expression("REMOVE decision, decision_at")
            .condition_expression("decision = :deciding")
            .expression_attribute_values(":deciding", AttributeValue::S(DECIDING.into()))
            .send()
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %describe("UpdateItem", &err), "could not give back the decision claim; it lapses in 30 s");
        }
    }
}

fn tally(item: HashMap<String, AttributeValue>) -> Tally {
    let text = |m: &HashMap<String, AttributeValue>, k: &str| {
        m.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let number = |m: &HashMap<String, AttributeValue>, k: &str| {
        m.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_default()
    };
    let clicks = item
        .get("clicks")
        .and_then(|v| v.as_l().ok())
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_m().ok())
        .map(|c| Click {
            user: text(c, "user"),
            name: text(c, "name"),
            approve: text(c, "decision") == "approve",
            at: number(c, "at"),
        })
        .collect();
    let decision = item
        .get("decision")
        .and_then(|v| v.as_s().ok())
        .map(|status| Decided {
            in_progress: status == DECIDING,
            status: status.clone(),
            by: item
                .get("decided_by")
                .and_then(|v| v.as_l().ok())
                .into_iter()
                .flatten()
                .filter_map(|u| u.as_s().ok().cloned())
                .collect(),
            at: number(&item, "decision_at"),
        });
    Tally { clicks, decision }
}

fn key(token: &str) -> AttributeValue {
    AttributeValue::S(pipeline_ext::slack::approval::votes_key(token))
}

/// DynamoDB refuses empty strings in some places; a dash says "none given".
fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.into()
    }
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
