//! Reporting is bounded: a CodePipeline that hangs or refuses the report never leaves the job
//! without a result, and never holds the function past its deadline.

mod common;

use common::*;
use pipeline_local::faults::Fault;
use pipeline_local::runtime_api::Outcome;
use pipeline_local::service::HANG;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_report_still_arrives_when_codepipeline_hangs_on_the_first_attempt() {
    let h = harness(Duration::from_secs(20), &[]).await;
    h.aws
        .faults
        .add(Fault::new("codepipeline", "PutJobSuccessResult", HANG, 0).times(1));
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    assert!(run.succeeded(), "{:?}\n{}", run.record, h.logs());
    let statuses: Vec<u16> = h
        .aws
        .calls
        .of("codepipeline", "PutJobSuccessResult")
        .iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(
        statuses,
        [0, 200],
        "the hung attempt, then the one that landed"
    );
    assert!(
        h.logs()
            .contains("CodePipeline did not answer the report in time"),
        "{}",
        h.logs()
    );
}

#[tokio::test]
async fn the_invocation_ends_before_the_deadline_when_codepipeline_never_answers() {
    let h = harness(Duration::from_secs(8), &[]).await;
    h.aws.faults.add(Fault::new("codepipeline", "*", HANG, 0));
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    assert!(run.results().is_empty());
    let invocation = &run.invocations[0];
    match &invocation.outcome {
        Outcome::Error {
            error_type,
            error_message,
        } => {
            assert_eq!(error_type, "JobResultNotReported");
            assert!(
                error_message.contains("CodePipeline PutJobSuccessResult"),
                "{error_message}"
            );
        }
        other => panic!("expected the function to give up before its timeout, got {other:?}"),
    }
    assert!(
        h.logs()
            .contains("job result could not be reported before the Lambda deadline"),
        "{}",
        h.logs()
    );
    assert!(
        h.aws.calls.count("codepipeline", "PutJobSuccessResult") >= 2,
        "attempts are retried within the margin"
    );
}

#[tokio::test]
async fn a_codepipeline_that_always_answers_500_gets_a_few_spaced_attempts_then_job_result_not_reported(
) {
    let h = harness(Duration::from_secs(20), &[]).await;
    h.aws
        .faults
        .add(Fault::new("codepipeline", "*", "InternalFailure", 500));
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    assert!(run.results().is_empty(), "nothing was recorded");
    match &run.invocations[0].outcome {
        Outcome::Error { error_type, .. } => assert_eq!(error_type, "JobResultNotReported"),
        other => panic!("a result that never landed must not look like success: {other:?}"),
    }
    let attempts: Vec<f64> = h
        .aws
        .calls
        .of("codepipeline", "PutJobSuccessResult")
        .iter()
        .map(|c| c.at_ms)
        .collect();
    assert_eq!(
        attempts.len(),
        pipeline_ext::job::REPORT_ATTEMPTS as usize,
        "the documented number of attempts, no more, no SDK retries inside them: {attempts:?}"
    );
    let gaps: Vec<f64> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // Backoff: 250 ms × 3^n, between half and all of it.
    for (n, gap) in gaps.iter().enumerate() {
        let full = 250.0 * 3f64.powi(n as i32);
        assert!(
            *gap >= full / 2.0 - 5.0,
            "attempt {} came {gap:.0} ms after the one before; backoff wants ≥ {:.0}: {gaps:?}",
            n + 2,
            full / 2.0
        );
    }
    assert_eq!(
        h.aws.calls.count("codepipeline", "PutJobFailureResult"),
        0,
        "a success that could not be sent is not turned into a failure report"
    );
}

#[tokio::test]
async fn an_already_completed_code_on_a_500_is_not_taken_as_a_result_that_landed() {
    let h = harness(Duration::from_secs(20), &[]).await;
    h.aws
        .faults
        .add(Fault::new("codepipeline", "*", "JobNotFoundException", 500));
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    match &run.invocations[0].outcome {
        Outcome::Error { error_type, .. } => assert_eq!(error_type, "JobResultNotReported"),
        other => panic!("nothing was recorded, so the invocation must say so: {other:?}"),
    }
    assert_eq!(
        h.aws.calls.count("codepipeline", "PutJobSuccessResult"),
        pipeline_ext::job::REPORT_ATTEMPTS as usize,
        "a 5xx is tried again whatever code it carries"
    );
}

#[tokio::test]
async fn a_refused_success_report_is_followed_by_a_failure_report_that_says_why() {
    let h = harness(Duration::from_secs(20), &[]).await;
    h.aws.faults.add(
        Fault::new(
            "codepipeline",
            "PutJobSuccessResult",
            "ValidationException",
            400,
        )
        .times(1),
    );
    let run = run(&h, job_event(json!({"succeed": {}}))).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("CodePipeline refused the success report")
            && message.contains("ValidationException"),
        "{message}"
    );
    assert_eq!(
        h.aws.calls.count("codepipeline", "PutJobSuccessResult"),
        1,
        "a refusal is not sent again"
    );
}

#[tokio::test]
async fn an_event_that_is_not_a_job_gets_a_stable_error_type() {
    let h = harness(Duration::from_secs(10), &[]).await;
    let invocation = h.host.invoke(&json!({"detail-type": "not a job"})).await;
    match &invocation.outcome {
        Outcome::Error { error_type, .. } => assert_eq!(error_type, "NotACodePipelineJob"),
        other => panic!("expected an invocation error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_job_stopped_at_its_deadline_says_what_it_was_doing_and_how_long_it_had() {
    // 7 s timeout, 5 s kept back: the job has about 2 s.
    let h = harness(Duration::from_secs(7), &[]).await;
    let run = run(&h, job_event(json!({"sleep": {"millis": 30000}}))).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("while sleeping 30000 ms"), "{message}");
    assert!(message.contains("less 5 s kept to report"), "{message}");
    let had: f64 = message
        .split("ran out of time after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|seconds| seconds.parse().ok())
        .expect("how long the job had");
    assert!(had > 0.0, "{message}");
}
