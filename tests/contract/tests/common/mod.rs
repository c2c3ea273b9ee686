//! A function host and local AWS endpoints for one test, and helpers to build job events.
#![allow(dead_code)]

use pipeline_local::endpoints::LocalAws;
use pipeline_local::job_invocation::{run_job, JobRun};
use pipeline_local::runtime_api::{FunctionHost, FunctionSpec};
use serde_json::{json, Value};
use std::time::Duration;

pub const BUCKET: &str = "codepipeline-artifacts";
pub const TEST_KEY: &str = "AKIATESTCLIENT";
pub const TEST_SECRET: &str = "test-client-secret";

pub struct Harness {
    pub aws: LocalAws,
    pub host: FunctionHost,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with(Duration::from_secs(30), &[]).await
    }

    pub async fn with(timeout: Duration, env: &[(&str, &str)]) -> Self {
        let aws = LocalAws::start(None).await.expect("local endpoints start");
        aws.s3.create_bucket(BUCKET).expect("bucket");
        aws.register_credentials(TEST_KEY, TEST_SECRET);
        let mut spec = FunctionSpec::new("fixture-action", env!("CARGO_BIN_EXE_fixture-action"));
        spec.env = aws.function_env();
        spec.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        spec.timeout = timeout;
        let host = FunctionHost::start(spec).await.expect("runtime api starts");
        Self { aws, host }
    }

    pub async fn run(&self, event: Value) -> JobRun {
        run_job(&self.aws, &self.host, event, 50)
            .await
            .expect("job event")
    }

    /// An S3 client signed with credentials the local S3 accepts, for seeding and checking.
    pub async fn s3_client(&self) -> aws_sdk_s3::Client {
        let credentials =
            aws_credential_types::Credentials::new(TEST_KEY, TEST_SECRET, None, None, "test");
        let config = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(self.aws.s3_url())
            .credentials_provider(credentials)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn logs(&self) -> String {
        self.host.logs().join("\n")
    }
}

/// A job event with one input and one output artifact and the given parameters.
pub fn job_event(params: Value) -> Value {
    let id = uuid();
    json!({
        "CodePipeline.job": {
            "id": id,
            "accountId": "111111111111",
            "data": {
                "actionConfiguration": {"configuration": {"FunctionName": "fixture-action", "UserParameters": params.to_string()}},
                "inputArtifacts": [{"name": "Source", "revision": "abc", "location": {"type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": format!("in/{id}.zip")}}}],
                "outputArtifacts": [{"name": "Copied", "location": {"type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": format!("out/{id}.zip")}}}]
            }
        }
    })
}

pub fn with_kms(mut event: Value, key_id: &str) -> Value {
    event["CodePipeline.job"]["data"]["encryptionKey"] = json!({"id": key_id, "type": "KMS"});
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

pub fn uuid() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:08x}-0000-4000-8000-{:012x}", (t & 0xffff_ffff) as u32, n)
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
