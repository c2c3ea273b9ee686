//! A manual approval, as it happens on AWS with the Slack functions: CodePipeline publishes the
//! approval request to the action's topic, approval-notifier (subscribed to it) posts the Slack
//! message, and a person presses its button: here Approve (or Reject, then the reason dialog),
//! by pipeline-local itself or by a person in the console, sent to approval-responder's
//! Function URL signed with the app's signing secret, as Slack does. The decision is whatever approval-responder recorded with `PutApprovalResult`.

use crate::console::SlackAction;
use crate::endpoints::LocalAws;
use crate::runtime_api::{FunctionHost, Outcome};
use crate::slack::{LocalSlack, SlackMessage};
use pipeline_ext::slack::signature::sign;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

/// The bot token of the recorded Slack.
pub const BOT_TOKEN: &str = "xoxb-pipeline-local";
/// The signing secret of the recorded Slack app.
pub const SIGNING_SECRET: &str = "pipeline-local-signing-secret";
/// The Slack user who clicks.
pub const APPROVER: &str = "U0LOCALAPPROVER";
/// The channel approvals go to.
pub const CHANNEL: &str = "C0PIPELINELOCAL";

/// An approval waiting in the local run.
pub struct ApprovalRequest<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The stage.
    pub stage: &'a str,
    /// The approval action.
    pub action: &'a str,
    /// The execution.
    pub execution_id: &'a str,
    /// The action's `CustomData`, variables substituted.
    pub custom_data: Option<String>,
    /// The action's `ExternalEntityLink`.
    pub external_link: Option<String>,
}

/// Who clicks the approval's buttons.
pub enum Decider<'a> {
    /// pipeline-local: Approve, or Reject and a reason when `reject`.
    Auto { reject: bool },
    /// A person, in the console's Slack channel.
    Console(&'a crate::console::Console),
}

/// Where the decision came from, for the report.
pub struct ApprovalOutcome {
    /// CodePipeline recorded Approved.
    pub approved: bool,
    /// The decision's summary.
    pub summary: String,
    /// What happened, step by step.
    pub steps: Vec<String>,
}

/// Publishes the approval, has it decided, and says how it ended.
pub async fn decide(
    aws: &LocalAws,
    slack: &LocalSlack,
    notifiers: &[(String, &FunctionHost)],
    responder: Option<&FunctionHost>,
    request: &ApprovalRequest<'_>,
    decider: Decider<'_>,
) -> Result<ApprovalOutcome, String> {
    let token = uuid::Uuid::new_v4().to_string();
    aws.codepipeline
        .register_approval(&token, request.pipeline, request.stage, request.action);
    aws.codepipeline
        .set_approval_execution(&token, request.execution_id);
    if notifiers.is_empty() {
        // A team's approval that notifies by e-mail (or nothing): no Slack message to click,
        // so pipeline-local answers it as the person would in the CodePipeline console.
        return match decider {
            Decider::Auto { reject } => Ok(ApprovalOutcome {
                approved: !reject,
                summary: format!(
                    "{} by pipeline-local ({})",
                    if reject { "Rejected" } else { "Approved" },
                    if reject { "--reject" } else { "--approve auto" }
                ),
                steps: vec![
                    "no function of the template is subscribed to the approval's NotificationArn, so nothing is posted to Slack; decided directly".into(),
                ],
            }),
            Decider::Console(_) => Err(
                "--approve console decides approvals in the console's Slack channel, and no function of the template posts this one there (none is subscribed to its NotificationArn); use --approve auto, with --reject to reject"
                    .into(),
            ),
        };
    }
    let responder = responder
        .ok_or("no function with a FunctionUrlConfig (approval-responder) in the template")?;
    let before = slack.messages().len();
    let console = format!(
        "https://console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/view?region={}",
        request.pipeline,
        crate::endpoints::REGION
    );
    let message = json!({
        "region": crate::endpoints::REGION, "consoleLink": console,
        "approval": {"pipelineName": request.pipeline, "stageName": request.stage, "actionName": request.action,
            "token": token, "expires": expires(), "externalEntityLink": request.external_link,
            "approvalReviewLink": format!("{console}#/{}/{}/approve/{token}", request.stage, request.action),
            "customData": request.custom_data}
    });
    let sns = json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:000000000000:approvals:local",
        "Sns": {"Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
            "TopicArn": "arn:aws:sns:us-east-1:000000000000:approvals",
            "Subject": format!("APPROVAL NEEDED: AWS CodePipeline {} for action {}", request.pipeline, request.action),
            "Message": message.to_string(), "Timestamp": "2026-01-01T00:00:00.000Z"}}]});
    let mut steps = Vec::new();
    for (name, host) in notifiers {
        let invocation = host.invoke(&sns).await;
        if !matches!(invocation.outcome, Outcome::Response { .. }) {
            return Err(format!(
                "{name} failed on the approval request: {:?}",
                invocation.outcome
            ));
        }
        steps.push(format!("{name} received the SNS notification"));
    }
    let posted = slack
        .messages()
        .into_iter()
        .skip(before)
        .find(|m| m.blocks.to_string().contains("\"action_id\":\"approve\""))
        .ok_or("approval-notifier posted no message with an Approve button")?;
    steps.push(format!(
        "Slack message posted to {} (ts {})",
        posted.channel, posted.ts
    ));
    match decider {
        Decider::Auto { reject } => {
            let button = if reject { "reject" } else { "approve" };
            let answer = click(responder, &posted, button).await?;
            steps.push(format!(
                "{button} clicked by {APPROVER}: responder answered {answer}"
            ));
            if reject {
                let view = slack
                    .views()
                    .last()
                    .cloned()
                    .ok_or("approval-responder opened no reason dialog after Reject")?;
                let reason = "Rejected from pipeline-local run --reject";
                let answer = submit_reason(responder, &view, reason).await?;
                steps.push(format!("reason submitted: responder answered {answer}"));
            }
        }
        Decider::Console(console) => {
            say!(
                "  waiting for a decision in the console (Approve or Reject in its Slack channel)"
            );
            let mut requests = console.wait_for_approval(request.stage, request.action);
            let decided = || {
                aws.codepipeline
                    .approval(&token)
                    .is_some_and(|a| a.decision.is_some())
            };
            while !decided() {
                let Some((action, reply)) = requests.recv().await else {
                    break;
                };
                let answer = match action {
                    SlackAction::Click { ts, action_id } => match slack.message(&ts) {
                        Some(message) => click(responder, &message, &action_id).await,
                        None => Err(format!("no message {ts} in the channel")),
                    },
                    SlackAction::Submit { reason } => match slack.views().last() {
                        Some(view) => submit_reason(responder, view, &reason).await,
                        None => Err("no dialog is open".into()),
                    },
                };
                if let Ok(said) = &answer {
                    steps.push(format!("clicked in the console: responder answered {said}"));
                }
                let _ = reply.send(answer);
                console.update(|_| {});
            }
            console.approval_ended();
        }
    }
    let record = aws
        .codepipeline
        .approval(&token)
        .ok_or("the approval vanished from the local CodePipeline")?;
    let (status, summary) = record
        .decision
        .ok_or("approval-responder recorded no decision (PutApprovalResult was not called)")?;
    Ok(ApprovalOutcome {
        approved: status == "Approved",
        summary,
        steps,
    })
}

/// When the approval expires, as CodePipeline writes it (7 days).
fn expires() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 7 * 24 * 3600;
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// A Function URL request as Lambda delivers it, signed as Slack signs it.
fn signed(payload: &Value) -> Value {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    json!({
        "version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}},
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": ts, "x-slack-signature": sign(SIGNING_SECRET, &ts, body.as_bytes())},
        "body": body, "isBase64Encoded": false
    })
}

/// Sends a signed interaction to approval-responder; its response body.
async fn send(responder: &FunctionHost, payload: &Value) -> Result<String, String> {
    let invocation = responder.invoke(&signed(payload)).await;
    match invocation.outcome {
        Outcome::Response { body } => Ok(format!("HTTP {}", body["statusCode"])),
        other => Err(format!("approval-responder failed: {other:?}")),
    }
}

/// Clicks a button of the approval message, as Slack would.
async fn click(
    responder: &FunctionHost,
    message: &SlackMessage,
    action_id: &str,
) -> Result<String, String> {
    let actions = message
        .blocks
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["type"] == "actions")
        .ok_or("the approval message has no buttons")?;
    let button = actions["elements"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["action_id"] == action_id)
        .ok_or_else(|| format!("the approval message has no {action_id} button"))?;
    let payload = json!({
        "type": "block_actions",
        "user": {"id": APPROVER, "username": "local.approver", "name": "local.approver"},
        "api_app_id": "A0PIPELINELOCAL",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "trigger_id": "1.2.pipeline-local",
        "channel": {"id": message.channel},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "actions": [{"type": "button", "action_id": action_id, "block_id": actions["block_id"],
                     "value": button["value"], "action_ts": "1700000000.000100"}]
    });
    send(responder, &payload).await
}

/// Submits the reason dialog, as Slack would.
async fn submit_reason(
    responder: &FunctionHost,
    view: &Value,
    reason: &str,
) -> Result<String, String> {
    let block = pipeline_ext::slack::approval::REASON_BLOCK;
    let input = pipeline_ext::slack::approval::REASON_INPUT;
    let payload = json!({
        "type": "view_submission",
        "user": {"id": APPROVER, "username": "local.approver", "name": "local.approver"},
        "api_app_id": "A0PIPELINELOCAL",
        "view": {"id": "V0LOCAL", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                 "state": {"values": {block: {input: {"type": "plain_text_input", "value": reason}}}}}
    });
    send(responder, &payload).await
}
