//! The bake cannot be skipped or stalled by a continuation token: a token is data that came
//! back from outside, checked before the bake resumes from it, and its numbers never overflow.

use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Runs a 300 s bake (one alarm-free check every 30 s) resumed from `state`.
async fn resume(state: Value) -> (String, String, usize) {
    let function = LocalFunction::start(
        "deploy-gate",
        env!("CARGO_BIN_EXE_deploy-gate"),
        Duration::from_secs(20),
        &[],
    )
    .await
    .expect("function host starts");
    // A check on a closed port would fail the round: the token must be refused before any round.
    let params = json!({"http": [{"url": "http://127.0.0.1:9/health", "timeout_ms": 200}],
        "bake_seconds": 300, "interval_seconds": 30});
    let mut event = JobEventBuilder::new("deploy-gate", &params).build();
    event["CodePipeline.job"]["data"]["continuationToken"] =
        json!(json!({"v": 1, "state": state}).to_string());
    let run = function.run(event).await.expect("a job event");
    let (kind, message) = run.expect_failure();
    (kind, message, run.invocations.len())
}

#[tokio::test]
async fn a_token_whose_bake_started_long_ago_cannot_skip_the_bake() {
    let (kind, message, invocations) = resume(json!({"started_ms": 0, "rounds": 1})).await;
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("continuation token is inconsistent"),
        "{message}"
    );
    assert!(message.contains("only 1 rounds passed"), "{message}");
    assert_eq!(invocations, 1);
}

#[tokio::test]
async fn a_token_whose_bake_starts_in_the_future_cannot_stall_the_gate() {
    let future = now_ms() + 3_600_000;
    let (_, message, _) = resume(json!({"started_ms": future, "rounds": 0})).await;
    assert!(message.contains("in the future"), "{message}");
}

#[tokio::test]
async fn overflowing_token_numbers_are_refused_without_a_panic() {
    for state in [
        json!({"started_ms": u64::MAX, "rounds": u32::MAX}),
        json!({"started_ms": now_ms(), "rounds": u32::MAX}),
    ] {
        let (kind, message, _) = resume(state.clone()).await;
        assert_eq!(kind, "JobFailed", "{state}");
        assert!(
            message.contains("continuation token is inconsistent"),
            "{state}: {message}"
        );
        assert!(!message.contains("panicked"), "{message}");
    }
}
