//! Running one function against fresh local endpoints: what tests and benchmarks need.

use crate::endpoints::{LocalAws, REGION};
use crate::job_invocation::{run_job, JobEventError, JobRun};
use crate::runtime_api::{FunctionHost, FunctionSpec};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Credentials a test's own S3 client signs with.
pub const CLIENT_ACCESS_KEY: &str = "AKIATESTCLIENT";
const CLIENT_SECRET_KEY: &str = "test-client-secret";

/// A function binary behind the Runtime API host, with its own local AWS endpoints.
pub struct LocalFunction {
    pub aws: LocalAws,
    pub host: FunctionHost,
}

impl LocalFunction {
    pub async fn start(
        name: &str,
        program: impl AsRef<Path>,
        timeout: Duration,
        env: &[(&str, &str)],
    ) -> std::io::Result<Self> {
        let aws = LocalAws::start(None).await?;
        aws.register_credentials(CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY);
        let mut spec = FunctionSpec::new(name, program.as_ref());
        spec.env = aws.function_env();
        spec.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        spec.timeout = timeout;
        let host = FunctionHost::start(spec).await?;
        Ok(Self { aws, host })
    }

    /// Runs a job event to its final result, following continuations.
    pub async fn run(&self, event: Value) -> Result<JobRun, JobEventError> {
        run_job(&self.aws, &self.host, event, 100).await
    }

    /// An S3 client for the local endpoint, signed with credentials it accepts.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.aws.s3_url(), CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY)
    }

    pub fn logs(&self) -> String {
        self.host.logs().join("\n")
    }
}

/// An S3 client for any endpoint (the local one, or an independent one such as moto_server).
pub fn s3_client(endpoint: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let credentials = aws_credential_types::Credentials::new(
        access_key,
        secret_key,
        None,
        None,
        "pipeline-local",
    );
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Builds `CodePipeline.job` events.
#[derive(Clone, Debug)]
pub struct JobEventBuilder {
    event: Value,
}

impl JobEventBuilder {
    /// A job for `function` with a fresh job id and the given `UserParameters`.
    pub fn new(function: &str, user_parameters: &Value) -> Self {
        let event = json!({
            "CodePipeline.job": {
                "id": new_job_id(),
                "accountId": "111111111111",
                "data": {
                    "actionConfiguration": {"configuration": {"FunctionName": function, "UserParameters": user_parameters.to_string()}},
                    "inputArtifacts": [],
                    "outputArtifacts": []
                }
            }
        });
        Self { event }
    }

    pub fn job_id(&self) -> String {
        self.event["CodePipeline.job"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn artifact(list: &mut Value, name: &str, bucket: &str, key: &str) {
        if let Some(items) = list.as_array_mut() {
            items.push(json!({"name": name, "revision": "local", "location": {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}}));
        }
    }

    pub fn input(mut self, name: &str, bucket: &str, key: &str) -> Self {
        Self::artifact(
            &mut self.event["CodePipeline.job"]["data"]["inputArtifacts"],
            name,
            bucket,
            key,
        );
        self
    }

    pub fn output(mut self, name: &str, bucket: &str, key: &str) -> Self {
        Self::artifact(
            &mut self.event["CodePipeline.job"]["data"]["outputArtifacts"],
            name,
            bucket,
            key,
        );
        self
    }

    pub fn kms_key(mut self, key_id: &str) -> Self {
        self.event["CodePipeline.job"]["data"]["encryptionKey"] =
            json!({"id": key_id, "type": "KMS"});
        self
    }

    pub fn build(self) -> Value {
        self.event
    }
}

/// A job id unique within this process, shaped like CodePipeline's.
pub fn new_job_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{:04x}-4000-8000-{:012x}", &random[..8], n & 0xffff, n)
}

/// A workspace binary in the same target folder as the running test (`target/debug/NAME`),
/// for tests that drive two functions. `cargo test --workspace` builds every function.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/debug/deps/<test> → target/debug/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a target folder");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p {name}` (the README's test command builds every function)",
        path.display()
    );
    path
}
