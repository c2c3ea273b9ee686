//! The Slack approval flow end to end through both binaries: an SNS notification into
//! approval-notifier, its Slack message (recorded by the local Slack), a click signed as Slack
//! signs it and built from that message's button, into approval-responder, and the decision in
//! the local CodePipeline. DynamoDB is moto_server.

mod flow;

use flow::*;
use pipeline_ext::slack::signature::sign;
use pipeline_local::faults::Fault;
use pipeline_local::runtime_api::Outcome;
use pipeline_testkit::{workspace_binary, SlackFunctions};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn an_approval_goes_from_sns_to_slack_to_codepipeline() {
    let flow = flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    assert_eq!(message.channel, CHANNEL);
    let text = message.blocks.to_string();
    assert!(
        text.contains("&lt;!channel&gt;"),
        "custom data is escaped: {text}"
    );
    assert!(
        text.contains("\"action_id\":\"approve\"") && text.contains("\"action_id\":\"reject\"")
    );

    let request = signed_request(&form(&click(&message, "approve", APPROVER)), now(), true);
    let (status, _) = respond(&flow, &request).await;
    assert_eq!(status, 200);
    assert_eq!(approval_calls(&flow), 1);
    let decision = flow
        .aws
        .codepipeline
        .approval(TOKEN)
        .unwrap()
        .decision
        .unwrap();
    assert_eq!(
        decision,
        (
            "Approved".to_string(),
            format!("Approved in Slack by dana ({APPROVER})")
        )
    );
    assert_eq!(flow.slack.calls("chat.update").len(), 1);
    let updated = flow.slack.message(&message.ts).unwrap();
    assert_eq!(updated.updates, 1);
    let blocks = updated.blocks.to_string();
    assert!(
        !blocks.contains("\"type\":\"actions\""),
        "buttons removed: {blocks}"
    );
    assert!(
        blocks.contains(&format!("*Approved* by <@{APPROVER}>")),
        "{blocks}"
    );

    // A double click decides once: the clicker is told who decided; the message keeps its outcome.
    let (status, _) = respond(
        &flow,
        &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(approval_calls(&flow), 1);
    assert_eq!(flow.slack.message(&message.ts).unwrap().updates, 1);
    let reply = told(&flow, APPROVER).pop().expect("an ephemeral reply");
    assert!(
        reply.contains(&format!("Already approved by <@{APPROVER}>")),
        "{reply}"
    );
}

#[tokio::test]
async fn a_rejection_asks_for_a_reason_and_records_it() {
    let flow = flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    let (status, _) = respond(
        &flow,
        &signed_request(&form(&click(&message, "reject", APPROVER)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        approval_calls(&flow),
        0,
        "nothing is decided before the reason"
    );
    let view = flow.slack.views().pop().expect("the reason dialog");
    let submission = json!({
        "type": "view_submission",
        "user": {"id": APPROVER, "username": "dana", "name": "dana"},
        "view": {"id": "V1", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                 "state": {"values": {"reason": {"reason_input": {"type": "plain_text_input", "value": "Error rate is up on staging"}}}}}
    });
    let (status, body) = respond(&flow, &signed_request(&form(&submission), now(), false)).await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(approval_calls(&flow), 1);
    let (result, summary) = flow
        .aws
        .codepipeline
        .approval(TOKEN)
        .unwrap()
        .decision
        .unwrap();
    assert_eq!(result, "Rejected");
    assert_eq!(
        summary,
        format!("Rejected in Slack by dana ({APPROVER}): Error rate is up on staging")
    );
    let blocks = flow.slack.message(&message.ts).unwrap().blocks.to_string();
    assert!(
        blocks.contains("*Rejected* by") && blocks.contains("Error rate is up on staging"),
        "{blocks}"
    );
    assert!(
        blocks.contains("Release 1.4.2"),
        "the original message is kept: {blocks}"
    );
}

#[tokio::test]
async fn refuses_forged_stale_replayed_and_unauthorized_requests() {
    let flow = flow(&format!("{APPROVER},S0RELEASERS")).await;
    flow.slack.add_usergroup("S0RELEASERS", &["U0GROUPMEMBER"]);
    let message = notify(&flow, TOKEN).await;
    let body = form(&click(&message, "approve", APPROVER));
    let good = signed_request(&body, now(), false);

    let mut bad_signature = good.clone();
    bad_signature["headers"]["x-slack-signature"] =
        json!(sign("not-the-secret", &now().to_string(), body.as_bytes()));
    let mut no_headers = good.clone();
    no_headers["headers"] = json!({"content-type": "application/x-www-form-urlencoded"});
    let six_minutes_old = signed_request(&body, now() - 360, false);
    let from_the_future = signed_request(&body, now() + 360, false);
    let replayed = signed_request(&body, 1_531_420_618, false);
    let mut tampered = good.clone();
    tampered["body"] = json!(body.replace("dana", "mallory"));
    for (name, request) in [
        ("bad signature", &bad_signature),
        ("missing headers", &no_headers),
        ("6 minutes old", &six_minutes_old),
        ("future", &from_the_future),
        ("replayed", &replayed),
        ("tampered", &tampered),
    ] {
        let (status, _) = respond(&flow, request).await;
        assert_eq!(status, 401, "{name}");
    }

    // Signed, but not an approver: an ephemeral refusal.
    let (status, _) = respond(
        &flow,
        &signed_request(
            &form(&click(&message, "approve", "U0STRANGER")),
            now(),
            false,
        ),
    )
    .await;
    assert_eq!(status, 200);
    let refusal = flow.slack.ephemerals().pop().expect("an ephemeral reply");
    assert_eq!(refusal.user, "U0STRANGER");
    assert!(
        refusal.text.contains("not an approver for this pipeline"),
        "{}",
        refusal.text
    );

    // Signed, but an action we do not know, or a payload that is not one.
    let mut unknown = click(&message, "approve", APPROVER);
    unknown["actions"][0]["action_id"] = json!("approve_everything");
    let (status, _) = respond(&flow, &signed_request(&form(&unknown), now(), false)).await;
    assert_eq!(status, 400);
    let (status, _) = respond(
        &flow,
        &signed_request("payload=%7Bnot%20json", now(), false),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = respond(&flow, &signed_request("hello=world", now(), false)).await;
    assert_eq!(status, 400);

    assert_eq!(approval_calls(&flow), 0);
    assert_eq!(flow.slack.calls("chat.update").len(), 0);

    // A member of an approver group may decide.
    let (status, _) = respond(
        &flow,
        &signed_request(
            &form(&click(&message, "approve", "U0GROUPMEMBER")),
            now(),
            false,
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(approval_calls(&flow), 1);
}

/// Any failure of `PutApprovalResult` but "already decided" and "expired": the approval is
/// still waiting, so the message keeps its buttons, the clicker is told privately, and a
/// later click records the decision.
#[tokio::test]
async fn a_failed_put_approval_result_keeps_the_buttons_and_tells_the_clicker() {
    for (code, status) in [
        ("ThrottlingException", 400),
        ("AccessDeniedException", 400),
        ("ValidationException", 400),
        ("InternalFailure", 500),
        ("hang", 200),
    ] {
        let flow = flow(APPROVER).await;
        let message = notify(&flow, TOKEN).await;
        flow.aws.faults.add(Fault::new(
            "codepipeline",
            "PutApprovalResult",
            code,
            status,
        ));
        let (status, _) = respond(
            &flow,
            &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
        )
        .await;
        assert_eq!(status, 200, "{code}");
        assert!(decision(&flow).is_none());
        assert_eq!(
            flow.slack.calls("chat.update").len(),
            0,
            "{code}: message untouched"
        );
        let blocks = flow.slack.message(&message.ts).unwrap().blocks.to_string();
        assert!(
            blocks.contains("\"action_id\":\"approve\""),
            "{code}: buttons kept"
        );
        let told = flow.slack.calls("chat.postEphemeral");
        assert_eq!(told.len(), 1, "{code}");
        let text = told[0].detail["request"]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            text.starts_with("Your approval was not recorded: ")
                && text.contains("still waiting; try again"),
            "{code}: {text}"
        );
        if code != "hang" {
            assert!(text.contains(code), "{code}: {text}");
        }

        // The same person tries again once CodePipeline answers: recorded.
        flow.aws.faults.clear();
        let (status, _) = respond(
            &flow,
            &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(decision(&flow).unwrap().0, "Approved", "{code}");
    }
}

#[tokio::test]
async fn a_reject_dialog_that_cannot_open_is_told_to_the_clicker() {
    for code in ["expired_trigger_id", "hang"] {
        let flow = flow(APPROVER).await;
        let message = notify(&flow, TOKEN).await;
        flow.aws
            .faults
            .add(Fault::new("slack", "views.open", code, 200));
        let (status, _) = respond(
            &flow,
            &signed_request(&form(&click(&message, "reject", APPROVER)), now(), false),
        )
        .await;
        assert_eq!(status, 200, "{code}");
        let told = flow.slack.calls("chat.postEphemeral");
        assert_eq!(told.len(), 1, "{code}");
        let text = told[0].detail["request"]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(text.contains("Click Reject again"), "{code}: {text}");
        assert_eq!(approval_calls(&flow), 0);
    }
}

#[tokio::test]
async fn a_failed_rejection_keeps_the_dialog_open_to_submit_again() {
    let flow = flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    respond(
        &flow,
        &signed_request(&form(&click(&message, "reject", APPROVER)), now(), false),
    )
    .await;
    let view = flow.slack.views().pop().expect("the reason dialog");
    let submission = json!({
        "type": "view_submission",
        "user": {"id": APPROVER, "username": "dana", "name": "dana"},
        "view": {"id": "V1", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
                 "state": {"values": {"reason": {"reason_input": {"type": "plain_text_input", "value": "Broken"}}}}}
    });
    flow.aws.faults.add(Fault::new(
        "codepipeline",
        "PutApprovalResult",
        "AccessDeniedException",
        400,
    ));
    let (status, body) = respond(&flow, &signed_request(&form(&submission), now(), false)).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response_action"], "errors", "{body}");
    assert!(
        body.contains("Your rejection was not recorded")
            && body.contains("AccessDeniedException")
            && body.contains("still waiting"),
        "{body}"
    );
    assert!(decision(&flow).is_none());
    assert_eq!(flow.slack.calls("chat.update").len(), 0);

    flow.aws.faults.clear();
    let (_, body) = respond(&flow, &signed_request(&form(&submission), now(), false)).await;
    assert_eq!(body, "");
    assert_eq!(decision(&flow).unwrap().0, "Rejected");
}

#[tokio::test]
async fn a_notifier_killed_after_its_claim_does_not_lose_the_message() {
    let flow = flow(APPROVER).await;
    let notifier = flow
        .host_with(
            "approval-notifier",
            workspace_binary("approval-notifier"),
            &[("APPROVAL_CLAIM_LEASE_SECONDS", "3")],
            Duration::from_secs(2),
        )
        .await;
    let event = sns_event(TOKEN, "Release 1.4.3");
    // Slack never answers: the first delivery claims the approval and is killed at its timeout.
    flow.aws
        .faults
        .add(Fault::new("slack", "chat.postMessage", "hang", 200));
    let first = notifier.invoke(&event).await;
    // The event runner stops the handler just before Lambda would kill the process: either
    // way the invocation fails and the claim is left behind.
    assert!(
        matches!(&first.outcome, Outcome::Timeout)
            || matches!(&first.outcome, Outcome::Error { error_type, .. } if error_type == "OutOfTime"),
        "{:?}",
        first.outcome
    );
    flow.aws.faults.clear();

    // A redelivery within the lease must not skip (that would lose the message): it fails, so
    // Lambda retries it.
    let second = notifier.invoke(&event).await;
    assert!(
        matches!(second.outcome, Outcome::Error { .. }),
        "{:?}",
        second.outcome
    );
    assert!(flow.slack.messages().is_empty());

    // The retry after the lease takes the abandoned claim over and posts, once.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let third = notifier.invoke(&event).await;
    assert!(
        matches!(third.outcome, Outcome::Response { .. }),
        "{:?}",
        third.outcome
    );
    let fourth = notifier.invoke(&event).await;
    assert!(matches!(fourth.outcome, Outcome::Response { .. }));
    let posted: Vec<_> = flow
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| c.status == 200)
        .collect();
    assert_eq!(flow.slack.messages().len(), 1, "{posted:?}");
}

#[tokio::test]
async fn huge_custom_data_and_links_stay_within_block_kit_limits() {
    let flow = flow(APPROVER).await;
    // Escaping makes `&` five characters: the cut must not split `&amp;` nor leave a link open.
    let custom = format!(
        "{}<https://evil|x> {}",
        "a&b ".repeat(700),
        "*bold".repeat(300)
    );
    let long_link = format!("https://example.com/{}", "p".repeat(3_000));
    let invocation = flow
        .notifier
        .invoke(&sns_event_with_links(TOKEN, &custom, &long_link))
        .await;
    assert!(matches!(invocation.outcome, Outcome::Response { .. }));
    let message = flow.slack.messages().pop().expect("posted, not refused");
    pipeline_testkit::block_kit::assert_valid_blocks(&message.blocks);
    let text = message.blocks.to_string();
    assert!(
        !text.contains("<https://evil"),
        "custom data cannot forge links"
    );
    assert!(
        !text.contains(&long_link),
        "a 3,000-character link is shown as its label"
    );
    assert!(text.contains("What is being approved"));

    // The decided message too.
    respond(
        &flow,
        &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
    )
    .await;
    let updated = flow.slack.message(&message.ts).unwrap();
    pipeline_testkit::block_kit::assert_valid_blocks(&updated.blocks);
}

#[tokio::test]
async fn a_duplicate_sns_delivery_posts_one_message_and_an_expired_token_says_so() {
    let flow = flow(APPROVER).await;
    let event = sns_event(TOKEN, "");
    for _ in 0..3 {
        let invocation = flow.notifier.invoke(&event).await;
        assert!(matches!(invocation.outcome, Outcome::Response { .. }));
    }
    assert_eq!(flow.slack.calls("chat.postMessage").len(), 1);
    let message = flow.slack.messages().pop().unwrap();

    flow.aws.codepipeline.expire_approval(TOKEN);
    let (status, _) = respond(
        &flow,
        &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
    let blocks = flow.slack.message(&message.ts).unwrap().blocks.to_string();
    assert!(blocks.contains("expired"), "{blocks}");
}

#[tokio::test]
async fn skips_sns_messages_that_are_not_approvals() {
    let flow = flow(APPROVER).await;
    let event = json!({"Records": [{"Sns": {"MessageId": "m1", "Message": "{\"AlarmName\": \"HighErrorRate\"}"}},
                                   {"Sns": {"MessageId": "m2", "Message": "plain text"}}]});
    let invocation = flow.notifier.invoke(&event).await;
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "{:?}",
        invocation.outcome
    );
    assert_eq!(flow.slack.calls("chat.postMessage").len(), 0);
    assert!(flow
        .notifier
        .logs()
        .join("\n")
        .contains("SNS message skipped"));
}

#[tokio::test]
async fn slack_rate_limits_are_waited_out_and_failures_fail_the_invocation() {
    let flow = flow(APPROVER).await;
    flow.aws
        .faults
        .add(Fault::new("slack", "chat.postMessage", "ratelimited", 429).times(1));
    notify(&flow, TOKEN).await;
    assert_eq!(flow.slack.calls("chat.postMessage").len(), 2);
    assert_eq!(flow.slack.messages().len(), 1);

    flow.aws.faults.add(Fault::new(
        "slack",
        "chat.postMessage",
        "channel_not_found",
        200,
    ));
    let other = "9a8b7c6d-0000-4000-8000-000000000002";
    let invocation = flow.notifier.invoke(&sns_event(other, "")).await;
    assert!(
        matches!(invocation.outcome, Outcome::Error { .. }),
        "SNS must retry: {:?}",
        invocation.outcome
    );
    assert!(flow
        .notifier
        .logs()
        .join("\n")
        .contains("channel_not_found"));
    // The claim was given back: once Slack works again, the retry posts.
    flow.aws.faults.clear();
    let invocation = flow.notifier.invoke(&sns_event(other, "")).await;
    assert!(matches!(invocation.outcome, Outcome::Response { .. }));
    assert_eq!(flow.slack.messages().len(), 2);
}

#[tokio::test]
async fn answers_within_three_seconds_when_slack_never_answers() {
    let flow = flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    // Warm the responder (a refused request), so the measure below is the request's own time.
    let (status, _) = respond(
        &flow,
        &signed_request("payload=%7B%7D", now() - 3600, false),
    )
    .await;
    assert_eq!(status, 401);
    flow.aws.faults.add(Fault::new("slack", "*", "hang", 200));
    let request = signed_request(&form(&click(&message, "approve", APPROVER)), now(), false);
    let invocation = flow.responder.invoke(&request).await;
    let Outcome::Response { body } = &invocation.outcome else {
        panic!("no answer: {:?}", invocation.outcome);
    };
    assert_eq!(body["statusCode"], 200);
    let took = Duration::from_millis(invocation.duration_ms() as u64);
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(
        approval_calls(&flow),
        1,
        "the decision is recorded even though Slack hangs"
    );
}

#[tokio::test]
async fn when_slack_fails_the_request_goes_to_the_fallback_topic() {
    // A world of its own, with FALLBACK_TOPIC_ARN on moto's SNS and a queue to read it from.
    let mut world = SlackFunctions::start_with_moto(CHANNEL).await;
    world.route_fallback_to_queue("fallback-copy");
    let notifier = notifier_host(&world).await;
    let (aws, slack) = (&world.aws, &world.slack);
    aws.faults.add(Fault::new(
        "slack",
        "chat.postMessage",
        "not_in_channel",
        200,
    ));

    let invocation = notifier.invoke(&sns_event(TOKEN, "release 2.0")).await;
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "not lost, so no SNS retry: {:?}",
        invocation.outcome
    );
    assert!(slack.messages().is_empty());
    let copy = world.fallback_copy();
    assert!(
        copy.contains("Approval needed: web / Staging / ReleaseApproval"),
        "{copy}"
    );
    assert!(copy.contains("not_in_channel"), "{copy}");
}

#[tokio::test]
async fn an_approval_is_posted_in_its_executions_thread() {
    let flow = flow(APPROVER).await;
    let execution = "0b6e2f7a-0000-4000-8000-00000000e0a1";
    // The history: the last release, then a failed execution, then this one (newest).
    let released = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e";
    let failed = "5d41402abc4b2a76b9719d911017c592aaaaaaaa";
    let this_commit = "9fceb02d0ae598e95dc970b74767f19372d61af8";
    for (id, status, revision, message) in [
        (
            "aaaaaaaa-0000-4000-8000-000000000001",
            "Succeeded",
            released,
            "Release 1.9",
        ),
        (
            "bbbbbbbb-0000-4000-8000-000000000002",
            "Failed",
            failed,
            "Break the <!channel> build",
        ),
    ] {
        flow.aws.codepipeline.register_execution_with_sources(
            json!({"pipelineName": "web", "pipelineExecutionId": id, "status": status}),
            vec![connection_revision(revision, message)],
        );
    }
    flow.aws.codepipeline.register_execution_with_sources(
        json!({
            "pipelineName": "web", "pipelineExecutionId": execution, "status": "InProgress",
            "artifactRevisions": [{"name": "SourceOutput", "revisionId": this_commit,
                "revisionSummary": "Raise the upload limit\n\nlong body", "revisionUrl": "https://github.com/acme/web/commit/9fceb02"}],
            "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "arn:aws:sts::111111111111:assumed-role/Dev/alice@example.com"}
        }),
        vec![connection_revision(this_commit, "Raise the upload limit")],
    );
    flow.aws.codepipeline.register_action_executions("web", execution, vec![json!({
        "pipelineExecutionId": execution, "actionExecutionId": "a-1", "stageName": "Plan", "actionName": "Migrations",
        "startTime": 1.0, "status": "Succeeded",
        "input": {"actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
        "output": {"executionResult": {"externalExecutionSummary": "2 pending migrations; lint: 0 errors <!channel>"}}})]);
    flow.aws
        .codepipeline
        .set_approval_execution(TOKEN, execution);
    // pipeline-notifier's message for the execution, and its record in the table.
    let parent: Value = pipeline_ext::https::client_builder()
        .build()
        .unwrap()
        .post(format!("{}/chat.postMessage", flow.slack.api_url()))
        .bearer_auth(pipeline_testkit::SlackFunctions::BOT_TOKEN)
        .json(&json!({"channel": CHANNEL, "text": "web 0b6e2f7a InProgress"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parent_ts = parent["ts"].as_str().unwrap().to_string();
    flow.moto.as_ref().unwrap().cli(&[
        "dynamodb",
        "put-item",
        "--table-name",
        pipeline_testkit::SlackFunctions::TABLE,
        "--item",
        &json!({"pk": {"S": format!("execution#{execution}")}, "channel": {"S": CHANNEL}, "ts": {"S": parent_ts}})
            .to_string(),
    ]);

    let message = notify(&flow, TOKEN).await;
    assert_eq!(message.thread_ts.as_deref(), Some(parent_ts.as_str()));
    // What is being released: the execution, its source, who started it, the earlier actions.
    let shown = message.blocks.to_string();
    for expected in [
        "*Execution:* `0b6e2f7a-0000-4000-8000-00000000e0a1`",
        "<https://github.com/acme/web/commit/9fceb02|9fceb02d0ae5> Raise the upload limit",
        "*Started by:* StartPipelineExecution arn:aws:sts::111111111111:assumed-role/Dev/alice@example.com",
        ":white_check_mark: *Plan / Migrations*: 2 pending migrations; lint: 0 errors &lt;!channel&gt;",
        // What changed since the last release, with the compare link, and what failed between.
        "*Since the last successful execution* `aaaaaaaa`",
        "• *Source*: `1b2c3d4e5f60` → ",
        &format!("|9fceb02d0ae5> Raise the upload limit · <https://github.com/acme/web/compare/{released}...{this_commit}|compare>"),
        "*Not released in between* (1):",
        ":x: `bbbbbbbb` Failed: ",
        "Break the &lt;!channel&gt; build",
    ] {
        assert!(shown.contains(expected), "{expected}\n{shown}");
    }
    pipeline_testkit::block_kit::assert_valid_blocks(&message.blocks);
    let posted = flow.slack.calls("chat.postMessage");
    let request = &posted.last().unwrap().detail["request"];
    assert_eq!(request["reply_broadcast"], true, "the channel sees it too");

    // The reply is decided like any approval message.
    let (status, _) = respond(
        &flow,
        &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(decision(&flow).unwrap().0, "Approved");
    assert!(current(&flow, &message.ts)
        .blocks
        .to_string()
        .contains("*Approved* by"));
}

/// A source revision as a CodeConnections (GitHub) source action reports it.
fn connection_revision(commit: &str, message: &str) -> Value {
    json!({
        "actionName": "Source", "revisionId": commit,
        "revisionSummary": json!({"ProviderType": "GitHub", "CommitMessage": message}).to_string(),
        "revisionUrl": format!("https://us-east-1.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=arn:aws:codeconnections:us-east-1:111111111111:connection/4f6c&referenceType=COMMIT&FullRepositoryId=acme/web&Commit={commit}")
    })
}

#[tokio::test]
async fn an_approval_whose_execution_cannot_be_found_is_posted_on_its_own() {
    let flow = flow(APPROVER).await;
    flow.aws
        .faults
        .add(Fault::new("codepipeline", "GetPipelineState", "hang", 200));
    let message = notify(&flow, TOKEN).await;
    assert_eq!(message.thread_ts, None);
    assert!(message
        .blocks
        .to_string()
        .contains("\"action_id\":\"approve\""));
}

/// The approval action's end, as EventBridge delivers it to pipeline-notifier.
fn approval_action_event(execution: &str, state: &str) -> Value {
    json!({
        "version": "0", "id": format!("ev-{state}-{}", uuid_like()),
        "detail-type": "CodePipeline Action Execution State Change",
        "source": "aws.codepipeline", "account": "111111111111",
        "time": "2026-11-22T10:07:15Z", "region": "us-east-1",
        "resources": ["arn:aws:codepipeline:us-east-1:111111111111:web"],
        "detail": {
            "pipeline": "web", "execution-id": execution, "stage": "Staging", "action": "ReleaseApproval",
            "state": state, "region": "us-east-1", "version": 1,
            "type": {"owner": "AWS", "provider": "Manual", "category": "Approval", "version": "1"}
        }
    })
}

/// An approval whose execution is known, posted, with pipeline-notifier beside it.
async fn approval_with_notifier(
    flow: &Flow,
) -> (String, pipeline_local::runtime_api::FunctionHost) {
    let execution = "7c1d9e2b-0000-4000-8000-00000000e0b2";
    flow.aws.codepipeline.register_execution(json!({
        "pipelineName": "web", "pipelineExecutionId": execution, "status": "InProgress"
    }));
    flow.aws
        .codepipeline
        .set_approval_execution(TOKEN, execution);
    let notifier = flow
        .host(
            "pipeline-notifier",
            pipeline_testkit::workspace_binary("pipeline-notifier"),
            &[],
        )
        .await;
    (execution.to_string(), notifier)
}

#[tokio::test]
async fn an_approval_that_ends_outside_slack_loses_its_buttons() {
    for (state, said) in [
        ("SUCCEEDED", "Approved outside Slack"),
        ("FAILED", "Rejected outside Slack, or expired"),
        ("ABANDONED", "No longer waiting"),
    ] {
        let flow = flow(APPROVER).await;
        let (execution, notifier) = approval_with_notifier(&flow).await;
        let message = notify(&flow, TOKEN).await;
        for _ in 0..2 {
            // A repeat delivery rewrites nothing more.
            let invocation = notifier
                .invoke(&approval_action_event(&execution, state))
                .await;
            assert!(
                matches!(invocation.outcome, Outcome::Response { .. }),
                "{state}: {:?}",
                invocation.outcome
            );
        }
        let closed = current(&flow, &message.ts);
        let blocks = closed.blocks.to_string();
        assert!(blocks.contains(said), "{state}: {blocks}");
        assert!(
            !blocks.contains("\"type\":\"actions\""),
            "{state}: {blocks}"
        );
        assert!(
            blocks.contains("Release 1.4.2"),
            "{state}: the message is kept"
        );
        assert_eq!(closed.updates, 1, "{state}: rewritten once");
        pipeline_testkit::block_kit::assert_valid_blocks(&closed.blocks);

        // A click after that is told, and records nothing.
        flow.aws.codepipeline.expire_approval(TOKEN);
        respond(
            &flow,
            &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
        )
        .await;
        assert!(decision(&flow).is_none(), "{state}");
    }
}

#[tokio::test]
async fn an_approval_decided_in_slack_is_left_as_slack_left_it() {
    let flow = flow(APPROVER).await;
    let (execution, notifier) = approval_with_notifier(&flow).await;
    let message = notify(&flow, TOKEN).await;
    respond(
        &flow,
        &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
    )
    .await;
    let decided = current(&flow, &message.ts);
    assert!(decided.blocks.to_string().contains("*Approved* by"));
    notifier
        .invoke(&approval_action_event(&execution, "SUCCEEDED"))
        .await;
    let after = current(&flow, &message.ts);
    assert_eq!(after.updates, decided.updates);
    assert!(!after.blocks.to_string().contains("outside Slack"));
}

#[tokio::test]
async fn the_sample_sns_event_in_events_posts_an_approval() {
    let flow = flow(APPROVER).await;
    let event: Value =
        serde_json::from_str(include_str!("../../../events/sns-manual-approval.json")).unwrap();
    let invocation = flow.notifier.invoke(&event).await;
    match invocation.outcome {
        Outcome::Response { body } => assert_eq!(body["posted"], 1, "{body}"),
        other => panic!("{other:?}"),
    }
    let message = flow.slack.messages().pop().unwrap();
    assert!(message.blocks.to_string().contains("Release 1.4.2"));
    // The button carries who asked for the release, from the custom data.
    let value = click(&message, "approve", APPROVER)["actions"][0]["value"].clone();
    let reference =
        pipeline_ext::slack::approval::ApprovalRef::decode(value.as_str().unwrap()).unwrap();
    assert_eq!(reference.requested_by.as_deref(), Some("alice@example.com"));
    let (status, _) = respond(
        &flow,
        &signed_request(&form(&click(&message, "approve", APPROVER)), now(), false),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(decision(&flow).unwrap().0, "Approved");
}

/// A sample Function URL request from events/, addressed to `message` (the approval message
/// this test's notifier posted, where Slack would send the click from) and signed again now:
/// Slack signs each request with the time it was sent, so a stored signature is stale by design.
fn resigned_sample(sample: &str, message: &pipeline_local::slack::SlackMessage) -> Value {
    let mut request: Value = serde_json::from_str(sample).unwrap();
    let body = request["body"].as_str().unwrap().to_string();
    let mut payload: Value = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| serde_json::from_str(&v).unwrap())
        .expect("a payload");
    if payload["type"] == "block_actions" {
        payload["container"]["message_ts"] = json!(message.ts);
        payload["container"]["channel_id"] = json!(message.channel);
        payload["channel"]["id"] = json!(message.channel);
        payload["message"]["ts"] = json!(message.ts);
    } else {
        let mut context: Value =
            serde_json::from_str(payload["view"]["private_metadata"].as_str().unwrap()).unwrap();
        context["c"] = json!(message.channel);
        context["m"] = json!(message.ts);
        payload["view"]["private_metadata"] = json!(context.to_string());
    }
    let body = form(&payload);
    let ts = now().to_string();
    request["body"] = json!(body);
    request["headers"]["x-slack-request-timestamp"] = json!(ts);
    request["headers"]["x-slack-signature"] = json!(sign(SIGNING_SECRET, &ts, body.as_bytes()));
    request
}

#[tokio::test]
async fn the_sample_slack_requests_in_events_approve_and_reject() {
    // block_actions: Approve on the sample's approval (web / Staging / ReleaseApproval, TOKEN).
    let flow = flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    let stale: Value = serde_json::from_str(include_str!(
        "../../../events/slack-block-actions-approve.json"
    ))
    .unwrap();
    let (status, _) = respond(&flow, &stale).await;
    assert_eq!(status, 401, "the stored signature is refused as it stands");
    let approve = resigned_sample(
        include_str!("../../../events/slack-block-actions-approve.json"),
        &message,
    );
    let (status, _) = respond(&flow, &approve).await;
    assert_eq!(status, 200);
    assert_eq!(
        decision(&flow).map(|d| d.0).as_deref(),
        Some("Approved"),
        "{}",
        flow.responder.logs().join("\n")
    );

    // view_submission: the reject modal's reason, on a fresh approval.
    let flow = self::flow(APPROVER).await;
    let message = notify(&flow, TOKEN).await;
    let reject = resigned_sample(
        include_str!("../../../events/slack-view-submission-reject.json"),
        &message,
    );
    let (status, _) = respond(&flow, &reject).await;
    assert_eq!(status, 200);
    let (status, summary) = decision(&flow).unwrap();
    assert_eq!(status, "Rejected");
    assert!(
        summary.contains("The login page is broken on staging"),
        "{summary}"
    );
}
