//! One test per guarantee of the invoke-action contract (docs/architecture.md §3), through the real
//! Runtime API host, the fixture binary and the local CodePipeline endpoint.

mod common;

use common::*;
use pipeline_local::faults::Fault;
use pipeline_local::runtime_api::Outcome;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn reports_success_with_summary_execution_id_and_variables() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    let result = only_result(&run);
    assert_eq!(result["executionDetails"]["summary"], "fixture done");
    assert_eq!(
        result["executionDetails"]["externalExecutionId"],
        run.invocations[0].request_id.as_str()
    );
    assert_eq!(result["outputVariables"]["Answer"], "42");
    assert!(run.succeeded());
}

#[tokio::test]
async fn reports_failure_when_handler_panics() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(&h, job_event(json!({"panic": null}))).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("panicked") && message.contains("fixture panicked on purpose"),
        "{message}"
    );
    // The runner reported, then returned Ok to Lambda: no Lambda-level error, so no retry.
    assert!(
        matches!(run.invocations[0].outcome, Outcome::Response { .. }),
        "{:?}",
        run.invocations[0].outcome
    );
}

#[tokio::test]
async fn reports_handler_errors_as_job_failed() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(
        &h,
        job_event(json!({"fail": {"message": "step 2 broke on file a.txt"}})),
    )
    .await;
    assert_eq!(
        failure(&run),
        (
            "JobFailed".to_string(),
            "step 2 broke on file a.txt".to_string()
        )
    );
}

#[tokio::test]
async fn unknown_user_parameter_key_is_a_configuration_error_naming_the_key() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(
        &h,
        job_event(json!({"copy": {"input": "Source", "outptu": "Copied"}})),
    )
    .await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("unknown field `outptu`") && message.contains("output"),
        "{message}"
    );
}

#[tokio::test]
async fn missing_and_malformed_user_parameters_are_configuration_errors() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let mut event = job_event(json!({}));
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("UserParameters");
    let (kind, message) = failure(&run(&h, event).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("UserParameters is missing"), "{message}");

    let mut event = job_event(json!({}));
    event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]["UserParameters"] =
        json!("{not json");
    let (kind, message) = failure(&run(&h, event).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("not valid JSON"), "{message}");
}

#[tokio::test]
async fn wrong_input_artifact_name_is_a_configuration_error_listing_the_real_ones() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(
        &h,
        job_event(json!({"copy": {"input": "Build", "output": "Copied"}})),
    )
    .await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("`Build`") && message.contains("[Source]"),
        "{message}"
    );
}

#[tokio::test]
async fn reports_failure_before_the_lambda_deadline_when_handler_overruns() {
    let timeout = Duration::from_secs(8);
    let h = harness(timeout, &[]).await;
    let run = run(&h, job_event(json!({"sleep": {"millis": 60_000}}))).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("ran out of time"), "{message}");
    let invocation = &run.invocations[0];
    let reported = h.aws.calls.of("codepipeline", "PutJobFailureResult")[0].at_ms;
    let deadline = invocation.started_at_ms + timeout.as_millis() as f64;
    assert!(
        reported < deadline,
        "reported at {reported} ms, deadline {deadline} ms"
    );
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "the function must not be killed: {:?}",
        invocation.outcome
    );
}

#[tokio::test]
async fn returns_a_continuation_when_time_runs_short_and_resumes_from_its_state() {
    // 8 s timeout minus the 5 s margin leaves 3 s of work per invocation: 12 units of 0.5 s
    // need several invocations.
    let h = harness(Duration::from_secs(8), &[]).await;
    let run = run(&h, job_event(json!({"chunked": {"units": 12}}))).await;
    let record = run.record.clone().unwrap();
    assert!(run.succeeded(), "{:?}", record.results);
    assert!(
        run.invocations.len() >= 3,
        "{} invocations",
        run.invocations.len()
    );
    let continuations: Vec<_> = record
        .results
        .iter()
        .filter(|r| r.get("continuationToken").is_some())
        .collect();
    assert_eq!(continuations.len(), run.invocations.len() - 1);
    for (invocation, call) in run
        .invocations
        .iter()
        .zip(h.aws.calls.of("codepipeline", "PutJobSuccessResult"))
    {
        assert!(
            call.at_ms < invocation.started_at_ms + 8000.0,
            "a report came after the deadline"
        );
    }
    for c in &continuations {
        assert!(
            c.get("outputVariables").is_none(),
            "no output variables with a continuation"
        );
        assert!(c["continuationToken"].as_str().unwrap().len() <= 2048);
    }
    assert_eq!(
        record.results.last().unwrap()["outputVariables"]["Units"],
        "12"
    );
}

#[tokio::test]
async fn continuation_state_round_trips_through_codepipeline() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(&h, job_event(json!({"continue": {"rounds": 3}}))).await;
    let record = run.record.unwrap();
    assert_eq!(run.invocations.len(), 4);
    let summaries: Vec<_> = record
        .results
        .iter()
        .map(|r| {
            r["executionDetails"]["summary"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(summaries, ["round 1", "round 2", "round 3", "3 rounds"]);
    assert_eq!(record.results[1]["executionDetails"]["percentComplete"], 33);
}

#[tokio::test]
async fn s3_access_denied_is_a_permission_error() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let event = job_event(json!({"copy": {"input": "Source", "output": "Copied"}}));
    h.aws
        .s3
        .put_file(BUCKET, &input_key(&event), &zip_of(&[("a.txt", b"hello")]))
        .unwrap();
    h.aws
        .faults
        .add(Fault::new("s3", "*", "AccessDenied", 403).on_key(&input_key(&event)));
    let (kind, message) = failure(&run(&h, event).await);
    assert_eq!(kind, "PermissionError");
    assert!(
        message.contains("AccessDenied") && message.contains("in/"),
        "{message}"
    );
}

#[tokio::test]
async fn repeat_delivery_to_a_warm_container_has_no_second_effect() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let event = job_event(json!({"succeed": {"marker_bucket": BUCKET}}));
    let job_id = event["CodePipeline.job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let first = run(&h, event.clone()).await;
    assert!(first.succeeded());
    // The same event again (Lambda's at-least-once delivery), to the same warm process.
    let second = h
        .host
        .invoke(&first_event_with_credentials(&h, event))
        .await;
    assert_eq!(
        second.outcome,
        Outcome::Response {
            body: json!({"jobId": job_id, "reported": "skipped-repeat"})
        }
    );
    assert_eq!(h.aws.codepipeline.job(&job_id).unwrap().results.len(), 1);
    let markers = h
        .s3_client()
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix(format!("effects/{job_id}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(markers.key_count(), Some(1), "the handler ran twice");
}

#[tokio::test]
async fn repeat_delivery_to_a_new_container_is_dropped_after_invalid_job_state() {
    let first_host = harness(Duration::from_secs(30), &[]).await;
    let event = job_event(json!({"succeed": {}}));
    let job_id = event["CodePipeline.job"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(run(&first_host, event.clone()).await.succeeded());
    // A second container knows nothing of the first: CodePipeline's InvalidJobStateException tells.
    let spec = first_host.host.spec().clone();
    let other = pipeline_local::runtime_api::FunctionHost::start(spec)
        .await
        .unwrap();
    let second = other
        .invoke(&first_event_with_credentials(&first_host, event))
        .await;
    assert_eq!(
        second.outcome,
        Outcome::Response {
            body: json!({"jobId": job_id, "reported": "already-completed"})
        }
    );
    let record = first_host.aws.codepipeline.job(&job_id).unwrap();
    assert_eq!(record.results.len(), 1);
    assert_eq!(
        first_host
            .aws
            .calls
            .of("codepipeline", "PutJobSuccessResult")
            .iter()
            .filter(|c| c.status == 400)
            .count(),
        1
    );
}

fn first_event_with_credentials(
    h: &pipeline_testkit::LocalFunction,
    mut event: serde_json::Value,
) -> serde_json::Value {
    let issued = h.aws.issue_credentials();
    event["CodePipeline.job"]["data"]["artifactCredentials"] = json!({
        "accessKeyId": issued.access_key_id, "secretAccessKey": issued.secret_access_key, "sessionToken": issued.session_token
    });
    event
}

#[tokio::test]
async fn retries_codepipeline_throttling_and_server_errors() {
    let h = harness(Duration::from_secs(30), &[]).await;
    h.aws.faults.add(
        Fault::new(
            "codepipeline",
            "PutJobSuccessResult",
            "ThrottlingException",
            400,
        )
        .times(2),
    );
    h.aws.faults.add(
        Fault::new(
            "codepipeline",
            "PutJobSuccessResult",
            "InternalServerError",
            500,
        )
        .times(1),
    );
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    assert!(run.succeeded());
    let statuses: Vec<u16> = h
        .aws
        .calls
        .of("codepipeline", "PutJobSuccessResult")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [400, 400, 500, 200]);
}

#[tokio::test]
async fn invalid_output_variable_names_fail_the_job_with_our_message() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(
        &h,
        job_event(json!({"variables": {"values": {"bad name": "x"}}})),
    )
    .await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("`bad name`"), "{message}");
}

#[tokio::test]
async fn long_failure_messages_are_truncated_to_the_api_limit() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let run = run(
        &h,
        job_event(json!({"fail": {"message": "x".repeat(9000)}})),
    )
    .await;
    let (_, message) = failure(&run);
    assert_eq!(message.chars().count(), 5000);
    assert!(message.ends_with("[truncated]"));
}

#[tokio::test]
async fn a_malformed_job_event_is_still_reported() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let mut event = job_event(json!({"succeed": {}}));
    event["CodePipeline.job"]["data"]["inputArtifacts"] = json!("not a list");
    let (kind, message) = failure(&run(&h, event).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("malformed CodePipeline job event"),
        "{message}"
    );
}

#[tokio::test]
async fn logs_never_contain_the_artifact_credentials_even_at_trace_level() {
    let h = harness(
        Duration::from_secs(30),
        &[("AWS_LAMBDA_LOG_LEVEL", "TRACE")],
    )
    .await;
    let event = job_event(json!({"copy": {"input": "Source", "output": "Copied"}}));
    h.aws
        .s3
        .put_file(BUCKET, &input_key(&event), &zip_of(&[("a.txt", b"hello")]))
        .unwrap();
    let run = run(&h, event).await;
    assert!(run.succeeded());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = h.logs();
    assert!(
        logs.contains("job started") && logs.contains("job result reported"),
        "logging is on: {logs}"
    );
    let record = run.record.unwrap();
    let creds = &record.data["artifactCredentials"];
    for secret in [
        creds["secretAccessKey"].as_str().unwrap(),
        creds["sessionToken"].as_str().unwrap(),
    ] {
        assert!(!logs.contains(secret), "a credential leaked into the logs");
    }
    // The role's credentials as well.
    assert!(!logs.contains("local-function-role-secret") && !logs.contains("local-role-session"));
}

#[tokio::test]
async fn json_log_format_gives_one_json_object_per_line() {
    let h = harness(
        Duration::from_secs(30),
        &[("AWS_LAMBDA_LOG_FORMAT", "JSON")],
    )
    .await;
    assert!(run(&h, job_event(json!({"succeed": {}}))).await.succeeded());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = h.host.logs();
    let ours: Vec<_> = logs
        .iter()
        .filter(|l| l.contains("job result reported"))
        .collect();
    assert_eq!(ours.len(), 1, "{logs:?}");
    let parsed: serde_json::Value = serde_json::from_str(ours[0]).expect("JSON log line");
    assert_eq!(parsed["level"], "INFO");
}

/// A small zip built with the `zip` crate (an independent implementation).
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect();
    pipeline_local::zips::zip_files(&files).unwrap()
}
