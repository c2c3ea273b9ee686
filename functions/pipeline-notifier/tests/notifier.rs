//! pipeline-notifier end to end through its binary: CodePipeline's EventBridge events in, Slack
//! messages out (recorded by the local Slack), CodePipeline's execution details from the local
//! CodePipeline endpoint, and DynamoDB (and SNS/SQS for the fallback) on moto_server, except
//! where several instances run at once (see `setup`).

use pipeline_local::endpoints::LocalAws;
use pipeline_local::faults::Fault;
use pipeline_local::runtime_api::{FunctionHost, Outcome};
use pipeline_local::slack::{LocalSlack, SlackMessage};
use pipeline_testkit::{MotoServer, SlackFunctions};
use serde_json::{json, Value};
use std::ops::Deref;

const BOT_TOKEN: &str = SlackFunctions::BOT_TOKEN;
const CHANNEL: &str = "C0DEPLOYS";
const TABLE: &str = SlackFunctions::TABLE;
const PIPELINE: &str = "web";
const EXEC_A: &str = "5f1c2d3e-aaaa-4bbb-8ccc-0123456789ab";
const EXEC_B: &str = "9e8d7c6b-bbbb-4ccc-8ddd-ba9876543210";

struct Setup {
    world: SlackFunctions,
    /// Several instances of the function, as Lambda runs concurrent events.
    instances: Vec<FunctionHost>,
}

impl Deref for Setup {
    type Target = SlackFunctions;
    fn deref(&self) -> &SlackFunctions {
        &self.world
    }
}

impl Setup {
    fn moto(&self) -> &MotoServer {
        self.world.moto()
    }
}

async fn setup(extra_env: &[(&str, &str)], instances: usize) -> Setup {
    // Concurrent instances need a DynamoDB that serializes conditional writes to one item, as
    // DynamoDB does: moto_server does not (no lock in its backend, threaded server), and under
    // load lets two conditional writes through. Those runs use pipeline-local's DynamoDB.
    let mut world = if instances > 1 {
        SlackFunctions::start(CHANNEL).await
    } else {
        SlackFunctions::start_with_moto(CHANNEL).await
    };
    for (key, value) in extra_env {
        world.set_env(key, value);
    }
    let mut hosts = Vec::new();
    for i in 0..instances {
        hosts.push(
            world
                .host(
                    &format!("pipeline-notifier-{i}"),
                    env!("CARGO_BIN_EXE_pipeline-notifier"),
                    &[],
                )
                .await,
        );
    }
    Setup {
        world,
        instances: hosts,
    }
}

/// `2026-11-21T10:MM:SSZ`, `seconds` after ten o'clock.
fn at(seconds: u32) -> String {
    format!("2026-11-21T10:{:02}:{:02}Z", seconds / 60, seconds % 60)
}

fn envelope(id: &str, detail_type: &str, seconds: u32, detail: Value) -> Value {
    json!({
        "version": "0", "id": id, "detail-type": detail_type, "source": "aws.codepipeline",
        "account": "111111111111", "time": at(seconds), "region": "us-east-1",
        "resources": [format!("arn:aws:codepipeline:us-east-1:111111111111:{}", detail["pipeline"].as_str().unwrap())],
        "detail": detail
    })
}

fn pipeline_event(exec: &str, state: &str, seconds: u32) -> Value {
    let mut detail = json!({"pipeline": PIPELINE, "execution-id": exec, "state": state, "version": 4,
        "pipeline-execution-attempt": 1});
    if state == "STARTED" {
        detail["execution-trigger"] = json!({"trigger-type": "Webhook",
            "trigger-detail": "arn:aws:codestar-connections:us-east-1:111111111111:connection/abc"});
    }
    envelope(
        &format!("{exec}/pipeline/{state}"),
        "CodePipeline Pipeline Execution State Change",
        seconds,
        detail,
    )
}

fn stage_event(exec: &str, stage: &str, state: &str, seconds: u32) -> Value {
    envelope(
        &format!("{exec}/{stage}/{state}"),
        "CodePipeline Stage Execution State Change",
        seconds,
        json!({"pipeline": PIPELINE, "execution-id": exec, "stage": stage, "state": state,
               "version": 4, "pipeline-execution-attempt": 1}),
    )
}

fn action_event(
    exec: &str,
    stage: &str,
    action: &str,
    (category, provider): (&str, &str),
    state: &str,
    seconds: u32,
    summary: Option<&str>,
) -> Value {
    let mut detail = json!({"pipeline": PIPELINE, "execution-id": exec, "stage": stage, "action": action,
        "state": state, "region": "us-east-1", "version": 4, "pipeline-execution-attempt": 1,
        "type": {"owner": "AWS", "provider": provider, "category": category, "version": "1"}});
    if let Some(summary) = summary {
        detail["execution-result"] = json!({"external-execution-summary": summary,
            "external-execution-id": format!("{action}-run"), "error-code": "JobFailed"});
    }
    envelope(
        &format!("{exec}/{stage}/{action}/{state}"),
        "CodePipeline Action Execution State Change",
        seconds,
        detail,
    )
}

const SOURCE: (&str, &str) = ("Source", "CodeStarSourceConnection");
const BUILD: (&str, &str) = ("Build", "CodeBuild");
const APPROVAL: (&str, &str) = ("Approval", "Manual");
const DEPLOY: (&str, &str) = ("Deploy", "ECS");
const INVOKE: (&str, &str) = ("Invoke", "Lambda");

/// A run that passes Source, Build and a manual approval named "ReleaseGate", then fails in
/// Deploy, where two parallel actions fail.
fn failing_run(exec: &str) -> Vec<Value> {
    vec![
        pipeline_event(exec, "STARTED", 0),
        stage_event(exec, "Source", "STARTED", 1),
        action_event(exec, "Source", "Checkout", SOURCE, "STARTED", 1, None),
        action_event(exec, "Source", "Checkout", SOURCE, "SUCCEEDED", 9, None),
        stage_event(exec, "Source", "SUCCEEDED", 9),
        stage_event(exec, "Build", "STARTED", 10),
        action_event(exec, "Build", "Compile", BUILD, "STARTED", 10, None),
        action_event(exec, "Build", "Compile", BUILD, "SUCCEEDED", 130, None),
        stage_event(exec, "Build", "SUCCEEDED", 131),
        stage_event(exec, "Approval", "STARTED", 132),
        action_event(
            exec,
            "Approval",
            "ReleaseGate",
            APPROVAL,
            "STARTED",
            132,
            None,
        ),
        action_event(
            exec,
            "Approval",
            "ReleaseGate",
            APPROVAL,
            "SUCCEEDED",
            300,
            None,
        ),
        stage_event(exec, "Approval", "SUCCEEDED", 300),
        stage_event(exec, "Deploy", "STARTED", 301),
        action_event(exec, "Deploy", "DeployApi", DEPLOY, "STARTED", 301, None),
        action_event(exec, "Deploy", "Migrate", INVOKE, "STARTED", 301, None),
        action_event(
            exec,
            "Deploy",
            "Migrate",
            INVOKE,
            "FAILED",
            340,
            Some("migration 0042 failed"),
        ),
        action_event(
            exec,
            "Deploy",
            "DeployApi",
            DEPLOY,
            "FAILED",
            420,
            Some("deployment failed"),
        ),
        stage_event(exec, "Deploy", "FAILED", 421),
        pipeline_event(exec, "FAILED", 421),
    ]
}

/// A run that succeeds.
fn succeeding_run(exec: &str) -> Vec<Value> {
    vec![
        pipeline_event(exec, "STARTED", 30),
        stage_event(exec, "Source", "STARTED", 31),
        action_event(exec, "Source", "Checkout", SOURCE, "SUCCEEDED", 35, None),
        stage_event(exec, "Source", "SUCCEEDED", 35),
        stage_event(exec, "Build", "STARTED", 36),
        stage_event(exec, "Build", "SUCCEEDED", 100),
        stage_event(exec, "Approval", "STARTED", 101),
        action_event(
            exec,
            "Approval",
            "ReleaseGate",
            APPROVAL,
            "SUCCEEDED",
            160,
            None,
        ),
        stage_event(exec, "Approval", "SUCCEEDED", 160),
        stage_event(exec, "Deploy", "STARTED", 161),
        stage_event(exec, "Deploy", "SUCCEEDED", 200),
        pipeline_event(exec, "SUCCEEDED", 200),
    ]
}

/// What `GetPipelineExecution` and `ListActionExecutions` answer for `exec`.
fn register_execution(aws: &LocalAws, exec: &str, commit: &str, message: &str) {
    aws.codepipeline.register_execution(json!({
        "pipelineName": PIPELINE, "pipelineVersion": 4, "pipelineExecutionId": exec, "status": "InProgress",
        "artifactRevisions": [{"name": "SourceArtifact", "revisionId": commit,
            "revisionSummary": json!({"ProviderType": "GitHub", "CommitMessage": message}).to_string(),
            "revisionUrl": format!("https://github.com/acme/web/commit/{commit}")}],
        "trigger": {"triggerType": "Webhook", "triggerDetail": "arn:aws:codestar-connections:us-east-1:111111111111:connection/abc"},
        "executionMode": "QUEUED"
    }));
    let failed = |stage: &str, action: &str, code: &str, message: &str, summary: &str| {
        json!({"pipelineExecutionId": exec, "actionExecutionId": format!("{action}-id"), "pipelineVersion": 4,
            "stageName": stage, "actionName": action, "startTime": 1_795_255_500.0, "lastUpdateTime": 1_795_255_700.0,
            "status": "Failed",
            "input": {"actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"}},
            "output": {"executionResult": {"externalExecutionId": format!("{action}-run"),
                "externalExecutionSummary": summary,
                "externalExecutionUrl": format!("https://console.aws.amazon.com/ecs/{action}"),
                "errorDetails": {"code": code, "message": message},
                "logStreamARN": format!("arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/{action}:log-stream:2026/11/21/x")}}})
    };
    aws.codepipeline.register_action_executions(
        PIPELINE,
        exec,
        vec![
            failed(
                "Deploy",
                "Migrate",
                "JobFailed",
                "relation \"orders\" already exists",
                "migration 0042 failed",
            ),
            failed(
                "Deploy",
                "DeployApi",
                "JobFailed",
                "ECS service web-api did not stabilize",
                "deployment failed",
            ),
        ],
    );
}

/// A fixed pseudo-random order, each third event delivered twice.
fn shuffled_with_repeats(events: Vec<Value>, seed: u64) -> Vec<Value> {
    let mut all: Vec<Value> = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| std::iter::repeat_n(e.clone(), if i % 3 == 0 { 2 } else { 1 }))
        .collect();
    let mut state = seed;
    for i in (1..all.len()).rev() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        all.swap(i, (state >> 33) as usize % (i + 1));
    }
    all
}

/// Delivers the events round-robin to every instance at once; each instance takes its share
/// in order. Every invocation must succeed.
async fn deliver(setup: &Setup, events: &[Value]) {
    let n = setup.instances.len();
    let shares = setup.instances.iter().enumerate().map(|(i, host)| {
        let share: Vec<&Value> = events.iter().skip(i).step_by(n).collect();
        async move {
            for event in share {
                let invocation = host.invoke(event).await;
                assert!(
                    matches!(invocation.outcome, Outcome::Response { .. }),
                    "event {} failed: {:?}\n{}",
                    event["id"],
                    invocation.outcome,
                    host.logs().join("\n")
                );
            }
        }
    });
    futures_join_all(shares).await;
}

async fn futures_join_all<F: std::future::Future<Output = ()>>(futures: impl Iterator<Item = F>) {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut handles = handles;
    // Poll all of them together on this task.
    std::future::poll_fn(|cx| {
        handles.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if handles.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

fn parents(slack: &LocalSlack) -> Vec<SlackMessage> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.is_none())
        .collect()
}

fn replies(slack: &LocalSlack, parent: &SlackMessage) -> Vec<SlackMessage> {
    slack
        .messages()
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(parent.ts.as_str()))
        .collect()
}

fn shown(message: &SlackMessage) -> String {
    format!("{}\n{}", message.text, message.blocks)
}

fn logs(setup: &Setup) -> String {
    setup
        .instances
        .iter()
        .flat_map(|h| h.logs())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn shuffled_repeated_concurrent_events_make_one_message_and_one_reply_per_failed_action() {
    let setup = setup(&[], 3).await;
    register_execution(
        &setup.aws,
        EXEC_A,
        "8f14e45fceea167a5a36dedd4bea2543",
        "Speed up the checkout page",
    );
    deliver(&setup, &shuffled_with_repeats(failing_run(EXEC_A), 7)).await;

    let parents = parents(&setup.slack);
    assert_eq!(parents.len(), 1, "one parent message: {parents:#?}");
    let parent = &parents[0];
    let text = shown(parent);
    assert!(text.contains("web 5f1c2d3e FAILED"), "{text}");
    for line in [
        "*Source*  SUCCEEDED  (8s)",
        "*Build*  SUCCEEDED  (2m 01s)",
        "*Approval*  SUCCEEDED  (2m 48s)",
        "*Deploy*  FAILED  (2m 00s)",
    ] {
        assert!(text.contains(line), "missing {line:?} in {text}");
    }
    let source = text.find("Source").unwrap();
    let deploy = text.find("*Deploy*").unwrap();
    assert!(source < deploy, "stages in the order they ran");
    assert!(text.contains("Trigger: Webhook"), "{text}");
    assert!(
        text.contains(
            "https://github.com/acme/web/commit/8f14e45fceea167a5a36dedd4bea2543|8f14e45fce"
        ),
        "{text}"
    );
    assert!(text.contains("Speed up the checkout page"), "{text}");
    assert!(
        text.contains("/executions/5f1c2d3e-aaaa-4bbb-8ccc-0123456789ab/timeline"),
        "{text}"
    );
    assert!(text.contains("in 7m 01s"), "{text}");

    let replies = replies(&setup.slack, parent);
    assert_eq!(
        replies.len(),
        2,
        "one reply per failed action: {replies:#?}"
    );
    let all = replies.iter().map(shown).collect::<Vec<_>>().join("\n");
    assert!(all.contains("*Deploy / Migrate* (Lambda) failed"), "{all}");
    assert!(
        all.contains(r#"relation \"orders\" already exists"#),
        "{all}"
    );
    assert!(all.contains("*Deploy / DeployApi* (ECS) failed"), "{all}");
    assert!(
        all.contains("ECS service web-api did not stabilize"),
        "{all}"
    );
    assert!(
        all.contains("log-group/$252Faws$252Flambda$252FMigrate"),
        "{all}"
    );
    assert!(
        all.contains("https://console.aws.amazon.com/ecs/DeployApi"),
        "{all}"
    );
    assert!(
        !logs(&setup).contains(BOT_TOKEN),
        "the bot token is never logged"
    );
}

#[tokio::test]
async fn interleaved_executions_of_one_pipeline_get_a_message_each() {
    let setup = setup(&[], 2).await;
    register_execution(&setup.aws, EXEC_A, "aaaaaaaaaa11111111", "First change");
    register_execution(&setup.aws, EXEC_B, "bbbbbbbbbb22222222", "Second change");
    let (a, b) = (failing_run(EXEC_A), succeeding_run(EXEC_B));
    let mut interleaved = Vec::new();
    for i in 0..a.len().max(b.len()) {
        interleaved.extend(a.get(i).cloned());
        interleaved.extend(b.get(i).cloned());
    }
    deliver(&setup, &interleaved).await;

    let parents = parents(&setup.slack);
    assert_eq!(parents.len(), 2, "{parents:#?}");
    let find = |id: &str| {
        parents
            .iter()
            .find(|m| m.text.contains(id))
            .unwrap()
            .clone()
    };
    let (first, second) = (find("5f1c2d3e"), find("9e8d7c6b"));
    let (first_text, second_text) = (shown(&first), shown(&second));
    assert!(first_text.contains("FAILED") && first_text.contains("First change"));
    assert!(!first_text.contains("9e8d7c6b") && !first_text.contains("Second change"));
    assert!(
        second_text.contains("web 9e8d7c6b SUCCEEDED"),
        "{second_text}"
    );
    assert!(second_text.contains("Second change") && !second_text.contains("First change"));
    assert!(!second_text.contains("FAILED"), "{second_text}");
    assert_eq!(replies(&setup.slack, &first).len(), 2);
    assert!(replies(&setup.slack, &second).is_empty());
}

#[tokio::test]
async fn a_rejected_approval_names_who_rejected_from_the_slack_record_and_unknown_events_are_skipped(
) {
    let setup = setup(&[], 1).await;
    // No CodePipeline details registered: the reply uses what the events carry, and who
    // rejected comes from approval-responder's record, never from the (forgeable) summary.
    let exec = EXEC_A;
    let token = "7d1e0c4b-1111-4222-8333-444455556666";
    for item in [
        json!({"pk": {"S": pipeline_ext::executions_table::ItemKey::approval_action(exec, "Staging", "ReleaseGate").to_string()},
               "token": {"S": token}, "channel": {"S": CHANNEL}, "ts": {"S": "1700000000.000200"}}),
        json!({"pk": {"S": pipeline_ext::executions_table::ItemKey::votes(token).to_string()}, "decision": {"S": "Rejected"},
               "decided_by": {"L": [{"S": "U0APPROVER"}]}, "reason": {"S": "the login page is broken"}}),
    ] {
        setup.moto().cli(&[
            "dynamodb",
            "put-item",
            "--table-name",
            TABLE,
            "--item",
            &item.to_string(),
        ]);
    }
    let events = vec![
        pipeline_event(exec, "STARTED", 0),
        stage_event(exec, "Staging", "STARTED", 1),
        action_event(exec, "Staging", "ReleaseGate", APPROVAL, "STARTED", 1, None),
        action_event(
            exec,
            "Staging",
            "ReleaseGate",
            APPROVAL,
            "FAILED",
            50,
            Some("Rejected in Slack by The Boss (U0BOSS): fine by me"),
        ),
        stage_event(exec, "Staging", "FAILED", 50),
        pipeline_event(exec, "FAILED", 51),
    ];
    deliver(&setup, &events).await;
    let parent = parents(&setup.slack).pop().expect("a parent message");
    let replies = replies(&setup.slack, &parent);
    assert_eq!(replies.len(), 1);
    let reply = shown(&replies[0]);
    assert!(
        reply.contains("*Staging / ReleaseGate* (approval) was rejected in Slack by <@U0APPROVER>"),
        "{reply}"
    );
    assert!(reply.contains("> the login page is broken"), "{reply}");
    assert!(!reply.contains("U0BOSS"), "{reply}");
    assert!(logs(&setup).contains("no source revision for this execution"));

    let before = setup.slack.messages().len();
    let other = json!({"version": "0", "id": "x-1", "detail-type": "CodePipeline Stage Execution Retry",
        "source": "aws.codepipeline", "time": at(60), "region": "us-east-1", "detail": {"pipeline": PIPELINE}});
    let ec2 = json!({"version": "0", "id": "x-2", "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2", "time": at(60), "region": "us-east-1", "detail": {"state": "running"}});
    deliver(&setup, &[other, ec2, json!("not an event")]).await;
    assert_eq!(setup.slack.messages().len(), before);
    let logs = logs(&setup);
    assert!(
        logs.contains("CodePipeline Stage Execution Retry") && logs.contains("event skipped"),
        "{logs}"
    );
    assert!(logs.contains("aws.ec2"), "{logs}");
}

#[tokio::test]
async fn pipelines_outside_the_filter_make_no_slack_call_and_states_wait_for_their_turn() {
    let setup = setup(&[("PIPELINES", "api-*, web"), ("SHOW_STATES", "FAILED")], 1).await;
    let mut other = failing_run(EXEC_B);
    for event in &mut other {
        event["detail"]["pipeline"] = json!("billing");
    }
    deliver(&setup, &other).await;
    assert!(
        setup.aws.calls.all().iter().all(|c| c.service != "slack"),
        "no Slack call for a filtered pipeline"
    );
    assert!(logs(&setup).contains("pipeline not in PIPELINES"));
    let stored = setup
        .moto()
        .cli(&["dynamodb", "scan", "--table-name", TABLE]);
    assert_eq!(stored["Count"], 0, "nothing stored for it either");

    // Only FAILED executions are shown: nothing until the run fails, then the whole story.
    let run = failing_run(EXEC_A);
    let (before, after) = run.split_at(run.len() - 1);
    deliver(&setup, before).await;
    assert!(setup.slack.messages().is_empty());
    deliver(&setup, after).await;
    let parent = parents(&setup.slack).pop().expect("shown once FAILED");
    assert!(shown(&parent).contains("*Build*  SUCCEEDED"));
    assert_eq!(replies(&setup.slack, &parent).len(), 2);
}

#[tokio::test]
async fn slack_rate_limits_are_waited_out_and_failures_fail_or_go_to_the_fallback() {
    let setup = setup(&[], 1).await;
    setup
        .aws
        .faults
        .add(Fault::new("slack", "chat.postMessage", "ratelimited", 429).times(1));
    deliver(&setup, &failing_run(EXEC_A)[..1]).await;
    assert_eq!(setup.slack.calls("chat.postMessage").len(), 2);
    assert_eq!(parents(&setup.slack).len(), 1);

    // Slack refuses: the invocation fails so Lambda retries it, and the retry catches up.
    setup
        .aws
        .faults
        .add(Fault::new("slack", "chat.update", "channel_not_found", 200));
    let event = stage_event(EXEC_A, "Source", "STARTED", 1);
    let host = &setup.instances[0];
    let invocation = host.invoke(&event).await;
    assert!(
        matches!(invocation.outcome, Outcome::Error { .. }),
        "{:?}",
        invocation.outcome
    );
    setup.aws.faults.clear();
    let invocation = host.invoke(&event).await;
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "{:?}",
        invocation.outcome
    );
    assert!(shown(&parents(&setup.slack)[0]).contains("*Source*  STARTED"));

    // With a fallback topic, a failure Slack cannot show is copied there instead.
    let mut setup = setup;
    setup.world.route_fallback_to_queue("deploys-copy");
    let notifier = setup
        .host(
            "pipeline-notifier-fallback",
            env!("CARGO_BIN_EXE_pipeline-notifier"),
            &[],
        )
        .await;
    setup
        .aws
        .faults
        .add(Fault::new("slack", "*", "not_in_channel", 200));
    let failed = action_event(
        EXEC_A,
        "Build",
        "Compile",
        BUILD,
        "FAILED",
        90,
        Some("exit status 2"),
    );
    let invocation = notifier.invoke(&failed).await;
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "not lost, so no retry: {:?}",
        invocation.outcome
    );
    let copy = setup.fallback_copy();
    assert!(
        copy.contains("Failed: Build / Compile: exit status 2"),
        "{copy}"
    );
    assert!(copy.contains("not_in_channel"), "{copy}");
}

/// A CodePipeline that never answers must not hold the invocation (and the execution's lease)
/// until Lambda kills it: each read gives up after a few seconds and the message is still
/// posted and kept up to date; the lookups are tried again on later events.
#[tokio::test]
async fn a_hung_codepipeline_read_does_not_hold_the_invocation() {
    let setup = setup(&[], 1).await;
    register_execution(&setup.aws, EXEC_A, "aaaaaaaaaa11111111", "First change");
    setup
        .aws
        .faults
        .add(Fault::new("codepipeline", "*", "hang", 200));
    let run = failing_run(EXEC_A);
    deliver(&setup, &run[..3]).await;
    let parents = parents(&setup.slack);
    assert_eq!(parents.len(), 1, "{}", logs(&setup));
    assert!(
        logs(&setup).contains("no answer within 5000 ms"),
        "{}",
        logs(&setup)
    );
}

#[tokio::test]
async fn the_sample_events_in_events_are_understood() {
    let setup = setup(&[], 1).await;
    let host = &setup.instances[0];
    for (file, sample) in [
        (
            "eventbridge-pipeline-execution-started.json",
            include_str!("../../../events/eventbridge-pipeline-execution-started.json"),
        ),
        (
            "eventbridge-stage-execution-started.json",
            include_str!("../../../events/eventbridge-stage-execution-started.json"),
        ),
        (
            "eventbridge-action-execution-failed.json",
            include_str!("../../../events/eventbridge-action-execution-failed.json"),
        ),
    ] {
        let event: Value = serde_json::from_str(sample).unwrap();
        let invocation = host.invoke(&event).await;
        match invocation.outcome {
            Outcome::Response { body } => assert_eq!(
                body["execution"], "3f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
                "{file}: {body}"
            ),
            other => panic!("{file}: {other:?}"),
        }
    }
    let parents = parents(&setup.slack);
    assert_eq!(parents.len(), 1, "{parents:#?}");
    assert!(
        shown(&parents[0]).contains("Build"),
        "{}",
        shown(&parents[0])
    );
    assert_eq!(
        replies(&setup.slack, &parents[0]).len(),
        1,
        "the failed action is answered in the thread"
    );
}

/// The parent message cannot be edited any more (Slack's edit window, the bot removed from the
/// channel): the failures are still explained in its thread, and nothing is reposted.
#[tokio::test]
async fn a_parent_slack_will_not_update_still_gets_its_failure_replies() {
    let setup = setup(&[], 1).await;
    register_execution(&setup.aws, EXEC_A, "aaaaaaaaaa11111111", "First change");
    setup.aws.faults.add(Fault::new(
        "slack",
        "chat.update",
        "edit_window_closed",
        200,
    ));
    deliver(&setup, &failing_run(EXEC_A)).await;
    let parents = parents(&setup.slack);
    assert_eq!(parents.len(), 1, "{parents:#?}");
    assert_eq!(
        replies(&setup.slack, &parents[0]).len(),
        2,
        "both failed actions are explained:\n{}",
        logs(&setup)
    );
    assert!(
        setup.slack.calls("chat.update").len() > 3,
        "updates were tried"
    );
}

/// A parent message that is deleted again and again is posted again once, not for every event.
#[tokio::test]
async fn a_parent_that_keeps_disappearing_is_reposted_once() {
    let setup = setup(&[], 1).await;
    register_execution(&setup.aws, EXEC_A, "aaaaaaaaaa11111111", "First change");
    setup
        .aws
        .faults
        .add(Fault::new("slack", "chat.update", "message_not_found", 200));
    deliver(&setup, &failing_run(EXEC_A)).await;
    let posted: Vec<String> = setup.slack.messages().into_iter().map(|m| m.text).collect();
    let parent_posts = posted
        .iter()
        .filter(|t| t.starts_with("web 5f1c2d3e"))
        .count();
    assert_eq!(
        parent_posts, 2,
        "the first post and one repost: {posted:#?}"
    );
    let failures = posted.iter().filter(|t| t.ends_with(" failed")).count();
    assert_eq!(failures, 2, "the failures are still told: {posted:#?}");
    assert!(
        logs(&setup).contains("not reposting it"),
        "{}",
        logs(&setup)
    );
}

#[tokio::test]
async fn a_rollback_execution_is_labelled_and_the_failed_executions_thread_points_to_it() {
    let setup = setup(&[], 1).await;
    // The failed execution, told in Slack first.
    register_execution(&setup.aws, EXEC_A, "aaaaaaaaaa11111111", "First change");
    deliver(&setup, &failing_run(EXEC_A)).await;
    setup
        .aws
        .codepipeline
        .set_execution_status(PIPELINE, EXEC_A, "Failed");
    let failed_parent = parents(&setup.slack)
        .pop()
        .expect("the failed execution's message");
    let sample: Value = serde_json::from_str(include_str!(
        "../../../events/eventbridge-rollback-execution-started.json"
    ))
    .unwrap();
    let rollback = sample["detail"]["execution-id"]
        .as_str()
        .unwrap()
        .to_string();
    setup.aws.codepipeline.register_execution(json!({
        "pipelineName": PIPELINE, "pipelineExecutionId": rollback, "status": "InProgress",
        "executionType": "ROLLBACK",
        "rollbackMetadata": {"rollbackTargetPipelineExecutionId": EXEC_B},
        "trigger": {"triggerType": "AutomatedRollback", "triggerDetail": EXEC_A}
    }));
    let invocation = setup.instances[0].invoke(&sample).await;
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "{:?}",
        invocation.outcome
    );
    let parent = parents(&setup.slack).pop().expect("a parent message");
    assert_ne!(parent.ts, failed_parent.ts);
    let text = shown(&parent);
    let pointer = replies(&setup.slack, &failed_parent)
        .into_iter()
        .map(|m| shown(&m))
        .find(|m| m.contains("Rolled back"))
        .unwrap_or_else(|| panic!("no pointer to the rollback:\n{}", logs(&setup)));
    assert!(
        pointer.contains(":rewind: *Rolled back automatically* by execution <https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/web/executions/7e2a9c41-5d3b-4f6e-9a1c-2b3d4e5f6a7b/timeline?region=us-east-1|7e2a9c41>"),
        "{pointer}"
    );
    assert!(
        text.contains(":rewind: *Rollback* (automatic, after a stage failed) to execution <https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/web/executions/9e8d7c6b-bbbb-4ccc-8ddd-ba9876543210/timeline?region=us-east-1|9e8d7c6b>"),
        "{text}"
    );
    pipeline_testkit::block_kit::assert_valid_blocks(&parent.blocks);
}

/// A stage failed by its `OnSuccess` condition has no failed action to explain it: the message
/// lists the rules that ran (`ListRuleExecutions`), with what the failed one found, escaped.
#[tokio::test]
async fn a_stage_failed_by_its_condition_names_the_rule_and_what_it_found() {
    let setup = setup(&[], 1).await;
    register_execution(&setup.aws, EXEC_B, "bbbbbbbbbb22222222", "Second change");
    let rule = |name: &str, provider: &str, status: &str, summary: &str| {
        let mut result = json!({"externalExecutionSummary": summary});
        if status == "Failed" {
            result["errorDetails"] = json!({"code": "RuleFailed", "message": summary});
        }
        json!({"pipelineExecutionId": EXEC_B, "ruleExecutionId": format!("{name}-run"), "pipelineVersion": 4,
            "stageName": "Deploy", "ruleName": name, "startTime": 1_795_255_500.0, "lastUpdateTime": 1_795_255_600.0,
            "status": status, "updatedBy": "arn:aws:iam::111111111111:role/service",
            "input": {"ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
                "configuration": {"AlarmName": "web-5xx"}, "someFieldAddedLater": true},
            "output": {"executionResult": result}})
    };
    setup.aws.codepipeline.register_rule_executions(
        PIPELINE,
        EXEC_B,
        vec![
            rule(
                "LintClean",
                "VariableCheck",
                "Succeeded",
                "LintErrors = 0 EQ 0",
            ),
            rule(
                "No5xx",
                "CloudWatchAlarm",
                "Failed",
                "alarm web-5xx is in ALARM <!channel> <https://evil.example|see>",
            ),
        ],
    );
    let mut events = succeeding_run(EXEC_B);
    events.truncate(events.len() - 2);
    events.push(stage_event(EXEC_B, "Deploy", "FAILED", 200));
    events.push(pipeline_event(EXEC_B, "FAILED", 200));
    deliver(&setup, &events).await;
    let parent = parents(&setup.slack).pop().expect("a parent message");
    let text = shown(&parent);
    assert!(
        text.contains("*Stage conditions*")
            && text.contains(":x: *Deploy* · rule No5xx (CloudWatchAlarm) Failed: alarm web-5xx is in ALARM &lt;!channel&gt; &lt;https://evil.example|see&gt;"),
        "{text}\n{}",
        logs(&setup)
    );
    assert!(
        text.contains(":white_check_mark: *Deploy* · rule LintClean (VariableCheck) Succeeded: LintErrors = 0 EQ 0"),
        "{text}"
    );
    assert!(setup.aws.calls.count("codepipeline", "ListRuleExecutions") > 0);
    pipeline_testkit::block_kit::assert_valid_blocks(&parent.blocks);
}

#[tokio::test]
async fn a_poison_event_is_skipped_with_a_stable_reason_and_failures_have_stable_error_types() {
    let setup = setup(&[], 1).await;
    let host = &setup.instances[0];
    // An execution id of 5,000 characters can never be stored (DynamoDB keys stop at 2 KB):
    // retrying it is pointless, so it is logged and skipped, not failed.
    let mut poison = action_event(
        EXEC_A,
        "Deploy",
        "DeployWeb",
        DEPLOY,
        "FAILED",
        5,
        Some("boom"),
    );
    poison["detail"]["execution-id"] = json!("x".repeat(5000));
    let invocation = host.invoke(&poison).await;
    let Outcome::Response { body } = &invocation.outcome else {
        panic!(
            "a poison event must not fail the invocation (Lambda would retry it): {:?}",
            invocation.outcome
        );
    };
    assert!(
        body["skipped"].as_str().is_some_and(
            |why| why.contains("detail.execution-id is longer than CodePipeline allows")
        ),
        "{body}"
    );
    assert!(
        logs(&setup).contains("event skipped"),
        "the skip is logged: {}",
        logs(&setup)
    );
    assert!(setup.slack.messages().is_empty());

    // A failure that a retry can fix has a stable errorType, never a Rust type path.
    setup.aws.faults.add(Fault::new(
        "slack",
        "chat.postMessage",
        "internal_error",
        200,
    ));
    let invocation = host.invoke(&pipeline_event(EXEC_A, "STARTED", 9)).await;
    match &invocation.outcome {
        Outcome::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "SlackUndelivered", "{error_message}");
            assert!(error_message.contains("internal_error"), "{error_message}");
        }
        other => panic!("expected an invocation error: {other:?}"),
    }
}
