//! approval-notifier: turns CodePipeline's manual-approval SNS notification into one Slack
//! message with Approve and Reject buttons.
//!
//! Records that are not approval requests are logged and skipped. Each approval token is posted
//! once whatever SNS redelivers (a conditional write in `EXECUTIONS_TABLE`). When
//! pipeline-notifier has a message for the execution waiting on the approval (in the same
//! channel), the approval is posted in its thread, broadcast to the channel: one conversation
//! per execution. The invocation
//! fails, so that SNS retries, only when a request reached neither Slack nor the fallback topic.
//!
//! Where things are: [`sns`] reads the SNS event and the approval inside it; `ledger` claims
//! each approval token once in the table; `context` reads what is being released and `changes`
//! what changed since the last successful execution; [`message`] builds the Slack message; this
//! file wires them to Slack and the fallback topic.

#![warn(missing_docs)]

mod changes;
mod context;
pub mod error;
mod ledger;
pub mod message;
pub mod sns;

pub use ledger::{ApprovalLedger, Claim};

pub use error::DeliveryError;
use pipeline_ext::executions_table::ExecutionsTable;
use pipeline_ext::secrets::SecretCache;
use pipeline_ext::slack::{required, SettingsError, SlackClient, SlackSecret, SlackSettings};
use serde_json::Value;
use sns::{parse_approval, ApprovalNotification, SnsEvent};
use std::time::Duration;
use tokio::time::Instant;

/// Time allowed for posting one message, Slack's rate-limit waits included.
const POST_BUDGET: Duration = Duration::from_secs(20);
/// Time allowed for finding the execution's message; past it the approval is posted on its own.
const THREAD_LOOKUP_BUDGET: Duration = Duration::from_secs(3);

/// Settings from the environment (README, "Configuration reference").
#[derive(Clone, Debug)]
pub struct Config {
    /// Where and how to post.
    pub slack: SlackSettings,
    /// `EXECUTIONS_TABLE`.
    pub table: String,
}

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            slack: SlackSettings::from_env()?,
            table: required("EXECUTIONS_TABLE")?,
        })
    }
}

/// Why Slack did not get the approval request.
#[derive(Debug, thiserror::Error)]
enum NotPosted {
    /// The Slack secret could not be read.
    #[error(transparent)]
    Secret(#[from] pipeline_ext::secrets::SecretError),
    /// Slack refused the message or did not answer.
    #[error(transparent)]
    Slack(#[from] pipeline_ext::slack::SlackError),
}

/// What the function keeps across invocations.
#[derive(Clone)]
pub struct Notifier {
    /// Settings from the environment.
    pub config: Config,
    /// The Slack secret, cached across warm invocations.
    pub secrets: SecretCache,
    /// Claims and records of posted approvals in the executions table.
    pub ledger: ApprovalLedger,
    /// Reads the execution, its actions and its revisions for the message.
    pub codepipeline: aws_sdk_codepipeline::Client,
    /// Publishes the plain-text copy to the fallback topic.
    pub sns: aws_sdk_sns::Client,
    /// The HTTPS client for Slack.
    pub http: reqwest::Client,
}

impl Notifier {
    /// Builds the clients once per container; only the HTTP client can fail to build.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        Ok(Self {
            ledger: ApprovalLedger::new(ExecutionsTable::new(sdk, config.table.clone())),
            secrets: SecretCache::new(aws_sdk_secretsmanager::Client::new(sdk)),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            sns: aws_sdk_sns::Client::new(sdk),
            http: pipeline_ext::https::client_builder()
                .user_agent(concat!(
                    "codepipeline-approval-notifier/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()?,
            config,
        })
    }

    /// Handles one SNS event. `Err` only when an approval request could not be delivered.
    pub async fn handle(&self, event: Value) -> Result<Value, DeliveryError> {
        let event: SnsEvent = match serde_json::from_value(event) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(error = %err, "not an SNS event; skipped");
                return Ok(serde_json::json!({"posted": 0, "skipped": 1}));
            }
        };
        let (mut posted, mut skipped, mut failures) = (0, 0, Vec::<DeliveryError>::new());
        for record in event.records {
            let notification = match parse_approval(&record.sns.message) {
                Ok(n) => n,
                Err(why) => {
                    tracing::warn!(message_id = %record.sns.message_id, reason = %why, "SNS message skipped");
                    skipped += 1;
                    continue;
                }
            };
            match self.deliver(&notification).await {
                Ok(true) => posted += 1,
                Ok(false) => skipped += 1,
                Err(err) => failures.push(err),
            }
        }
        match failures.len() {
            0 => Ok(serde_json::json!({"posted": posted, "skipped": skipped})),
            1 => Err(failures.remove(0)),
            _ => Err(DeliveryError::Several(failures)),
        }
    }

    /// Posts one approval; `Ok(false)` when another delivery already did.
    async fn deliver(&self, notification: &ApprovalNotification) -> Result<bool, DeliveryError> {
        let reference = message::approval_ref(notification);
        let label = reference.label();
        let claim = self
            .ledger
            .claim(&reference.token)
            .await
            .map_err(DeliveryError::Ledger)?;
        match claim {
            Claim::Taken => {
                tracing::info!(approval = %label, "approval already posted (repeat SNS delivery); skipped");
                return Ok(false);
            }
            // Skipping here would lose the message if that delivery died: fail, so Lambda
            // retries this one after the lease.
            Claim::InProgress(age) => {
                tracing::warn!(approval = %label, claimed_seconds_ago = age, "another delivery is posting this approval; failing so a retry posts it if that one died");
                return Err(DeliveryError::InProgress {
                    approval: label,
                    age,
                    lease: ledger::claim_lease_seconds(),
                });
            }
            Claim::Won => {}
        }
        let posted = self.post(notification).await;
        match posted {
            Ok(ts) => {
                tracing::info!(approval = %label, channel = %self.config.slack.channel, ts = %ts, "approval request posted to Slack");
                if let Err(err) = self
                    .ledger
                    .posted(&reference.token, &self.config.slack.channel, &ts)
                    .await
                {
                    tracing::warn!(error = %err, "posted, but could not record it");
                }
                Ok(true)
            }
            Err(slack_error) => {
                tracing::error!(approval = %label, error = %slack_error, "could not post the approval request to Slack");
                self.ledger.release(&reference.token).await;
                self.fallback(notification, &slack_error.to_string())
                    .await
                    .map(|_| true)
            }
        }
    }

    async fn post(&self, notification: &ApprovalNotification) -> Result<String, NotPosted> {
        let secret: SlackSecret = self.secrets.get_json(&self.config.slack.secret_arn).await?;
        let slack = SlackClient::new(
            self.http.clone(),
            &self.config.slack.api_url,
            secret.bot_token,
        );
        let (execution, thread) = self.execution_thread(notification).await;
        let context = match &execution {
            Some(id) => {
                let by = Instant::now() + THREAD_LOOKUP_BUDGET;
                let pipeline = &notification.approval.pipeline_name;
                let (context, changes) = tokio::join!(
                    context::read(&self.codepipeline, pipeline, id, by),
                    changes::read(&self.codepipeline, pipeline, id, by)
                );
                let mut blocks = context::blocks(&context);
                if let Some(changes) = changes {
                    // Right after what is being released: what it changes since the last release.
                    blocks.insert(1.min(blocks.len()), changes::block(&changes));
                }
                blocks
            }
            None => Vec::new(),
        };
        let mut body = message::build(notification, &self.config.slack.channel, context);
        if let Some(thread) = thread {
            body["thread_ts"] = Value::String(thread);
            body["reply_broadcast"] = Value::Bool(true);
        }
        let answer = slack
            .call("chat.postMessage", &body, Instant::now() + POST_BUDGET)
            .await?;
        let ts = answer["ts"].as_str().unwrap_or_default().to_string();
        if let Some(execution) = execution {
            // So pipeline-notifier can close the message when the approval ends elsewhere.
            let reference = message::approval_ref(notification);
            if let Err(err) = self
                .ledger
                .index_by_action(
                    &execution,
                    &reference,
                    &self.config.slack.channel,
                    &ts,
                    &body["blocks"],
                )
                .await
            {
                tracing::warn!(error = %err, "posted, but could not index the message by its action");
            }
        }
        Ok(ts)
    }

    /// The execution waiting on this approval, and the ts of pipeline-notifier's message for it
    /// when there is one in our channel. Best effort: anything that fails posts on its own.
    async fn execution_thread(
        &self,
        notification: &ApprovalNotification,
    ) -> (Option<String>, Option<String>) {
        let deadline = Instant::now() + THREAD_LOOKUP_BUDGET;
        let reference = message::approval_ref(notification);
        let execution = match pipeline_ext::pipeline_state::waiting_execution(
            &self.codepipeline,
            &reference,
            deadline,
        )
        .await
        {
            Ok(execution) => execution,
            Err(err) => {
                tracing::info!(reason = %err, "execution unknown; the approval is posted on its own");
                return (None, None);
            }
        };
        let thread = match tokio::time::timeout_at(
            deadline,
            self.ledger.execution_message(&execution),
        )
        .await
        {
            Ok(Ok(Some((channel, ts)))) if channel == self.config.slack.channel => Some(ts),
            Ok(Ok(_)) => None,
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not read the execution's message; the approval is posted on its own");
                None
            }
            Err(_) => None,
        };
        (Some(execution), thread)
    }

    /// Publishes a plain-text copy to `FALLBACK_TOPIC_ARN`, so the request is not lost.
    async fn fallback(
        &self,
        notification: &ApprovalNotification,
        why: &str,
    ) -> Result<(), DeliveryError> {
        let Some(topic) = &self.config.slack.fallback_topic_arn else {
            return Err(DeliveryError::NotDelivered(why.to_string()));
        };
        pipeline_ext::slack::fallback::publish_copy(
            &self.sns,
            topic,
            "CodePipeline approval needed",
            &message::plain_text(notification),
            why,
        )
        .await
        .map_err(|e| {
            DeliveryError::NotDelivered(format!("{why}; the fallback topic failed too: {e}"))
        })?;
        tracing::warn!(topic = %topic, "approval request sent to the fallback topic instead of Slack");
        Ok(())
    }
}
