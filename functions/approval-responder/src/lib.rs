//! approval-responder: the Function URL behind the Slack app's interactivity.
//!
//! Every request is checked first (`X-Slack-Signature` over the raw body, timestamp within five
//! minutes); anything else gets 401 and nothing is done. A click by someone outside `APPROVERS`
//! gets an ephemeral "not allowed". Approve records `Approved` with `PutApprovalResult`; Reject
//! opens a modal for the reason, and its submission records `Rejected`. The message is then
//! rewritten in place. Slack wants an answer within 3 seconds: every outbound call shares one
//! deadline well inside that.
//!
//! Where things are: [`request`] is the Function URL event and response; `interaction` reads
//! Slack's interaction payloads; `approvers` decides who may click; `message` rewrites the
//! approval message after a decision; this file verifies, authorizes and records.

mod approvers;
mod interaction;
mod message;
pub mod request;

use approvers::{Approvers, Verdict};
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};
use interaction::{Interaction, RejectContext, SlackUser};
use message::Outcome;
use pipeline_ext::secrets::SecretCache;
use pipeline_ext::slack::approval::{ApprovalRef, APPROVE_ACTION};
use pipeline_ext::slack::mrkdwn::truncate;
use pipeline_ext::slack::signature;
use pipeline_ext::slack::{SlackClient, SlackSecret};
use request::{respond, respond_text, FunctionUrlRequest};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Everything a request does must end by then (Slack gives up at 3 s).
const BUDGET: Duration = Duration::from_millis(2_500);
/// CodePipeline's limit for the approval summary.
const MAX_SUMMARY: usize = 512;
/// Kept back from `PutApprovalResult`'s wait, so a failure can still be told to the clicker
/// within Slack's three seconds.
const REPLY_RESERVE: Duration = Duration::from_millis(600);

#[derive(Clone, Debug)]
pub struct Config {
    pub slack_secret_arn: String,
    pub approvers: String,
    pub api_url: String,
}

impl Config {
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            slack_secret_arn: std::env::var("SLACK_SECRET_ARN")
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or("environment variable SLACK_SECRET_ARN is not set")?,
            approvers: std::env::var("APPROVERS").unwrap_or_default(),
            api_url: SlackClient::api_url_from_env(),
        })
    }
}

pub struct Responder {
    config: Config,
    approvers: Approvers,
    secrets: SecretCache,
    codepipeline: aws_sdk_codepipeline::Client,
    http: reqwest::Client,
    /// Tokens this container already decided, so a double click decides once.
    decided: Mutex<HashSet<String>>,
}

impl Responder {
    pub fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        if config.approvers.trim().is_empty() {
            tracing::warn!("APPROVERS is empty: nobody can approve or reject from Slack");
        }
        Ok(Self {
            approvers: Approvers::parse(&config.approvers),
            secrets: SecretCache::new(aws_sdk_secretsmanager::Client::new(sdk)),
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            http: reqwest::Client::builder()
                .user_agent(concat!(
                    "codepipeline-approval-responder/",
                    env!("CARGO_PKG_VERSION")
                ))
                .build()?,
            decided: Mutex::new(HashSet::new()),
            config,
        })
    }

    /// Handles one Function URL request and returns the response.
    pub async fn handle(&self, event: Value) -> Value {
        let deadline = Instant::now() + BUDGET;
        let request: FunctionUrlRequest = match serde_json::from_value(event) {
            Ok(r) => r,
            Err(_) => return respond_text(400, "not a Function URL request"),
        };
        let body = match request.raw_body() {
            Ok(body) => body,
            Err(why) => return respond_text(400, &why),
        };
        let secret: SlackSecret = match tokio::time::timeout_at(
            deadline,
            self.secrets.get_json(&self.config.slack_secret_arn),
        )
        .await
        {
            Ok(Ok(secret)) => secret,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "cannot read the Slack secret");
                return respond_text(500, "configuration error");
            }
            Err(_) => return respond_text(503, "timed out reading configuration"),
        };
        if let Err(err) = signature::verify(
            &secret.signing_secret,
            request.header("x-slack-request-timestamp"),
            request.header("x-slack-signature"),
            &body,
            SystemTime::now(),
        ) {
            tracing::warn!(reason = %err, "request refused: not signed by Slack");
            return respond_text(401, "invalid request signature");
        }
        let interaction = match interaction::parse(&body) {
            Ok(i) => i,
            Err(err) => {
                tracing::warn!(reason = %err, "signed request refused");
                return respond_text(400, "unsupported request");
            }
        };
        let slack = SlackClient::new(self.http.clone(), &self.config.api_url, secret.bot_token);
        match interaction {
            Interaction::Click {
                action_id,
                approval,
                user,
                channel,
                message_ts,
                blocks,
                trigger_id,
            } => {
                if !self.allowed(&user, &channel, &slack, deadline).await {
                    return respond(200, Value::Null);
                }
                if action_id == APPROVE_ACTION {
                    let summary =
                        format!("Approved in Slack by {} ({})", display_name(&user), user.id);
                    let outcome = self
                        .decide(
                            &approval,
                            ApprovalStatus::Approved,
                            &summary,
                            &user,
                            deadline,
                        )
                        .await;
                    match outcome {
                        Ok(outcome) => {
                            let outcome = outcome.unwrap_or(Outcome::Approved(&user));
                            self.update(
                                &slack,
                                &channel,
                                &message_ts,
                                &blocks,
                                &approval,
                                &outcome,
                                deadline,
                            )
                            .await;
                        }
                        Err(why) => {
                            let text = format!(
                                "Your approval was not recorded: {why}. The approval is still waiting; try again."
                            );
                            tell(&slack, &channel, &user, &text, deadline).await;
                        }
                    }
                } else {
                    let context = RejectContext {
                        approval,
                        channel,
                        message_ts,
                        blocks: blocks
                            .into_iter()
                            .filter(|b| b["type"] != "actions")
                            .collect(),
                    };
                    let view =
                        json!({"trigger_id": trigger_id, "view": message::reject_modal(&context)});
                    // views.open gets the budget less what telling the clicker needs.
                    let open_by = deadline.checked_sub(REPLY_RESERVE).unwrap_or(deadline);
                    if let Err(err) = slack.call("views.open", &view, open_by).await {
                        tracing::error!(error = %err, "could not open the reject dialog");
                        tell(
                            &slack,
                            &context.channel,
                            &user,
                            "The dialog to reject could not be opened (Slack did not take it); nothing was recorded. Click Reject again.",
                            deadline,
                        )
                        .await;
                    }
                }
                respond(200, Value::Null)
            }
            Interaction::RejectSubmitted {
                context,
                user,
                reason,
            } => {
                if !self
                    .allowed(&user, &context.channel, &slack, deadline)
                    .await
                {
                    return respond(
                        200,
                        json!({"response_action": "errors", "errors": {pipeline_ext::slack::approval::REASON_BLOCK: "You are not allowed to decide this approval."}}),
                    );
                }
                if reason.is_empty() {
                    return respond(
                        200,
                        json!({"response_action": "errors", "errors": {pipeline_ext::slack::approval::REASON_BLOCK: "Say why it is rejected."}}),
                    );
                }
                let summary = truncate(
                    &format!(
                        "Rejected in Slack by {} ({}): {reason}",
                        display_name(&user),
                        user.id
                    ),
                    MAX_SUMMARY,
                );
                let outcome = self
                    .decide(
                        &context.approval,
                        ApprovalStatus::Rejected,
                        &summary,
                        &user,
                        deadline,
                    )
                    .await;
                let outcome = match outcome {
                    Ok(outcome) => outcome.unwrap_or(Outcome::Rejected(&user, &reason)),
                    // The dialog stays open with the reason typed, to submit again.
                    Err(why) => {
                        return respond(
                            200,
                            json!({"response_action": "errors", "errors": {pipeline_ext::slack::approval::REASON_BLOCK: format!("Not recorded: {why}. The approval is still waiting; submit again.")}}),
                        )
                    }
                };
                self.update(
                    &slack,
                    &context.channel,
                    &context.message_ts,
                    &context.blocks,
                    &context.approval,
                    &outcome,
                    deadline,
                )
                .await;
                // An empty 200 closes the modal.
                respond(200, Value::Null)
            }
        }
    }

    async fn allowed(
        &self,
        user: &SlackUser,
        channel: &str,
        slack: &SlackClient,
        deadline: Instant,
    ) -> bool {
        let text = match self.approvers.check(&user.id, slack, deadline).await {
            Verdict::Allowed => return true,
            Verdict::Denied => "You are not allowed to approve or reject this pipeline: you are not in its approvers list.".to_string(),
            Verdict::Unknown(why) => {
                tracing::error!(error = %why, "could not resolve approver groups; refusing");
                "Your permission could not be checked just now (Slack did not answer); nothing was recorded. Try again.".to_string()
            }
        };
        tracing::warn!(user = %user.id, "decision refused: user is not an approver");
        tell(slack, channel, user, &text, deadline).await;
        false
    }

    /// Records the decision: `Ok(None)` when recorded, `Ok(Some(outcome))` when the approval
    /// ended elsewhere (what the message should now say), `Err(why)` when CodePipeline did
    /// not take it for another reason: the approval is still waiting, so the message keeps
    /// its buttons and only the clicker is told.
    async fn decide<'a>(
        &self,
        approval: &ApprovalRef,
        status: ApprovalStatus,
        summary: &str,
        user: &SlackUser,
        deadline: Instant,
    ) -> Result<Option<Outcome<'a>>, String> {
        if !self.first_decision(&approval.token) {
            tracing::info!(user = %user.id, "repeat click on an approval this container already decided");
            return Ok(Some(Outcome::AlreadyDecided));
        }
        let result = match ApprovalResult::builder()
            .status(status.clone())
            .summary(truncate(summary, MAX_SUMMARY))
            .build()
        {
            Ok(result) => result,
            Err(err) => {
                self.forget(&approval.token);
                return Err(format!("the decision could not be built ({err})"));
            }
        };
        let call = self
            .codepipeline
            .put_approval_result()
            .pipeline_name(&approval.pipeline)
            .stage_name(&approval.stage)
            .action_name(&approval.action)
            .token(&approval.token)
            .result(result)
            .send();
        match tokio::time::timeout_at(
            deadline.checked_sub(REPLY_RESERVE).unwrap_or(deadline),
            call,
        )
        .await
        {
            Ok(Ok(_)) => {
                tracing::info!(user = %user.id, status = status.as_str(), "approval recorded in CodePipeline");
                Ok(None)
            }
            // Only these two mean the approval is no longer waiting.
            Ok(Err(err)) => match err.code() {
                Some("ApprovalAlreadyCompletedException") => Ok(Some(Outcome::AlreadyDecided)),
                Some("InvalidApprovalTokenException") => Ok(Some(Outcome::Expired)),
                _ => {
                    self.forget(&approval.token);
                    let failure = pipeline_ext::sdk::SdkFailure::from_sdk(
                        "CodePipeline",
                        "PutApprovalResult",
                        &err,
                    );
                    tracing::error!(error = %failure, "PutApprovalResult failed; the approval is still waiting");
                    Err(truncate(&failure.to_string(), 200))
                }
            },
            Err(_) => {
                self.forget(&approval.token);
                tracing::error!(
                    "PutApprovalResult did not answer in time; the approval is still waiting"
                );
                Err("CodePipeline did not answer in time".to_string())
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        slack: &SlackClient,
        channel: &str,
        ts: &str,
        blocks: &[Value],
        approval: &ApprovalRef,
        outcome: &Outcome<'_>,
        deadline: Instant,
    ) {
        let update = message::decided(channel, ts, blocks, approval, outcome);
        if let Err(err) = slack.call("chat.update", &update, deadline).await {
            tracing::error!(error = %err, "could not update the approval message");
        }
    }

    fn first_decision(&self, token: &str) -> bool {
        self.decided
            .lock()
            .map(|mut d| d.insert(token.to_string()))
            .unwrap_or(true)
    }

    fn forget(&self, token: &str) {
        if let Ok(mut decided) = self.decided.lock() {
            decided.remove(token);
        }
    }
}

/// An ephemeral reply only the clicker sees; best effort (the click is answered either way).
async fn tell(slack: &SlackClient, channel: &str, user: &SlackUser, text: &str, deadline: Instant) {
    let reply = json!({"channel": channel, "user": user.id, "text": text});
    if let Err(err) = slack.call("chat.postEphemeral", &reply, deadline).await {
        tracing::warn!(error = %err, "could not tell the clicker");
    }
}

fn display_name(user: &SlackUser) -> &str {
    if user.name.is_empty() {
        &user.id
    } else {
        &user.name
    }
}
