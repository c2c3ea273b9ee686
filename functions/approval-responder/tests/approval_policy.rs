//! Approval policies end to end through both binaries: N of M approvers counted in the
//! executions table (moto_server's DynamoDB), one Reject deciding, self-approval refused from
//! the execution's trigger and from custom data, reasons asked for, rules matched by glob, and
//! a wrong policy stopping the function at cold start.

mod flow;

use flow::*;
use pipeline_local::faults::Fault;
use pipeline_local::runtime_api::Outcome;
use pipeline_testkit::block_kit::assert_valid_blocks;
use pipeline_testkit::SlackFunctions;
use serde_json::json;

const ALICE: &str = "U0ALICE";
const BOB: &str = "U0BOB";
const CAROL: &str = "U0CAROL";
const MALLORY: &str = "U0MALLORY";

/// Production (`w*` pipelines, so `web`) needs two of Alice, Bob and Carol, never your own
/// release; everything else any one of Mallory.
fn policy(extra: &str) -> String {
    json!({"rules": [
        serde_json::from_str::<serde_json::Value>(&format!(r#"{{"name": "production", "pipeline": "w*", "stage": "*",
          "approvers": ["{ALICE}", "{BOB}", "{CAROL}"], "required": 2, "forbid_self_approval": true {extra}}}"#)).unwrap()
    ], "default": {"approvers": [MALLORY]}})
    .to_string()
}

/// The approval's execution, started by `principal` (an IAM principal ARN).
fn started_by(flow: &Flow, principal: &str) {
    let execution = "6d3f1b9e-0000-4000-8000-00000000e001";
    flow.aws.codepipeline.register_execution(json!({
        "pipelineName": "web", "pipelineExecutionId": execution, "status": "InProgress",
        "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": principal}
    }));
    flow.aws
        .codepipeline
        .set_approval_execution(TOKEN, execution);
}

/// A pipeline started by its CodeBuild role: nobody's email.
const ROLE: &str = "arn:aws:sts::111111111111:assumed-role/ReleaseBot/codebuild-session";

async fn press(flow: &Flow, ts: &str, action: &str, user: &str) {
    let message = current(flow, ts);
    let (status, _) = respond(
        flow,
        &signed_request(&form(&click(&message, action, user)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
}

/// The votes item as moto holds it.
fn votes_item(flow: &Flow) -> serde_json::Value {
    let moto = flow.moto.as_ref().unwrap();
    moto.cli(&[
        "dynamodb",
        "get-item",
        "--table-name",
        SlackFunctions::TABLE,
        "--key",
        &json!({"pk": {"S": format!("votes#{TOKEN}")}}).to_string(),
        "--consistent-read",
    ])["Item"]
        .clone()
}

#[tokio::test]
async fn two_of_three_counts_distinct_approvers_and_decides_once() {
    let flow = flow_with(&[("APPROVAL_POLICY", &policy(""))]).await;
    started_by(&flow, ROLE);
    let message = notify(&flow, TOKEN).await;

    press(&flow, &message.ts, "approve", ALICE).await;
    assert_eq!(approval_calls(&flow), 0, "one of two is not enough");
    let after_one = current(&flow, &message.ts);
    let blocks = after_one.blocks.to_string();
    assert!(
        blocks.contains(&format!("1 of 2 approvals: <@{ALICE}>")),
        "{blocks}"
    );
    assert!(
        blocks.contains("\"action_id\":\"approve\""),
        "buttons kept: {blocks}"
    );
    assert!(blocks.contains("Release 1.4.2"), "message kept: {blocks}");
    assert_valid_blocks(&after_one.blocks);

    press(&flow, &message.ts, "approve", ALICE).await;
    assert_eq!(approval_calls(&flow), 0, "the same person counts once");
    assert!(
        told(&flow, ALICE)
            .last()
            .unwrap()
            .contains("You already approved"),
        "{:?}",
        told(&flow, ALICE)
    );
    assert!(current(&flow, &message.ts)
        .blocks
        .to_string()
        .contains("1 of 2 approvals"));

    press(&flow, &message.ts, "approve", MALLORY).await;
    assert_eq!(approval_calls(&flow), 0);
    assert!(
        told(&flow, MALLORY)[0].contains("not an approver for production"),
        "{:?}",
        told(&flow, MALLORY)
    );

    press(&flow, &message.ts, "approve", BOB).await;
    assert_eq!(approval_calls(&flow), 1, "the second approver decides");
    assert_eq!(
        decision(&flow),
        Some((
            "Approved".to_string(),
            "Approved in Slack by u0alice (U0ALICE), u0bob (U0BOB)".to_string()
        ))
    );
    let decided = current(&flow, &message.ts);
    let blocks = decided.blocks.to_string();
    assert!(
        blocks.contains(&format!("*Approved* by <@{ALICE}> and <@{BOB}>")),
        "{blocks}"
    );
    assert!(!blocks.contains("\"type\":\"actions\""), "{blocks}");
    assert!(
        !blocks.contains("approvals: "),
        "the tally is gone: {blocks}"
    );
    assert_valid_blocks(&decided.blocks);

    // A late click: told who decided and when; the message keeps its outcome.
    let updates = decided.updates;
    let late = click(&message, "approve", CAROL);
    let (status, _) = respond(&flow, &signed_request(&form(&late), now(), false)).await;
    assert_eq!(status, 200);
    assert_eq!(approval_calls(&flow), 1);
    let reply = told(&flow, CAROL).pop().unwrap();
    assert!(
        reply.contains(&format!(
            "Already approved by <@{ALICE}> and <@{BOB}> <!date^"
        )),
        "{reply}"
    );
    assert_eq!(current(&flow, &message.ts).updates, updates);

    // Every allowed click before the decision is recorded, with the decision, in the table.
    let item = votes_item(&flow);
    let clicks = item["clicks"]["L"].as_array().unwrap();
    let users: Vec<&str> = clicks
        .iter()
        .map(|c| c["M"]["user"]["S"].as_str().unwrap())
        .collect();
    assert_eq!(users, [ALICE, ALICE, BOB]);
    assert_eq!(item["decision"]["S"], "Approved");
    assert_eq!(item["decided_by"]["L"], json!([{"S": ALICE}, {"S": BOB}]));
    assert_eq!(item["pipeline_name"]["S"], "web");
}

#[tokio::test]
async fn approvers_clicking_at_once_decide_once() {
    // pipeline-local's DynamoDB: moto_server does not serialize concurrent conditional writes
    // to one item (real DynamoDB does), so under load it lets two claims through.
    let world = SlackFunctions::start(CHANNEL).await;
    let flow = flow_in(world, &[("APPROVAL_POLICY", &policy(""))]).await;
    started_by(&flow, ROLE);
    let message = notify(&flow, TOKEN).await;
    // Three containers, as Lambda runs concurrent requests.
    let mut hosts = Vec::new();
    for _ in 0..3 {
        hosts.push(
            flow.host(
                "approval-responder",
                env!("CARGO_BIN_EXE_approval-responder"),
                &[],
            )
            .await,
        );
    }
    let requests: Vec<_> = [ALICE, BOB, CAROL]
        .iter()
        .map(|user| signed_request(&form(&click(&message, "approve", user)), now(), false))
        .collect();
    let (a, b, c) = tokio::join!(
        hosts[0].invoke(&requests[0]),
        hosts[1].invoke(&requests[1]),
        hosts[2].invoke(&requests[2])
    );
    for invocation in [a, b, c] {
        assert!(matches!(invocation.outcome, Outcome::Response { .. }));
    }
    let logs: Vec<String> = hosts.iter().flat_map(|h| h.logs()).collect();
    assert_eq!(
        approval_calls(&flow),
        1,
        "PutApprovalResult once: {}",
        logs.join("\n")
    );
    let (result, summary) = decision(&flow).unwrap();
    assert_eq!(result, "Approved");
    // Every approval recorded before the deciding claim is named: two, or all three when the
    // third click was recorded before the claim.
    let named = summary.matches("(U0").count();
    assert!(
        (2..=3).contains(&named),
        "names the approvals that met the policy: {summary}"
    );
    assert!(current(&flow, &message.ts)
        .blocks
        .to_string()
        .contains("*Approved* by"));
}

#[tokio::test]
async fn one_reject_with_a_reason_rejects_under_a_two_of_three_policy() {
    let flow = flow_with(&[("APPROVAL_POLICY", &policy(""))]).await;
    started_by(&flow, ROLE);
    let message = notify(&flow, TOKEN).await;
    press(&flow, &message.ts, "approve", ALICE).await;
    press(&flow, &message.ts, "reject", BOB).await;
    assert_eq!(
        approval_calls(&flow),
        0,
        "nothing is decided before the reason"
    );
    let view = flow.slack.views().pop().expect("the reason dialog");
    assert_eq!(view["title"]["text"], "Reject");
    let (status, body) = respond(
        &flow,
        &signed_request(
            &form(&submission(&view, BOB, "p99 latency doubled on staging")),
            now(),
            false,
        ),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(
        decision(&flow),
        Some((
            "Rejected".to_string(),
            "Rejected in Slack by u0bob (U0BOB): p99 latency doubled on staging".to_string()
        ))
    );
    let blocks = current(&flow, &message.ts).blocks;
    assert!(blocks
        .to_string()
        .contains(&format!("*Rejected* by <@{BOB}>")));
    assert!(blocks.to_string().contains("p99 latency doubled"));
    assert_valid_blocks(&blocks);
    assert_eq!(
        votes_item(&flow)["reason"]["S"],
        "p99 latency doubled on staging"
    );
}

#[tokio::test]
async fn refuses_self_approval_for_an_execution_started_by_the_clickers_email_principal() {
    let flow = flow_with(&[("APPROVAL_POLICY", &policy(""))]).await;
    started_by(
        &flow,
        "arn:aws:sts::111111111111:assumed-role/AWSReservedSSO_Release_0a1b/Alice@Example.com",
    );
    flow.slack.add_user_email(ALICE, "alice@example.com");
    let message = notify(&flow, TOKEN).await;

    press(&flow, &message.ts, "approve", ALICE).await;
    assert_eq!(approval_calls(&flow), 0);
    let reply = told(&flow, ALICE).pop().unwrap();
    assert!(reply.contains("You started this execution"), "{reply}");
    assert!(
        votes_item(&flow).is_null(),
        "a refused click is not counted"
    );
    assert!(!current(&flow, &message.ts)
        .blocks
        .to_string()
        .contains("approvals:"));

    // Rejecting your own release is allowed.
    press(&flow, &message.ts, "reject", ALICE).await;
    assert_eq!(flow.slack.views().len(), 1, "the reason dialog opened");

    // When who started it cannot be checked, approving is refused, never let through.
    flow.aws
        .faults
        .add(Fault::new("codepipeline", "GetPipelineState", "InternalError", 500).times(10));
    press(&flow, &message.ts, "approve", BOB).await;
    assert!(
        told(&flow, BOB)
            .pop()
            .unwrap()
            .contains("could not be checked"),
        "{:?}",
        told(&flow, BOB)
    );
    flow.aws.faults.clear();
    press(&flow, &message.ts, "approve", BOB).await;
    press(&flow, &message.ts, "approve", CAROL).await;
    assert_eq!(decision(&flow).unwrap().0, "Approved");
}

#[tokio::test]
async fn refuses_self_approval_by_whoever_custom_data_names() {
    let flow = flow_with(&[("APPROVAL_POLICY", &policy(""))]).await;
    started_by(&flow, ROLE);
    flow.slack.add_user_email(BOB, "bob@example.com");
    let invocation = flow
        .notifier
        .invoke(&sns_event(
            TOKEN,
            "Release 1.4.2 requested-by: Bob@example.com",
        ))
        .await;
    assert!(matches!(invocation.outcome, Outcome::Response { .. }));
    let message = flow.slack.messages().pop().unwrap();
    press(&flow, &message.ts, "approve", BOB).await;
    assert!(
        told(&flow, BOB)
            .pop()
            .unwrap()
            .contains("You started this execution"),
        "{:?}",
        told(&flow, BOB)
    );
    press(&flow, &message.ts, "approve", ALICE).await;
    assert!(current(&flow, &message.ts)
        .blocks
        .to_string()
        .contains(&format!("1 of 2 approvals: <@{ALICE}>")));
}

#[tokio::test]
async fn an_approval_that_needs_a_reason_opens_the_dialog() {
    let rule = r#", "require_reason_for": ["approve", "reject"]"#;
    let flow = flow_with(&[("APPROVAL_POLICY", &policy(rule))]).await;
    started_by(&flow, ROLE);
    let message = notify(&flow, TOKEN).await;
    press(&flow, &message.ts, "approve", ALICE).await;
    let view = flow.slack.views().pop().expect("the reason dialog");
    assert_eq!(view["title"]["text"], "Approve");
    assert_valid_blocks(&view["blocks"]);
    let empty = respond(
        &flow,
        &signed_request(&form(&submission(&view, ALICE, "  ")), now(), false),
    )
    .await;
    assert!(empty.1.contains("Say why"), "{empty:?}");
    let (status, body) = respond(
        &flow,
        &signed_request(
            &form(&submission(&view, ALICE, "dashboards green")),
            now(),
            false,
        ),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(approval_calls(&flow), 0);
    let blocks = current(&flow, &message.ts).blocks.to_string();
    assert!(blocks.contains("1 of 2 approvals"), "{blocks}");
    assert!(
        blocks.contains("\"action_id\":\"approve\""),
        "the buttons are back after a dialog: {blocks}"
    );
    press(&flow, &message.ts, "approve", BOB).await;
    let view = flow.slack.views().pop().unwrap();
    respond(
        &flow,
        &signed_request(
            &form(&submission(&view, BOB, "load test passed")),
            now(),
            false,
        ),
    )
    .await;
    assert_eq!(
        decision(&flow),
        Some((
            "Approved".to_string(),
            "Approved in Slack by u0alice (U0ALICE), u0bob (U0BOB): load test passed".to_string()
        ))
    );
}

#[tokio::test]
async fn other_pipelines_fall_to_the_default_rule() {
    let flow = flow_with(&[("APPROVAL_POLICY", &policy(""))]).await;
    let token = "9a9a9a9a-0000-4000-8000-000000000002";
    flow.aws
        .codepipeline
        .register_approval(token, "api", "Prod", "Approve");
    let invocation = flow.notifier.invoke(&sns_event_for(token, "api")).await;
    assert!(matches!(invocation.outcome, Outcome::Response { .. }));
    let message = flow.slack.messages().pop().unwrap();
    press(&flow, &message.ts, "approve", ALICE).await;
    assert!(told(&flow, ALICE)[0].contains("not an approver for this pipeline"));
    press(&flow, &message.ts, "approve", MALLORY).await;
    assert_eq!(
        flow.aws
            .codepipeline
            .approval(token)
            .unwrap()
            .decision
            .unwrap()
            .0,
        "Approved",
        "one approver is enough outside production"
    );
}

#[tokio::test]
async fn a_wrong_policy_stops_the_function_at_cold_start_naming_the_field() {
    for (policy, named) in [
        (
            json!({"rules": [{"approvers": [ALICE], "required": 2}]}).to_string(),
            "rules[0].required",
        ),
        (
            json!({"rules": [{"approvers": [ALICE]}, {"approvers": ["alice@example.com"]}]})
                .to_string(),
            "rules[1].approvers[0]",
        ),
        ("prod-only".to_string(), "a JSON document or the ARN"),
    ] {
        let flow = flow_with(&[("APPROVAL_POLICY", &policy)]).await;
        let message = notify(&flow, TOKEN).await;
        let invocation = flow
            .responder
            .invoke(&signed_request(
                &form(&click(&message, "approve", ALICE)),
                now(),
                false,
            ))
            .await;
        assert!(
            !matches!(invocation.outcome, Outcome::Response { .. }),
            "{policy}: {:?}",
            invocation.outcome
        );
        let logs = flow.responder.logs().join("\n");
        assert!(logs.contains(named), "{policy}: {logs}");
        assert_eq!(approval_calls(&flow), 0);
    }
}

#[tokio::test]
async fn reads_the_policy_from_secrets_manager() {
    let arn = "arn:aws:secretsmanager:us-east-1:111111111111:secret:approval-policy";
    let flow = flow_with(&[("APPROVAL_POLICY", arn)]).await;
    flow.aws
        .secrets
        .put(arn, serde_json::from_str(&policy("")).unwrap());
    started_by(&flow, ROLE);
    let message = notify(&flow, TOKEN).await;
    press(&flow, &message.ts, "approve", ALICE).await;
    assert!(current(&flow, &message.ts)
        .blocks
        .to_string()
        .contains("1 of 2 approvals"));
}

fn sns_event_for(token: &str, pipeline: &str) -> serde_json::Value {
    let mut event = sns_event(token, "");
    let message: serde_json::Value =
        serde_json::from_str(event["Records"][0]["Sns"]["Message"].as_str().unwrap()).unwrap();
    let mut message = message;
    message["approval"]["pipelineName"] = json!(pipeline);
    message["approval"]["stageName"] = json!("Prod");
    message["approval"]["actionName"] = json!("Approve");
    event["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    event
}
