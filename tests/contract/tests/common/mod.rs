//! The fixture action behind the Runtime API host, and helpers to build its job events.
#![allow(dead_code)]

use pipeline_local::job_invocation::JobRun;
#[allow(unused_imports)]
pub use pipeline_testkit::zip_records::{central_headers, local_headers};
use pipeline_testkit::{JobEventBuilder, LocalFunction};
use serde_json::{json, Value};
use std::time::Duration;

#[allow(unused_imports)]
pub use pipeline_testkit::{
    JobRunAssertions, CLIENT_ACCESS_KEY as TEST_KEY, CLIENT_SECRET_KEY as TEST_SECRET,
};
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
    let id = pipeline_testkit::new_job_id();
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
    run.only_result().clone()
}

/// The failure of a job that reported exactly once.
pub fn failure(run: &JobRun) -> (String, String) {
    run.only_result();
    run.expect_failure()
}

pub async fn run(f: &LocalFunction, event: Value) -> JobRun {
    f.run(event).await.expect("a job event")
}

pub fn copy_event() -> serde_json::Value {
    job_event(json!({"copy": {"input": "Source", "output": "Copied"}}))
}

pub fn zip_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = entries
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect();
    pipeline_local::zips::zip_files(&files).unwrap()
}

/// Runs the copy job on `zip` and checks it failed with `expected` in the message, and that
/// nothing was written to S3.
pub async fn assert_refused(zip: Vec<u8>, expected: &str) {
    let h = harness(Duration::from_secs(30), &[]).await;
    let event = copy_event();
    h.aws.s3.put_file(BUCKET, &input_key(&event), &zip).unwrap();
    let run = run(&h, event.clone()).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains(expected),
        "expected `{expected}` in: {message}"
    );
    assert!(
        !h.aws.s3.exists(BUCKET, &output_key(&event)),
        "an output artifact was written"
    );
    for op in [
        "PutObject",
        "UploadPart",
        "CompleteMultipartUpload",
        "CreateMultipartUpload",
    ] {
        assert_eq!(h.aws.calls.count("s3", op), 0, "{op} was called");
    }
}

/// The AWS CLI (botocore: an independent client) aimed at `endpoint`, with the test's
/// credentials and nothing read from the machine's own AWS configuration.
pub fn aws_cli(endpoint: &str) -> std::process::Command {
    let cli = std::env::var("AWS_CLI").unwrap_or_else(|_| "aws".into());
    match std::process::Command::new(&cli).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => panic!("the AWS CLI (`{cli}`) is not installed: run the README's test command, which installs tests/requirements.txt"),
    }
    let mut command = std::process::Command::new(cli);
    command
        .arg("--endpoint-url")
        .arg(endpoint)
        .env("AWS_ACCESS_KEY_ID", TEST_KEY)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/nonexistent/pipeline-local-test")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/pipeline-local-test",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "");
    command
}
