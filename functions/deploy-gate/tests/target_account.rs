//! deploy-gate reading alarms in another account: `role_arn` (and `external_id`) make the
//! alarm calls as the assumed role, through the local STS, whose sessions the local CloudWatch
//! knows; each account has its own alarms there, so a gate that forgot the role would not
//! find the alarm.

use pipeline_local::job_invocation::JobRun;
use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::{json, Value};
use std::time::Duration;

const ROLE: &str = "arn:aws:iam::222222222222:role/pipeline-deploy-gate";
const TARGET: &str = "222222222222";

async fn gate() -> LocalFunction {
    let function = LocalFunction::start(
        "deploy-gate",
        env!("CARGO_BIN_EXE_deploy-gate"),
        Duration::from_secs(30),
        &[],
    )
    .await
    .expect("function host starts");
    function
        .aws
        .sts
        .add_role(ROLE, Some("tooling-123"))
        .unwrap();
    function
        .aws
        .cloudwatch
        .set_alarm_in(TARGET, "ProdErrors", "OK", "fine in production");
    function
}

async fn run(function: &LocalFunction, params: Value) -> (JobRun, String) {
    let event = JobEventBuilder::new("deploy-gate", &params).build();
    let job_id = event["CodePipeline.job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    (function.run(event).await.expect("a job event"), job_id)
}

/// The sessions that signed each DescribeAlarms call: (role, session name).
fn alarm_readers(function: &LocalFunction) -> Vec<(String, String)> {
    function
        .aws
        .calls
        .of("cloudwatch", "DescribeAlarms")
        .iter()
        .map(|call| {
            let key = call.access_key.clone().unwrap_or_default();
            match function.aws.sts.session_of(&key) {
                Some(session) => (session.role_arn, session.session_name),
                None => ("(the function's own role)".into(), String::new()),
            }
        })
        .collect()
}

#[tokio::test]
async fn reads_the_alarm_of_the_target_account_as_the_assumed_role() {
    let function = gate().await;
    let (run, job_id) = run(
        &function,
        json!({"alarms": ["ProdErrors"], "role_arn": ROLE, "external_id": "tooling-123"}),
    )
    .await;
    run.expect_variables();
    let summary = run.summary_text();
    assert!(summary.contains("ProdErrors"), "{summary}");
    let readers = alarm_readers(&function);
    assert!(!readers.is_empty());
    for (role, session) in readers {
        assert_eq!(role, ROLE);
        assert_eq!(session, format!("pipeline-{job_id}"));
    }
    // The external id, the one shared secret of the trust policy, is in no log.
    let logged = serde_json::to_string(&function.aws.calls.all()).unwrap();
    assert!(!logged.contains("tooling-123"));
    assert!(!function.logs().contains("tooling-123"));
}

#[tokio::test]
async fn a_gate_that_does_not_assume_the_role_does_not_find_the_other_accounts_alarm() {
    let function = gate().await;
    let (run, _) = run(&function, json!({"alarms": ["ProdErrors"]})).await;
    let (_, message) = run.expect_failure();
    assert!(message.contains("ProdErrors"), "{message}");
    assert_eq!(
        alarm_readers(&function),
        [("(the function's own role)".to_string(), String::new())]
    );
}

#[tokio::test]
async fn a_refused_assume_role_is_a_permission_error_naming_the_role_and_its_trust_policy() {
    let function = gate().await;
    let (run, _) = run(
        &function,
        json!({"alarms": ["ProdErrors"], "role_arn": ROLE, "external_id": "wrong-id"}),
    )
    .await;
    let (kind, message) = run.expect_failure();
    assert_eq!(kind, "PermissionError");
    assert!(
        message.contains(&format!("cannot assume {ROLE}"))
            && message
                .contains("its trust policy in account 222222222222 must allow sts:AssumeRole")
            && message.contains("sts:ExternalId"),
        "{message}"
    );
    assert!(!message.contains("wrong-id"), "{message}");
    assert!(alarm_readers(&function).is_empty(), "no alarm was read");
}

#[tokio::test]
async fn one_session_serves_every_continuation_of_a_bake_while_it_lasts() {
    let function = gate().await;
    let (run, _) = run(
        &function,
        json!({"alarms": ["ProdErrors"], "role_arn": ROLE, "external_id": "tooling-123",
               "bake_seconds": 3, "interval_seconds": 1}),
    )
    .await;
    run.expect_variables();
    let rounds = alarm_readers(&function).len();
    assert!(rounds >= 3, "{rounds} rounds");
    assert_eq!(function.aws.calls.of("sts", "AssumeRole").len(), 1);
}

#[tokio::test]
async fn credentials_are_assumed_again_when_a_continuation_outlives_them() {
    let function = gate().await;
    // Sessions of two seconds: a three-second bake outlives the first.
    function.aws.sts.cap_sessions(Duration::from_secs(2));
    let (run, _) = run(
        &function,
        json!({"alarms": ["ProdErrors"], "role_arn": ROLE, "external_id": "tooling-123",
               "bake_seconds": 3, "interval_seconds": 1}),
    )
    .await;
    run.expect_variables();
    let sessions = function.aws.calls.of("sts", "AssumeRole").len();
    assert!(sessions >= 2, "{sessions} sessions");
    // No call was ever made with expired credentials.
    let refused: Vec<_> = function
        .aws
        .calls
        .of("cloudwatch", "DescribeAlarms")
        .into_iter()
        .filter(|c| c.status != 200)
        .collect();
    assert!(refused.is_empty(), "{refused:?}");
}

#[tokio::test]
async fn a_role_that_is_not_one_is_a_configuration_error_before_any_call() {
    let function = gate().await;
    for (params, needle) in [
        (
            json!({"alarms": ["ProdErrors"], "role_arn": "arn:aws:s3:::prod-bucket"}),
            "role_arn `arn:aws:s3:::prod-bucket` is not an IAM role ARN",
        ),
        (
            json!({"alarms": ["ProdErrors"], "external_id": "tooling-123"}),
            "external_id is set without role_arn",
        ),
        (
            json!({"http": [{"url": "http://127.0.0.1:9/health"}], "role_arn": ROLE}),
            "`role_arn` is the role the alarms are read as, and there are no `alarms`",
        ),
    ] {
        let (run, _) = run(&function, params).await;
        let (kind, message) = run.expect_failure();
        assert_eq!(kind, "ConfigurationError", "{message}");
        assert!(message.contains(needle), "{message}");
    }
    assert!(function.aws.calls.of("sts", "AssumeRole").is_empty());
}
