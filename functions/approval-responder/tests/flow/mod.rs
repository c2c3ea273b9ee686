//! What the approval tests share: both approval functions in one Slack world (the local Slack
//! and CodePipeline, DynamoDB on moto_server), SNS notifications, and clicks signed as Slack
//! signs them.
#![allow(dead_code)]

use pipeline_ext::slack::signature::sign;
use pipeline_local::runtime_api::{FunctionHost, Outcome};
use pipeline_testkit::{workspace_binary, SlackFunctions};
use serde_json::{json, Value};
use std::ops::Deref;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SIGNING_SECRET: &str = SlackFunctions::SIGNING_SECRET;
pub const CHANNEL: &str = "C0APPROVALS";
pub const APPROVER: &str = "U0APPROVER";
pub const TOKEN: &str = "3f0b3a51-7d2c-4a58-9b9e-0c5d1f1e2a3b";

/// Both approval functions in one Slack world (DynamoDB on moto_server).
pub struct Flow {
    pub world: SlackFunctions,
    pub notifier: FunctionHost,
    pub responder: FunctionHost,
}

impl Deref for Flow {
    type Target = SlackFunctions;
    fn deref(&self) -> &SlackFunctions {
        &self.world
    }
}

pub async fn flow(approvers: &str) -> Flow {
    flow_with(&[("APPROVERS", approvers)]).await
}

/// The flow with these environment variables on both functions.
pub async fn flow_with(env: &[(&str, &str)]) -> Flow {
    flow_in(SlackFunctions::start_with_moto(CHANNEL).await, env).await
}

/// The flow in `world` (e.g. with pipeline-local's DynamoDB rather than moto's).
pub async fn flow_in(mut world: SlackFunctions, env: &[(&str, &str)]) -> Flow {
    for (name, value) in env {
        world.set_env(name, value);
    }
    world
        .aws
        .codepipeline
        .register_approval(TOKEN, "web", "Staging", "ReleaseApproval");
    let notifier = notifier_host(&world).await;
    let responder = world
        .host(
            "approval-responder",
            env!("CARGO_BIN_EXE_approval-responder"),
            &[],
        )
        .await;
    Flow {
        world,
        notifier,
        responder,
    }
}

pub async fn notifier_host(world: &SlackFunctions) -> FunctionHost {
    world
        .host(
            "approval-notifier",
            workspace_binary("approval-notifier"),
            &[],
        )
        .await
}

pub fn sns_event(token: &str, custom_data: &str) -> Value {
    sns_event_with_links(token, custom_data, "https://staging.example.com")
}

pub fn sns_event_with_links(token: &str, custom_data: &str, external_link: &str) -> Value {
    let message = json!({
        "region": "us-east-1",
        "consoleLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/web",
        "approval": {
            "pipelineName": "web", "stageName": "Staging", "actionName": "ReleaseApproval",
            "token": token, "expires": "2026-11-28T10:00Z",
            "externalEntityLink": external_link,
            "approvalReviewLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/web/Staging/ReleaseApproval/approve/x",
            "customData": custom_data
        }
    });
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": uuid_like(), "TopicArn": "arn:aws:sns:us-east-1:111111111111:approvals",
                "Subject": "APPROVAL NEEDED", "Message": message.to_string(), "Timestamp": "2026-11-21T10:00:00.000Z"}}]})
}

pub fn uuid_like() -> String {
    format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A Function URL request as Lambda delivers it, signed as Slack signs it.
pub fn signed_request(body: &str, timestamp: u64, base64: bool) -> Value {
    let ts = timestamp.to_string();
    let signature = sign(SIGNING_SECRET, &ts, body.as_bytes());
    let encoded = if base64 {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(body)
    } else {
        body.to_string()
    };
    json!({
        "version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}},
        "headers": {"content-type": "application/x-www-form-urlencoded",
                    "x-slack-request-timestamp": ts, "x-slack-signature": signature},
        "body": encoded, "isBase64Encoded": base64
    })
}

pub fn form(payload: &Value) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

/// The click Slack sends when `user` presses the button `action_id` of `message`.
pub fn click(message: &pipeline_local::slack::SlackMessage, action_id: &str, user: &str) -> Value {
    let actions = message
        .blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .expect("buttons");
    let button = actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action_id"] == action_id)
        .expect("the button");
    json!({
        "type": "block_actions",
        "user": {"id": user, "username": username(user), "name": username(user)},
        "api_app_id": "A0APP", "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "trigger_id": "1234.5678.trigger",
        "channel": {"id": message.channel, "name": "deploys"},
        "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
        "response_url": "https://hooks.slack.com/actions/T0/1/x",
        "actions": [{"type": "button", "action_id": button["action_id"], "block_id": actions["block_id"],
                     "value": button["value"], "action_ts": "1700000000.000100"}]
    })
}

pub async fn respond(flow: &Flow, request: &Value) -> (u16, String) {
    let invocation = flow.responder.invoke(request).await;
    match invocation.outcome {
        Outcome::Response { body } => (
            body["statusCode"].as_u64().unwrap() as u16,
            body["body"].as_str().unwrap_or_default().to_string(),
        ),
        other => panic!("responder did not answer: {other:?}"),
    }
}

pub async fn notify(flow: &Flow, token: &str) -> pipeline_local::slack::SlackMessage {
    let invocation = flow
        .notifier
        .invoke(&sns_event(
            token,
            "Release 1.4.2: <!channel> check the dashboard",
        ))
        .await;
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "{:?}\n{}",
        invocation.outcome,
        flow.notifier.logs().join("\n")
    );
    flow.slack
        .messages()
        .last()
        .cloned()
        .expect("a Slack message")
}

/// What CodePipeline recorded for the approval: (result, summary), or nothing yet.
pub fn decision(flow: &Flow) -> Option<(String, String)> {
    flow.aws.codepipeline.approval(TOKEN).unwrap().decision
}

pub fn approval_calls(flow: &Flow) -> usize {
    flow.aws.calls.count("codepipeline", "PutApprovalResult")
}

/// The Slack username the tests give `user`: `dana` for [`APPROVER`], else the id in lower case.
pub fn username(user: &str) -> String {
    if user == APPROVER {
        "dana".into()
    } else {
        user.to_lowercase()
    }
}

/// The reason dialog `view` submitted by `user` with `reason`.
pub fn submission(view: &Value, user: &str, reason: &str) -> Value {
    json!({
        "type": "view_submission",
        "user": {"id": user, "username": username(user), "name": username(user)},
        "view": {"id": "V1", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                 "state": {"values": {"reason": {"reason_input": {"type": "plain_text_input", "value": reason}}}}}
    })
}

/// The approval message as Slack holds it now (after any updates).
pub fn current(flow: &Flow, ts: &str) -> pipeline_local::slack::SlackMessage {
    flow.slack.message(ts).expect("the approval message")
}

/// The ephemeral replies `user` got, in order.
pub fn told(flow: &Flow, user: &str) -> Vec<String> {
    flow.slack
        .ephemerals()
        .into_iter()
        .filter(|e| e.user == user)
        .map(|e| e.text)
        .collect()
}
