//! approval-responder: the Function URL behind the Slack app's interactivity.
//!
//! Every request is checked first (`X-Slack-Signature` over the raw body, timestamp within five
//! minutes); anything else gets 401 and nothing is done. The approval policy says who may
//! decide an approval, how many must approve, whether the person who started the execution may
//! approve it, and which decisions need a reason (a modal asks for it). Clicks are recorded in
//! the executions table; the click that meets the policy calls `PutApprovalResult`, once, and
//! the message is rewritten in place (the tally while counting, the outcome at the end).
//! Slack wants an answer within 3 seconds: every outbound call shares one deadline well inside
//! that, keeping time to tell the clicker privately when something failed.
//!
//! Where things are: [`request`] is the Function URL event and response; `interaction` reads
//! Slack's interaction payloads; `policy` is the approval policy and `approvers` resolves its
//! lists; `starter` finds who started an execution; `votes` records clicks and decisions;
//! `message` rewrites the approval message; this file verifies, authorizes and records.

#![warn(missing_docs)]

mod approvers;
mod interaction;
mod message;
mod policy;
pub mod request;
mod starter;
mod votes;

use approvers::Verdict;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};
use interaction::{DecisionContext, Interaction, SlackUser};
use message::{date, mentions, Outcome};
use pipeline_ext::executions_table::ExecutionsTable;
use pipeline_ext::secrets::SecretCache;
use pipeline_ext::slack::approval::{ApprovalRef, APPROVE_ACTION, REASON_BLOCK};
use pipeline_ext::slack::mrkdwn::truncate;
use pipeline_ext::slack::signature;
use pipeline_ext::slack::{optional, required, SettingsError, SlackClient, SlackSecret};
use pipeline_ext::text::truncate_utf16;
pub use policy::{ApprovalPolicy, PolicyError};
use policy::{Decision, Rule};
use request::{respond, respond_text, FunctionUrlRequest};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use votes::{Decided, VoteLedger};

/// Everything a request does must end by then (Slack gives up at 3 s).
const BUDGET: Duration = Duration::from_millis(2_500);
/// CodePipeline's limit for the approval summary, in UTF-16 code units (an emoji is two).
const MAX_SUMMARY: usize = 512;
/// Kept back from the calls that record a decision, so a failure can still be told to the
/// clicker within Slack's three seconds.
const REPLY_RESERVE: Duration = Duration::from_millis(600);

/// Settings from the environment (README, "Configuration reference").
#[derive(Clone, Debug)]
pub struct Config {
    /// `SLACK_SECRET_ARN`: the bot token and the signing secret.
    pub slack_secret_arn: String,
    /// `APPROVERS`: the default rule's approvers.
    pub approvers: String,
    /// `APPROVAL_POLICY`: a JSON document, or the ARN of a Secrets Manager secret holding one.
    pub policy: Option<String>,
    /// `EXECUTIONS_TABLE`, where clicks and decisions are recorded.
    pub table: Option<String>,
    /// `SLACK_API_URL`, else Slack's.
    pub api_url: String,
}

impl Config {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            slack_secret_arn: required("SLACK_SECRET_ARN")?,
            approvers: std::env::var("APPROVERS").unwrap_or_default(),
            policy: optional("APPROVAL_POLICY"),
            table: optional("EXECUTIONS_TABLE"),
            api_url: SlackClient::api_url_from_env(),
        })
    }
}

/// Why CodePipeline did not take a decision: the approval is still waiting.
#[derive(Debug, thiserror::Error)]
enum NotDecided {
    /// The SDK refused to build the request.
    #[error("the decision could not be built ({0})")]
    Unbuildable(String),
    /// CodePipeline refused it (cut to 200 characters for the clicker).
    #[error("{}", truncate(&.0.to_string(), 200))]
    Refused(pipeline_ext::sdk::SdkFailure),
    /// CodePipeline did not answer before the click's deadline.
    #[error("CodePipeline did not answer in time")]
    TimedOut,
}

/// Why the function cannot start: the configuration is wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy document is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The secret holding the policy could not be read.
    #[error("APPROVAL_POLICY secret {arn} could not be read: {reason}")]
    PolicySecret {
        /// The secret.
        arn: String,
        /// Why it could not be read.
        reason: String,
    },
    /// `APPROVAL_POLICY` is neither JSON nor a secret ARN.
    #[error("APPROVAL_POLICY must be a JSON document or the ARN of a Secrets Manager secret holding one")]
    PolicySource,
    /// The policy counts votes but there is no table to count them in.
    #[error("the approval policy asks for more than one approval, which needs EXECUTIONS_TABLE to count them")]
    NoTable,
    /// The HTTPS client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// One person's decision on an approval, as a click or a submitted reason makes it: what is
/// decided, by whom and why, under which rule of the policy, on which message.
#[derive(Clone, Copy)]
struct Vote<'a> {
    /// The rule that applies.
    rule: &'a Rule,
    /// Approve or reject.
    decision: Decision,
    /// The approval.
    approval: &'a ApprovalRef,
    /// Who.
    user: &'a SlackUser,
    /// Why, when a reason was given.
    reason: Option<&'a str>,
    /// The message clicked.
    place: &'a Place<'a>,
}

/// Where the approval message is, and what it holds.
struct Place<'a> {
    /// Its channel.
    channel: &'a str,
    /// Its ts.
    ts: &'a str,
    /// Its blocks.
    blocks: &'a [Value],
}

/// What the function keeps across invocations: settings, the policy, clients and caches.
pub struct Responder {
    /// Settings.
    config: Config,
    /// Who may decide what.
    policy: ApprovalPolicy,
    /// Where clicks are counted, with `EXECUTIONS_TABLE`.
    votes: Option<VoteLedger>,
    /// The Slack secret and the policy secret.
    secrets: SecretCache,
    /// For `PutApprovalResult` and who started the execution.
    codepipeline: aws_sdk_codepipeline::Client,
    /// The HTTPS client for Slack.
    http: reqwest::Client,
    /// Tokens this container already decided, so a double click decides once.
    decided: Mutex<HashSet<String>>,
}

impl Responder {
    /// Reads the approval policy (from Secrets Manager when `APPROVAL_POLICY` names a secret)
    /// and checks it: a wrong policy stops the function at cold start, naming what is wrong.
    pub async fn new(config: Config, sdk: &aws_config::SdkConfig) -> Result<Self, StartError> {
        let secrets = SecretCache::new(aws_sdk_secretsmanager::Client::new(sdk));
        let policy = match config.policy.as_deref().map(str::trim) {
            None => ApprovalPolicy::from_approvers(&config.approvers),
            Some(document) if document.starts_with('{') => {
                ApprovalPolicy::parse(document, &config.approvers)?
            }
            Some(arn) if arn.starts_with("arn:aws:secretsmanager:") => {
                let document =
                    secrets
                        .get_string(arn)
                        .await
                        .map_err(|err| StartError::PolicySecret {
                            arn: arn.to_string(),
                            reason: err.to_string(),
                        })?;
                ApprovalPolicy::parse(&document, &config.approvers)?
            }
            Some(_) => return Err(StartError::PolicySource),
        };
        if policy.counts_votes() && config.table.is_none() {
            return Err(StartError::NoTable);
        }
        if policy.allows_nobody() {
            tracing::warn!(
                "the approval policy lists no approvers: nobody can approve or reject from Slack"
            );
        }
        Ok(Self {
            policy,
            votes: config
                .table
                .as_ref()
                .map(|table| VoteLedger::new(ExecutionsTable::new(sdk, table))),
            secrets,
            codepipeline: aws_sdk_codepipeline::Client::new(sdk),
            http: pipeline_ext::https::client_builder()
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
            Err(why) => return respond_text(400, &why.to_string()),
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
                let clicked = Place {
                    channel: &channel,
                    ts: &message_ts,
                    blocks: &blocks,
                };
                if let Some(text) = self
                    .misplaced(&approval, &clicked, true, &user, deadline)
                    .await
                {
                    tell(&slack, &channel, &user, &text, deadline).await;
                    return respond(200, Value::Null);
                }
                let decision = if action_id == APPROVE_ACTION {
                    Decision::Approve
                } else {
                    Decision::Reject
                };
                let rule = self.policy.rule_for(&approval);
                let refusal = match self
                    .refusal(rule, decision, &approval, &user, &slack, deadline)
                    .await
                {
                    Some(refusal) => Some(refusal),
                    None if rule.requires_reason(decision) => {
                        let context = DecisionContext {
                            decision,
                            approval,
                            channel: channel.clone(),
                            message_ts,
                            blocks: blocks
                                .into_iter()
                                .filter(|b| b["type"] != "actions")
                                .collect(),
                        };
                        self.ask_reason(&slack, &context, &trigger_id, deadline)
                            .await
                    }
                    None => {
                        let vote = Vote {
                            rule,
                            decision,
                            approval: &approval,
                            user: &user,
                            reason: None,
                            place: &clicked,
                        };
                        self.record(&vote, &slack, deadline).await
                    }
                };
                if let Some(text) = refusal {
                    tell(&slack, &channel, &user, &text, deadline).await;
                }
                respond(200, Value::Null)
            }
            Interaction::ReasonSubmitted {
                context,
                user,
                reason,
            } => {
                let rule = self.policy.rule_for(&context.approval);
                let submitted_on = Place {
                    channel: &context.channel,
                    ts: &context.message_ts,
                    blocks: &context.blocks,
                };
                let misplaced = self
                    .misplaced(&context.approval, &submitted_on, false, &user, deadline)
                    .await;
                let refusal = match misplaced {
                    Some(text) => Some(text),
                    None => {
                        self.refusal(
                            rule,
                            context.decision,
                            &context.approval,
                            &user,
                            &slack,
                            deadline,
                        )
                        .await
                    }
                };
                let refusal = match refusal {
                    Some(refusal) => Some(refusal),
                    None if reason.is_empty() => Some("Say why.".to_string()),
                    None => {
                        let vote = Vote {
                            rule,
                            decision: context.decision,
                            approval: &context.approval,
                            user: &user,
                            reason: Some(&reason),
                            place: &submitted_on,
                        };
                        self.record(&vote, &slack, deadline).await
                    }
                };
                match refusal {
                    // The dialog stays open with what was typed, and says why.
                    Some(text) => respond(
                        200,
                        json!({"response_action": "errors", "errors": {REASON_BLOCK: truncate(&text, 2_000)}}),
                    ),
                    // An empty 200 closes the modal.
                    None => respond(200, Value::Null),
                }
            }
        }
    }

    /// Why a click (or a reason submitted after one) on the message at `place` may not decide
    /// `approval`: its value is not one of that message's buttons (`check_buttons`, for a
    /// click), or approval-notifier recorded the approval's message elsewhere. The message
    /// rewritten is always the approval's own; another approval's is never touched.
    async fn misplaced(
        &self,
        approval: &ApprovalRef,
        place: &Place<'_>,
        check_buttons: bool,
        user: &SlackUser,
        deadline: Instant,
    ) -> Option<String> {
        const REFUSAL: &str = "This button does not belong to this approval message; nothing was recorded. Use the buttons of the approval's own message.";
        if check_buttons && !interaction::message_carries(place.blocks, approval) {
            tracing::warn!(user = %user.id, pipeline = %approval.pipeline, "click refused: its value is not a button of the clicked message");
            return Some(REFUSAL.into());
        }
        let votes = self.votes.as_ref()?;
        let look_by = deadline.checked_sub(REPLY_RESERVE).unwrap_or(deadline);
        match tokio::time::timeout_at(look_by, votes.posted_at(&approval.token)).await {
            Ok(Ok(Some((channel, ts)))) if channel != place.channel || ts != place.ts => {
                tracing::warn!(user = %user.id, pipeline = %approval.pipeline, "click refused: the approval's message is another one");
                Some(REFUSAL.into())
            }
            Ok(Ok(_)) => None,
            // The buttons were checked; recording the click reads the same table next.
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "could not read where the approval was posted");
                None
            }
            Err(_) => {
                tracing::warn!("the table did not say in time where the approval was posted");
                None
            }
        }
    }

    /// Why `user` may not make `decision` on `approval`, if they may not.
    async fn refusal(
        &self,
        rule: &Rule,
        decision: Decision,
        approval: &ApprovalRef,
        user: &SlackUser,
        slack: &SlackClient,
        deadline: Instant,
    ) -> Option<String> {
        // Every check leaves the time to tell the clicker why it could not be made.
        let check_by = deadline.checked_sub(REPLY_RESERVE).unwrap_or(deadline);
        match rule.approvers.check(&user.id, slack, check_by).await {
            Verdict::Allowed => {}
            Verdict::Denied => {
                tracing::warn!(user = %user.id, rule = %rule.description, "decision refused: not an approver");
                return Some(format!(
                    "You are not an approver for {}: nothing was recorded.",
                    rule.description
                ));
            }
            Verdict::Unknown(why) => {
                tracing::error!(error = %why, "could not resolve approver groups; refusing");
                return Some("Could not check your user groups just now (Slack did not answer in time); nothing was recorded. Try again.".into());
            }
        }
        if decision != Decision::Approve || !rule.forbid_self_approval {
            return None;
        }
        match starter::started_by(&self.codepipeline, slack, approval, check_by).await {
            Ok(starters) if starters.contains(&user.id) => {
                tracing::warn!(user = %user.id, "approval refused: the clicker started this execution");
                Some(format!(
                    "You started this execution, and {} does not let you approve your own release: someone else has to.",
                    rule.description
                ))
            }
            Ok(_) => None,
            Err(why) => {
                // An approval decided here is no longer in the pipeline's state: say who decided.
                if let Some(votes) = &self.votes {
                    if let Ok(Ok(tally)) =
                        tokio::time::timeout_at(check_by, votes.current(approval)).await
                    {
                        if let Some(decided) = &tally.decision {
                            return Some(late(decided));
                        }
                    }
                }
                tracing::error!(error = %why, "could not tell who started the execution; refusing");
                Some(format!("Who started this execution could not be checked ({}), and approving your own release is not allowed here; nothing was recorded. Try again.", truncate(&why.to_string(), 300)))
            }
        }
    }

    /// Opens the reason dialog; what to tell the clicker if Slack did not open it.
    async fn ask_reason(
        &self,
        slack: &SlackClient,
        context: &DecisionContext,
        trigger_id: &str,
        deadline: Instant,
    ) -> Option<String> {
        let view = json!({"trigger_id": trigger_id, "view": message::reason_modal(context)});
        // views.open gets the budget less what telling the clicker needs.
        let open_by = deadline.checked_sub(REPLY_RESERVE).unwrap_or(deadline);
        let err = slack.call("views.open", &view, open_by).await.err()?;
        tracing::error!(error = %err, "could not open the reason dialog");
        let button = match context.decision {
            Decision::Approve => "Approve",
            Decision::Reject => "Reject",
        };
        Some(format!("The dialog for the reason could not be opened (Slack did not take it); nothing was recorded. Click {button} again."))
    }

    /// Records a vote under its rule; what to tell the clicker, if anything.
    async fn record(
        &self,
        vote: &Vote<'_>,
        slack: &SlackClient,
        deadline: Instant,
    ) -> Option<String> {
        let Vote {
            rule,
            decision,
            approval,
            user,
            reason,
            place,
        } = *vote;
        let record_by = deadline.checked_sub(REPLY_RESERVE).unwrap_or(deadline);
        let Some(votes) = &self.votes else {
            let by = vec![user.id.clone()];
            return self.put_decision(vote, &by, &[user], slack, deadline).await;
        };
        let tally = match tokio::time::timeout_at(
            record_by,
            votes.record(approval, &user.id, &user.name, decision, reason),
        )
        .await
        {
            Ok(Ok(tally)) => tally,
            Ok(Err(why)) => {
                tracing::error!(error = %why, "could not record the click");
                return Some(format!("Your click was not recorded ({}); the approval is still waiting. Try again.", truncate(&why.to_string(), 300)));
            }
            Err(_) => return Some("Your click was not recorded (the table did not answer in time); the approval is still waiting. Try again.".into()),
        };
        if let Some(decided) = &tally.decision {
            return Some(late(decided));
        }
        let approvers = tally.approvers();
        let ids: Vec<String> = approvers.iter().map(|c| c.user.clone()).collect();
        if decision == Decision::Approve && (ids.len() as u32) < rule.required {
            let update = message::tally(
                place.channel,
                place.ts,
                place.blocks,
                approval,
                &ids,
                rule.required,
            );
            if let Err(err) = slack.call("chat.update", &update, deadline).await {
                tracing::error!(error = %err, "could not show the tally");
            }
            let missing = rule.required - ids.len() as u32;
            return tally.repeated_approval(&user.id).then(|| {
                format!("You already approved; your approval counts once. {missing} more needed.")
            });
        }
        match tokio::time::timeout_at(record_by, votes.claim(approval)).await {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(decided))) => return Some(late(&decided)),
            Ok(Err(why)) => return Some(format!("The decision was not recorded ({}); the approval is still waiting. Try again.", truncate(&why.to_string(), 300))),
            Err(_) => return Some("The decision was not recorded (the table did not answer in time); the approval is still waiting. Try again.".into()),
        }
        let (by, named): (Vec<String>, Vec<SlackUser>) = match decision {
            Decision::Approve => (
                ids,
                approvers
                    .iter()
                    .map(|c| SlackUser {
                        id: c.user.clone(),
                        name: if c.name == "-" {
                            String::new()
                        } else {
                            c.name.clone()
                        },
                    })
                    .collect(),
            ),
            Decision::Reject => (vec![user.id.clone()], vec![user.clone()]),
        };
        let named: Vec<&SlackUser> = named.iter().collect();
        let told = self.put_decision(vote, &by, &named, slack, deadline).await;
        if told.is_some() {
            // Unanswered in time, the claim lapses after its lease instead.
            let _ = tokio::time::timeout_at(deadline, votes.release(approval)).await;
        }
        told
    }

    /// Calls `PutApprovalResult` and rewrites the message; what to tell the clicker if
    /// CodePipeline did not take it (the approval is then still waiting).
    async fn put_decision(
        &self,
        vote: &Vote<'_>,
        by: &[String],
        named: &[&SlackUser],
        slack: &SlackClient,
        deadline: Instant,
    ) -> Option<String> {
        let Vote {
            decision,
            approval,
            reason,
            place,
            ..
        } = *vote;
        let names: Vec<String> = named
            .iter()
            .map(|u| format!("{} ({})", display_name(u), u.id))
            .collect();
        let (status, verb) = match decision {
            Decision::Approve => (ApprovalStatus::Approved, "Approved"),
            Decision::Reject => (ApprovalStatus::Rejected, "Rejected"),
        };
        let mut summary = format!("{verb} in Slack by {}", names.join(", "));
        if let Some(reason) = reason {
            summary.push_str(&format!(": {reason}"));
        }
        let (outcome, recorded) = match self
            .decide(approval, status.clone(), &summary, by, deadline)
            .await
        {
            Ok(None) => {
                let outcome = match decision {
                    Decision::Approve => Outcome::Approved(by.to_vec()),
                    Decision::Reject => Outcome::Rejected(
                        by.first().cloned().unwrap_or_default(),
                        reason.unwrap_or_default().to_string(),
                    ),
                };
                (outcome, verb)
            }
            Ok(Some(ended)) => {
                let status = match ended {
                    Outcome::Expired => "Expired",
                    _ => "AlreadyDecided",
                };
                (ended, status)
            }
            Err(why) => {
                let said = match decision {
                    Decision::Approve if by.len() > 1 => {
                        "The approvals are counted, but CodePipeline did not take the decision"
                    }
                    Decision::Approve => "Your approval was not recorded",
                    Decision::Reject => "Your rejection was not recorded",
                };
                return Some(format!(
                    "{said}: {why}. The approval is still waiting; try again."
                ));
            }
        };
        if let Some(votes) = &self.votes {
            let by: &[String] = if recorded == verb { by } else { &[] };
            match tokio::time::timeout_at(deadline, votes.decided(approval, recorded, by, reason))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    tracing::error!(error = %err, "could not record the decision in the table (CodePipeline has it)")
                }
                Err(_) => tracing::error!(
                    "the table did not answer in time; the decision is in CodePipeline"
                ),
            }
        }
        let update = message::decided(place.channel, place.ts, place.blocks, approval, &outcome);
        if let Err(err) = slack.call("chat.update", &update, deadline).await {
            tracing::error!(error = %err, "could not update the approval message");
        }
        None
    }

    /// Records the decision: `Ok(None)` when recorded, `Ok(Some(outcome))` when the approval
    /// ended elsewhere (what the message should now say), `Err(why)` when CodePipeline did
    /// not take it for another reason: the approval is still waiting, so the message keeps
    /// its buttons and only the clicker is told.
    async fn decide(
        &self,
        approval: &ApprovalRef,
        status: ApprovalStatus,
        summary: &str,
        by: &[String],
        deadline: Instant,
    ) -> Result<Option<Outcome>, NotDecided> {
        if !self.first_decision(&approval.token) {
            tracing::info!("repeat click on an approval this container already decided");
            return Ok(Some(Outcome::AlreadyDecided));
        }
        let result = match ApprovalResult::builder()
            .status(status.clone())
            .summary(truncate_utf16(summary, MAX_SUMMARY, "…"))
            .build()
        {
            Ok(result) => result,
            Err(err) => {
                self.forget(&approval.token);
                return Err(NotDecided::Unbuildable(err.to_string()));
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
                tracing::info!(by = ?by, status = status.as_str(), "approval recorded in CodePipeline");
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
                    Err(NotDecided::Refused(failure))
                }
            },
            Err(_) => {
                self.forget(&approval.token);
                tracing::error!(
                    "PutApprovalResult did not answer in time; the approval is still waiting"
                );
                Err(NotDecided::TimedOut)
            }
        }
    }

    /// Remembers the token as decided in this container; `false` when it was already.
    fn first_decision(&self, token: &str) -> bool {
        self.decided
            .lock()
            .map(|mut d| d.insert(token.to_string()))
            .unwrap_or(true)
    }

    /// Forgets a token whose decision did not land.
    fn forget(&self, token: &str) {
        if let Ok(mut decided) = self.decided.lock() {
            decided.remove(token);
        }
    }
}

/// What a click after the decision is told.
fn late(decided: &Decided) -> String {
    match decided.status.as_str() {
        _ if decided.in_progress => "Another click is recording the decision right now; nothing more was recorded.".into(),
        "Approved" => format!("Already approved by {} {}; nothing more was recorded.", mentions(&decided.by), date(decided.at)),
        "Rejected" => format!("Already rejected by {} {}; nothing more was recorded.", mentions(&decided.by), date(decided.at)),
        "Expired" => "This approval has expired or is no longer waiting; nothing was recorded.".into(),
        _ => "This approval was already decided (in the console or by someone else); nothing more was recorded.".into(),
    }
}

/// An ephemeral reply only the clicker sees; best effort (the click is answered either way).
async fn tell(slack: &SlackClient, channel: &str, user: &SlackUser, text: &str, deadline: Instant) {
    let reply = json!({"channel": channel, "user": user.id, "text": text});
    if let Err(err) = slack.call("chat.postEphemeral", &reply, deadline).await {
        tracing::warn!(error = %err, "could not tell the clicker");
    }
}

/// The user's name, else their id.
fn display_name(user: &SlackUser) -> &str {
    if user.name.is_empty() {
        &user.id
    } else {
        &user.name
    }
}
