//! The fixture action behind the Runtime API host, and helpers to build its job events.
#![allow(dead_code)]

use pipeline_local::harness::{JobEventBuilder, LocalFunction};
use pipeline_local::job_invocation::JobRun;
use serde_json::Value;
use std::time::Duration;

#[allow(unused_imports)]
pub use pipeline_local::harness::CLIENT_ACCESS_KEY as TEST_KEY;
pub const TEST_SECRET: &str = "test-client-secret";
pub const BUCKET: &str = "codepipeline-artifacts";

pub async fn harness(timeout: Duration, env: &[(&str, &str)]) -> LocalFunction {
    let f = LocalFunction::start(
        "fixture-action",
        env!("CARGO_BIN_EXE_fixture-action"),
        timeout,
        env,
    )
    .await
    .expect("function host starts");
    f.aws.s3.create_bucket(BUCKET).expect("bucket");
    f
}

/// A job event with input `Source` and output `Copied` and the given parameters.
pub fn job_event(params: Value) -> Value {
    let id = pipeline_local::harness::new_job_id();
    JobEventBuilder::new("fixture-action", &params)
        .input("Source", BUCKET, &format!("in/{id}.zip"))
        .output("Copied", BUCKET, &format!("out/{id}.zip"))
        .build()
}

pub fn with_kms(mut event: Value, key_id: &str) -> Value {
    event["CodePipeline.job"]["data"]["encryptionKey"] =
        serde_json::json!({"id": key_id, "type": "KMS"});
    event
}

pub fn input_key(event: &Value) -> String {
    event["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"]["objectKey"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn output_key(event: &Value) -> String {
    event["CodePipeline.job"]["data"]["outputArtifacts"][0]["location"]["s3Location"]["objectKey"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The single result the job reported.
pub fn only_result(run: &JobRun) -> Value {
    let record = run.record.as_ref().expect("job record");
    assert_eq!(
        record.results.len(),
        1,
        "expected exactly one result, got {:?}",
        record.results
    );
    record.results[0].clone()
}

pub fn failure(run: &JobRun) -> (String, String) {
    let result = only_result(run);
    let details = result
        .get("failureDetails")
        .unwrap_or_else(|| panic!("expected a failure, got {result}"));
    (
        details["type"].as_str().unwrap().to_string(),
        details["message"].as_str().unwrap().to_string(),
    )
}

pub async fn run(f: &LocalFunction, event: Value) -> JobRun {
    f.run(event).await.expect("a job event")
}
