//! pipeline-notifier: CodePipeline's EventBridge events become one Slack message per pipeline
//! execution, updated in place, with a thread reply for each failed action.
//!
//! Each invocation folds its event into the execution's item in `EXECUTIONS_TABLE` (see
//! [`store`]), then brings the Slack message up to date if no other invocation is doing so.
//! Events of other types, and pipelines outside `PIPELINES`, are logged and skipped. The
//! invocation fails (so Lambda retries it) only when the message or a failure notice could not
//! be delivered to Slack nor to the fallback topic, or DynamoDB could not be used.
//!
//! Where things are: [`event`] (the EventBridge events), [`execution`] (the record folded from
//! them), [`store`] (the table item, lease and processed events), [`lookup`] (CodePipeline
//! reads), [`message`] (the Slack messages; `conditions` renders the stage conditions' rules), [`filters`] (`PIPELINES`, `SHOW_STATES`); this file
//! is the handler.

#![warn(missing_docs)]

mod approval_message;
mod conditions;
pub mod error;
pub mod event;
pub mod execution;
pub mod filters;
pub mod lookup;
pub mod message;
pub mod store;

pub use error::NotifyError;
use event::{StateChange, Subject};
use execution::{ActionRecord, ExecutionRecord};
use filters::Filters;
use lookup::{LookupError, PipelineLookup, RuleResult, SourceInfo};
use pipeline_ext::executions_table::ExecutionsTable;
use pipeline_ext::secrets::SecretCache;
use pipeline_ext::slack::{
    optional, required, SettingsError, SlackClient, SlackSecret, SlackSettings,
};
use serde_json::{json, Value};
use std::time::Duration;
use store::{ExecutionItem, ExecutionStore, Shown};
use tokio::time::Instant;

/// Longest wait for one Slack call, rate-limit waits included.
const SLACK_CALL_BUDGET: Duration = Duration::from_secs(20);
/// Conditional-write retries before giving up on a very busy execution.
const MAX_WRITE_ATTEMPTS: usize = 25;
/// Slack update rounds per invocation: each round shows everything written before it started.
const MAX_UPDATE_ROUNDS: usize = 10;

/// Settings from the environment (README, "Configuration reference").
#[derive(Clone, Debug)]
pub struct Config {
    /// Where and how to post.
    pub slack: SlackSettings,
    /// `EXECUTIONS_TABLE`.
    pub table: String,
    /// `PIPELINES` and `SHOW_STATES`.
    pub filters: Filters,
}

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        let optional = |name: &str| optional(name).unwrap_or_default();
        Ok(Self {
            slack: SlackSettings::from_env()?,
            table: required("EXECUTIONS_TABLE")?,
            filters: Filters::new(&optional("PIPELINES"), &optional("SHOW_STATES"))?,
        })
    }
}

/// What the function keeps across invocations.
#[derive(Clone)]
pub struct Notifier {
    /// Settings from the environment.
    pub config: Config,
    secrets: SecretCache,
    store: ExecutionStore,
    approvals: approval_message::ApprovalMessages,
    lookup: PipelineLookup,
    sns: aws_sdk_sns::Client,
    http: reqwest::Client,
}

impl Notifier {
    /// Builds the clients once per container; only the HTTP client can fail to build.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        let table = ExecutionsTable::new(sdk, config.table.clone());
        Ok(Self {
            store: ExecutionStore::new(table.clone()),
            approvals: approval_message::ApprovalMessages::new(table),
            lookup: PipelineLookup::new(aws_sdk_codepipeline::Client::new(sdk)),
            secrets: SecretCache::new(aws_sdk_secretsmanager::Client::new(sdk)),
            sns: aws_sdk_sns::Client::new(sdk),
            http: pipeline_ext::https::client_builder()
                .user_agent(concat!(
                    "codepipeline-pipeline-notifier/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()?,
            config,
        })
    }

    /// Handles one EventBridge event; `deadline` is the invocation's.
    pub async fn handle(&self, event: Value, deadline: Instant) -> Result<Value, NotifyError> {
        let change = match event::parse(&event) {
            Ok(change) => change,
            Err(why) => {
                let id = event.get("id").and_then(Value::as_str).unwrap_or("");
                tracing::warn!(event_id = %id, reason = %why, "event skipped");
                return Ok(json!({"skipped": why.to_string()}));
            }
        };
        // Whatever PIPELINES says: the approval message was posted for every pipeline.
        if let Subject::Action(action) = &change.subject {
            if action.category == "Approval" && approval_message::ended(&change.state) {
                self.close_approval(&change, action, deadline).await;
            }
        }
        if !self.config.filters.pipeline(&change.pipeline) {
            tracing::info!(pipeline = %change.pipeline, "pipeline not in PIPELINES; event skipped");
            return Ok(json!({"skipped": "pipeline not in PIPELINES"}));
        }
        let (fresh, item) = self.fold(&change).await?;
        if !fresh {
            tracing::info!(event_id = %change.event_id, execution = %change.execution_id, "event already applied (repeat delivery)");
        }
        self.publish(item, deadline).await?;
        Ok(json!({"execution": change.execution_id, "state": change.state, "duplicate": !fresh}))
    }

    /// Rewrites the approval message of an approval that ended without a decision in Slack.
    /// Best effort: the execution's message does not depend on it.
    async fn close_approval(
        &self,
        change: &StateChange,
        action: &event::ActionChange,
        deadline: Instant,
    ) {
        let id = &change.execution_id;
        let posted = match self
            .approvals
            .claim(id, &action.stage, &action.action)
            .await
        {
            Ok(Some(posted)) => posted,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "could not look up the approval message");
                return;
            }
        };
        let update = approval_message::closed(
            &posted,
            &change.state,
            action.summary.as_deref(),
            change.at_ms,
        );
        let sent = match self
            .secrets
            .get_json::<SlackSecret>(&self.config.slack.secret_arn)
            .await
        {
            Ok(secret) => {
                let slack = SlackClient::new(
                    self.http.clone(),
                    &self.config.slack.api_url,
                    secret.bot_token,
                );
                let by = (Instant::now() + SLACK_CALL_BUDGET).min(deadline);
                slack
                    .call("chat.update", &update, by)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(err) => Err(err.to_string()),
        };
        match sent {
            Ok(_) => {
                tracing::info!(execution = %id, state = %change.state, "approval message closed: the approval ended outside Slack")
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not rewrite the approval message");
                self.approvals
                    .release(id, &action.stage, &action.action)
                    .await;
            }
        }
    }

    /// Folds the event into the stored record; returns whether it was new, and the item.
    async fn fold(&self, change: &StateChange) -> Result<(bool, ExecutionItem), NotifyError> {
        let id = &change.execution_id;
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let item = self.store.load(id).await?;
            let (mut record, read_version) = match &item {
                Some(item) => (item.record.clone(), Some(item.version)),
                None => (ExecutionRecord::new(change), None),
            };
            if !record.apply(change) {
                return Ok((false, item.unwrap_or_default()));
            }
            let saved = self.store.save(&record, read_version).await?;
            if let Some(saved) = saved {
                log_change(change);
                return Ok((true, saved));
            }
        }
        Err(NotifyError::Contended {
            execution: id.clone(),
            attempts: MAX_WRITE_ATTEMPTS,
        })
    }

    /// Brings Slack up to date with the stored record, unless another invocation is doing it.
    async fn publish(&self, mut item: ExecutionItem, deadline: Instant) -> Result<(), NotifyError> {
        let id = item.record.execution_id.clone();
        for _ in 0..MAX_UPDATE_ROUNDS {
            if item.rendered >= item.version || !self.shown(&item) {
                return Ok(());
            }
            let owner = uuid::Uuid::new_v4().to_string();
            // Under the lease, the item as it is now: the message may have been posted meanwhile.
            let Some(leased) = self.store.acquire(&id, &owner).await? else {
                // The holder's release will show this event.
                return Ok(());
            };
            let mut shown = Shown::default();
            let updated = self
                .update_slack(&leased, &owner, &mut shown, deadline)
                .await;
            if updated.is_ok() {
                shown.rendered = Some(leased.version);
            }
            let released = self.store.release(&id, &owner, &shown).await;
            updated?;
            match released? {
                Some(after) => item = after,
                None => {
                    tracing::warn!(execution = %id, "lease expired while updating Slack; another invocation took over");
                    return Ok(());
                }
            }
        }
        tracing::warn!(execution = %id, "still changing after {MAX_UPDATE_ROUNDS} updates; the next event shows the rest");
        Ok(())
    }

    fn shown(&self, item: &ExecutionItem) -> bool {
        item.ts.is_some() || self.config.filters.state(item.record.state())
    }

    /// Posts or updates the parent message and answers new failures in its thread.
    async fn update_slack(
        &self,
        item: &ExecutionItem,
        owner: &str,
        shown: &mut Shown,
        deadline: Instant,
    ) -> Result<(), NotifyError> {
        let record = &item.record;
        let id = &record.execution_id;
        let pending: Vec<&ActionRecord> = record
            .failed_actions()
            .filter(|a| !item.replied.contains(&a.failure_key()))
            .collect();
        let delivered = self.deliver(item, owner, shown, &pending, deadline).await;
        let Err(slack_error) = delivered else {
            return Ok(());
        };
        tracing::error!(execution = %id, error = %slack_error, "could not update Slack");
        // A failure notice must not be lost: copy it to the fallback topic.
        let unsent: Vec<&ActionRecord> = pending
            .iter()
            .copied()
            .filter(|a| !item.fallback.contains(&a.failure_key()))
            .collect();
        let failed_run =
            record.state() == "FAILED" && !item.fallback.contains(&"pipeline".to_string());
        if unsent.is_empty() && !failed_run {
            return Err(slack_error);
        }
        let Some(topic) = &self.config.slack.fallback_topic_arn else {
            return Err(NotifyError::NoticeLost(slack_error.to_string()));
        };
        pipeline_ext::slack::fallback::publish_copy(
            &self.sns,
            topic,
            &format!("CodePipeline {}", message::headline(record)),
            &message::fallback_text(record, &unsent),
            &slack_error.to_string(),
        )
        .await
        .map_err(|e| {
            NotifyError::NoticeLost(format!("{slack_error}; the fallback topic failed too: {e}"))
        })?;
        tracing::warn!(execution = %id, topic = %topic, "failure notice sent to the fallback topic instead of Slack");
        let mut keys: Vec<String> = unsent.iter().map(|a| a.failure_key()).collect();
        if failed_run {
            keys.push("pipeline".into());
        }
        if let Err(err) = self.store.remember(id, owner, "fallback", &keys).await {
            tracing::warn!(execution = %id, error = %err, "could not record the fallback copy");
        }
        Ok(())
    }

    async fn deliver(
        &self,
        item: &ExecutionItem,
        owner: &str,
        shown: &mut Shown,
        pending: &[&ActionRecord],
        deadline: Instant,
    ) -> Result<(), NotifyError> {
        let record = &item.record;
        let id = &record.execution_id;
        // The secret, the source revision and the rules are independent: read them together.
        let (secret, source, rules) = tokio::join!(
            self.secrets
                .get_json::<SlackSecret>(&self.config.slack.secret_arn),
            self.source(item, shown),
            self.rules(record)
        );
        let secret = secret.map_err(|e| NotifyError::Secret(e.to_string()))?;
        let slack = SlackClient::new(
            self.http.clone(),
            &self.config.slack.api_url,
            secret.bot_token,
        );
        let call_deadline = || (Instant::now() + SLACK_CALL_BUDGET).min(deadline);
        let (text, blocks) = message::parent(record, source.as_ref(), &rules);
        let channel = item
            .channel
            .clone()
            .unwrap_or_else(|| self.config.slack.channel.clone());
        let mut ts = item.ts.clone();
        // A parent Slack will not update (edit window closed, bot removed from the channel…)
        // must not keep the failures from being explained: the replies still go out, and the
        // invocation fails afterwards only if the update may work on a retry.
        let mut parent_error = None;
        let mut threaded = true;
        if let Some(current) = &ts {
            let update = json!({"channel": channel, "ts": current, "text": text, "blocks": blocks});
            match slack.call("chat.update", &update, call_deadline()).await {
                Ok(_) => {}
                Err(err) if err.code() == Some("message_not_found") && !item.reposted => {
                    tracing::warn!(execution = %id, "the parent message was deleted; posting a new one, once");
                    ts = None;
                    self.store
                        .remember(id, owner, "reposted", &["parent".to_string()])
                        .await?;
                }
                Err(err) if err.code() == Some("message_not_found") => {
                    tracing::warn!(execution = %id, "the parent message is gone again; not reposting it, failures are posted on their own");
                    threaded = false;
                }
                Err(err) => {
                    tracing::warn!(execution = %id, error = %err, "the parent message could not be updated; failures still go to its thread");
                    if worth_retrying(&err) {
                        parent_error = Some(NotifyError::Slack(err.to_string()));
                    }
                }
            }
        }
        let ts = match ts {
            Some(ts) => ts,
            None => {
                let post = json!({"channel": channel, "text": text, "blocks": blocks, "unfurl_links": false});
                let answer = slack
                    .call("chat.postMessage", &post, call_deadline())
                    .await
                    .map_err(|e| NotifyError::Slack(e.to_string()))?;
                let ts = answer["ts"].as_str().unwrap_or_default().to_string();
                let channel = answer["channel"].as_str().unwrap_or(&channel).to_string();
                tracing::info!(execution = %id, pipeline = %record.pipeline, ts = %ts, "parent message posted");
                // Recorded with the release, on every path, so a retry never posts a second one.
                shown.message = Some((channel, ts.clone()));
                if item.ts.is_none() && message::is_automated_rollback(record, source.as_ref()) {
                    self.point_to_rollback(&slack, record, call_deadline())
                        .await;
                }
                ts
            }
        };
        if pending.is_empty() {
            return parent_error.map_or(Ok(()), Err);
        }
        let failures = match self.lookup.failures(&record.pipeline, id).await {
            Ok(failures) => failures,
            Err(err) => {
                tracing::warn!(execution = %id, error = %err, "no action details; replying with what the events say");
                Vec::new()
            }
        };
        let channel = shown
            .message
            .as_ref()
            .map(|(c, _)| c.clone())
            .unwrap_or(channel);
        for action in pending {
            let detail = failures
                .iter()
                .find(|(stage, name, _)| stage == &action.stage && name == &action.action)
                .map(|(_, _, detail)| detail);
            // Who rejected an approval comes from approval-responder's record, never from the
            // summary text, which anyone allowed to call PutApprovalResult can write.
            let decided = if action.is_approval() {
                self.approvals
                    .slack_decision(id, &action.stage, &action.action)
                    .await
                    .unwrap_or_else(|err| {
                        tracing::warn!(execution = %id, error = %err, "could not read the Slack decision of the approval");
                        None
                    })
            } else {
                None
            };
            let (text, blocks) = message::failure_reply(action, detail, decided.as_ref());
            let mut reply =
                json!({"channel": channel, "text": text, "blocks": blocks, "unfurl_links": false});
            if threaded {
                reply["thread_ts"] = json!(ts);
            }
            slack
                .call("chat.postMessage", &reply, call_deadline())
                .await
                .map_err(|e| NotifyError::Slack(e.to_string()))?;
            tracing::info!(execution = %id, stage = %action.stage, action = %action.action, "failure explained in the thread");
            self.store
                .remember(id, owner, "replied", &[action.failure_key()])
                .await?;
        }
        parent_error.map_or(Ok(()), Err)
    }

    /// Replies in the thread of the failed execution an automated rollback answers, so who
    /// reads about the failure sees that it was rolled back. Best effort: the rollback's own
    /// message says it all, this only points to it.
    async fn point_to_rollback(
        &self,
        slack: &SlackClient,
        rollback: &ExecutionRecord,
        deadline: Instant,
    ) {
        let id = &rollback.execution_id;
        let failed = match self.lookup.failed_before(&rollback.pipeline, id).await {
            Ok(Some(failed)) => failed,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(execution = %id, error = %err, "could not find the failed execution of this rollback");
                return;
            }
        };
        let place = match self.store.load(&failed).await {
            Ok(Some(item)) => item.channel.zip(item.ts),
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(execution = %id, error = %err, "could not read the failed execution's message");
                None
            }
        };
        let Some((channel, ts)) = place else { return };
        let (text, blocks) = message::rollback_reply(rollback);
        let reply = json!({"channel": channel, "thread_ts": ts, "text": text, "blocks": blocks, "unfurl_links": false});
        match slack.call("chat.postMessage", &reply, deadline).await {
            Ok(_) => {
                tracing::info!(execution = %id, failed = %failed, "the failed execution's thread points to its rollback")
            }
            Err(err) => {
                tracing::warn!(execution = %id, error = %err, "could not point the failed execution's thread to its rollback")
            }
        }
    }

    /// The stage conditions' rules that ran so far. Rules run when a stage is entered or
    /// ends, so there is nothing to read before a stage has ended; a failed read shows the
    /// message without them (the next event tries again).
    async fn rules(&self, record: &ExecutionRecord) -> Vec<RuleResult> {
        let stage_ended = record.stages.iter().any(|s| s.progress.is_final());
        if !stage_ended {
            return Vec::new();
        }
        match self
            .lookup
            .rules(&record.pipeline, &record.execution_id)
            .await
        {
            Ok(rules) => rules,
            Err(err) => {
                tracing::warn!(execution = %record.execution_id, error = %err, "no stage condition results for this update");
                Vec::new()
            }
        }
    }

    /// The trigger and source revisions, looked up once per execution.
    async fn source(&self, item: &ExecutionItem, shown: &mut Shown) -> Option<SourceInfo> {
        if let Some(stored) = &item.source {
            return serde_json::from_str(stored).ok();
        }
        let record = &item.record;
        let source = match self
            .lookup
            .source(&record.pipeline, &record.execution_id)
            .await
        {
            Ok(source) => Some(source),
            Err(LookupError::Permanent(why)) => {
                tracing::warn!(execution = %record.execution_id, error = %why, "no source revision for this execution");
                None
            }
            Err(LookupError::Transient(why)) => {
                tracing::warn!(execution = %record.execution_id, error = %why, "source revision lookup failed; trying again on the next event");
                return None;
            }
        };
        shown.source =
            Some(serde_json::to_string(&source.clone().unwrap_or_default()).unwrap_or_default());
        source
    }
}

/// Whether a failed parent update is worth Lambda's retry: not when Slack will never let this
/// message be edited again (`edit_window_closed`, `cant_update_message`); the next event
/// renders the whole execution anyway.
fn worth_retrying(err: &pipeline_ext::slack::SlackError) -> bool {
    !matches!(
        err.code(),
        Some("edit_window_closed" | "cant_update_message")
    )
}

fn log_change(change: &StateChange) {
    let (kind, name) = match &change.subject {
        Subject::Pipeline { .. } => ("pipeline", String::new()),
        Subject::Stage { stage } => ("stage", stage.clone()),
        Subject::Action(a) => ("action", format!("{}/{}", a.stage, a.action)),
    };
    tracing::info!(
        event_id = %change.event_id,
        pipeline = %change.pipeline,
        execution = %change.execution_id,
        kind,
        name = %name,
        state = %change.state,
        "event applied"
    );
}
