//! Every click is recorded in the executions-table item `votes#<token>` before anything else
//! happens: who, what, the reason, when. The same item carries the decision once it is made,
//! so a late click learns who decided and when, and pipeline-notifier reads "rejected by" from
//! here rather than from free-form summary text.
//!
//! Counting: the approvals are the distinct users with an `approve` click. Deciding: the click
//! that meets the policy claims `decision` with a conditional write (so `PutApprovalResult` is
//! called once however many click together), then writes what CodePipeline took; a claim whose
//! call failed is given back so a later click can try again.

use crate::policy::Decision;
use pipeline_ext::executions_table::{
    now, AttributeValue, ClaimRule, Claimed, Condition, ExecutionsTable, ItemKey, StoredItem,
    TableError, Update,
};
use pipeline_ext::slack::approval::ApprovalRef;
use std::collections::HashMap;
use std::time::Duration;

/// More clicks than this on one approval are refused (the item stays far below 400 KB).
const MAX_CLICKS: usize = 500;
const DECIDING: &str = "deciding";
/// The decision claim: `decision` = `deciding` while one click calls `PutApprovalResult`; a
/// claim older than the lease was left by an invocation that died and can be taken over.
const DECIDING_RULE: ClaimRule<'static> = ClaimRule {
    attribute: "decision",
    marker: DECIDING,
    since: "decision_at",
    lease: Duration::from_secs(30),
};

/// Where clicks and decisions are recorded.
#[derive(Clone, Debug)]
pub struct VoteLedger {
    table: ExecutionsTable,
}

/// Why a click or a decision was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum VoteError {
    /// The executions table could not be used.
    #[error(transparent)]
    Table(#[from] TableError),
    /// The approval already holds [`MAX_CLICKS`] clicks.
    #[error("this approval already has {MAX_CLICKS} recorded clicks")]
    TooManyClicks,
}

/// One recorded click.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    /// The Slack user id.
    pub user: String,
    /// Their name as Slack gave it (`-` when none).
    pub name: String,
    /// Approve (else reject).
    pub approve: bool,
    /// When (epoch seconds).
    pub at: u64,
}

/// What the item says after a click.
#[derive(Debug)]
pub struct Tally {
    clicks: Vec<Click>,
    /// The decision, once made: `Approved`, `Rejected`, or how it ended elsewhere.
    pub decision: Option<Decided>,
}

/// A decision made or being made.
#[derive(Clone, Debug)]
pub struct Decided {
    /// `Approved`, `Rejected`, `Expired`, `AlreadyDecided`, or `deciding`.
    pub status: String,
    /// Slack user ids of who decided (empty when it ended elsewhere).
    pub by: Vec<String>,
    /// When (epoch seconds).
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
    /// The ledger in the executions table.
    pub fn new(table: ExecutionsTable) -> Self {
        Self { table }
    }

    /// Where approval-notifier posted the message of this approval (`channel`, `ts`), when
    /// it recorded one.
    pub async fn posted_at(&self, token: &str) -> Result<Option<(String, String)>, TableError> {
        let item = self.table.get(&ItemKey::approval_request(token)).await?;
        Ok(item.and_then(|item| {
            Some((
                item.text("channel")?.to_owned(),
                item.text("ts")?.to_owned(),
            ))
        }))
    }

    /// Records a click and returns the tally including it.
    pub async fn record(
        &self,
        approval: &ApprovalRef,
        user: &str,
        name: &str,
        decision: Decision,
        reason: Option<&str>,
    ) -> Result<Tally, VoteError> {
        let text = |value: &str| AttributeValue::S(value.to_string());
        let mut click = HashMap::from([
            ("user".to_string(), text(user)),
            ("name".to_string(), text(&or_dash(name))),
            (
                "decision".to_string(),
                text(match decision {
                    Decision::Approve => "approve",
                    Decision::Reject => "reject",
                }),
            ),
            ("at".to_string(), AttributeValue::N(now().to_string())),
        ]);
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            click.insert("reason".into(), text(reason));
        }
        let update = Update::new()
            .append("clicks", vec![AttributeValue::M(click)])
            .set_text("pipeline_name", &approval.pipeline)
            .set_text("stage_name", &approval.stage)
            .set_text("action_name", &approval.action)
            .when(Condition::size_below("clicks", MAX_CLICKS));
        match self.table.update(&key(approval), update).await? {
            Some(item) => Ok(tally(&item)),
            None => Err(VoteError::TooManyClicks),
        }
    }

    /// Claims the right to call `PutApprovalResult`: `Ok(None)` when this click has it,
    /// `Ok(Some(decided))` when a decision is made or being made.
    pub async fn claim(&self, approval: &ApprovalRef) -> Result<Option<Decided>, TableError> {
        match self
            .table
            .claim(&key(approval), &DECIDING_RULE, Update::new())
            .await?
        {
            Claimed::Won(_) => Ok(None),
            Claimed::Held(item) => Ok(Some(item.and_then(|item| tally(&item).decision).unwrap_or(
                Decided {
                    status: DECIDING.into(),
                    by: Vec::new(),
                    at: now(),
                    in_progress: true,
                },
            ))),
        }
    }

    /// The item as it stands (a strongly consistent read).
    pub async fn current(&self, approval: &ApprovalRef) -> Result<Tally, TableError> {
        let item = self.table.get(&key(approval)).await?;
        Ok(tally(&item.unwrap_or_default()))
    }

    /// Writes what CodePipeline took (`Approved`/`Rejected`) or how the approval ended.
    pub async fn decided(
        &self,
        approval: &ApprovalRef,
        status: &str,
        by: &[String],
        reason: Option<&str>,
    ) -> Result<(), TableError> {
        let mut update = Update::new()
            .set_text("decision", status)
            .set_number("decision_at", now())
            .set(
                "decided_by",
                AttributeValue::L(by.iter().map(|u| AttributeValue::S(u.clone())).collect()),
            );
        if let Some(reason) = reason {
            update = update.set_text("reason", or_dash(reason));
        }
        self.table.update(&key(approval), update).await.map(drop)
    }

    /// Gives the claim back after `PutApprovalResult` failed, so a later click can decide.
    pub async fn release(&self, approval: &ApprovalRef) {
        self.table
            .release_claim(&key(approval), &DECIDING_RULE)
            .await;
    }
}

fn tally(item: &StoredItem) -> Tally {
    let clicks = item
        .list("clicks")
        .iter()
        .filter_map(|c| c.as_m().ok())
        .map(|c| {
            let text = |k: &str| {
                c.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            Click {
                user: text("user"),
                name: text("name"),
                approve: text("decision") == "approve",
                at: c
                    .get("at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_default(),
            }
        })
        .collect();
    let decision = item.text("decision").map(|status| Decided {
        in_progress: status == DECIDING,
        status: status.to_owned(),
        by: item.string_list("decided_by"),
        at: item.number("decision_at").unwrap_or_default(),
    });
    Tally { clicks, decision }
}

fn key(approval: &ApprovalRef) -> ItemKey {
    ItemKey::votes(&approval.token)
}

/// DynamoDB refuses empty strings in some places; a dash says "none given".
fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.into()
    }
}
