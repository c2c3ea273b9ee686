//! One function binary behind the Runtime API host with fresh local endpoints.

use pipeline_local::endpoints::{LocalAws, REGION};
use pipeline_local::job_invocation::{run_job, JobEventError, JobRun};
use pipeline_local::runtime_api::{FunctionHost, FunctionSpec};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// The access key a test's own S3 client signs with (accepted by every [`LocalFunction`]).
pub const CLIENT_ACCESS_KEY: &str = "AKIATESTCLIENT";
/// The secret key paired with [`CLIENT_ACCESS_KEY`].
pub const CLIENT_SECRET_KEY: &str = "test-client-secret";

/// A function binary behind the Runtime API host, with its own local AWS endpoints.
pub struct LocalFunction {
    /// The function's local AWS endpoints.
    pub aws: LocalAws,
    /// The Runtime API host running the binary.
    pub host: FunctionHost,
}

impl LocalFunction {
    /// Starts `program` as function `name` with `timeout` and `env` on top of the endpoints'.
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

    /// Everything the function logged so far, one line each.
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
        .http_client(pipeline_ext::https::sdk_http_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
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
