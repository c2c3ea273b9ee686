//! deploy-gate: the invoke action that stands between a deployment and the next stage.
//!
//! Each round requests every HTTP check and reads every named CloudWatch alarm; any failure
//! fails the job. Rounds repeat every `interval_seconds` until `bake_seconds` have passed,
//! across invocations: after each round the function returns a continuation token carrying
//! the bake's start, the rounds done and the last results, so no single run lasts longer than
//! one interval.
//!
//! Where things are: [`params`] (the checks and their validation), `round` (one round: the
//! HTTP checks in `http_check`, then the alarms in `alarms`), `bake` (the bake period across
//! invocations and its continuation state); this file decides pass, fail or continue.

#![warn(missing_docs)]

mod alarms;
mod bake;
mod http_check;
pub mod params;
mod redact;
mod round;

pub use bake::BakeState;
pub use params::Params;

use pipeline_ext::job::{Job, JobError, JobOutcome};

/// The clients a gate uses: CloudWatch with the function's role (or, with `role_arn`, the
/// target account's role from `sessions`), and one HTTP client that verifies TLS
/// certificates against the platform's trust store.
#[derive(Clone)]
pub struct Clients {
    /// Reads the alarms in this account.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// Assumed roles for alarms in another account.
    pub sessions: pipeline_ext::target_account::RoleSessions,
    /// Makes the HTTP checks.
    pub http: reqwest::Client,
}

impl Clients {
    /// The clients of one container; only the HTTP client can fail to build.
    pub fn new(config: &aws_config::SdkConfig) -> Result<Self, reqwest::Error> {
        let http = pipeline_ext::https::client_builder()
            .user_agent(concat!(
                "codepipeline-deploy-gate/",
                env!("CARGO_PKG_VERSION")
            ))
            // Redirects are followed by the check itself, by its `follow_redirects`.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            sessions: pipeline_ext::target_account::RoleSessions::new(config),
            http,
        })
    }
}

/// Runs one round of the gate, or the next one of its bake.
pub async fn handle(
    job: Job<Params, BakeState>,
    clients: Clients,
) -> Result<JobOutcome<BakeState>, JobError> {
    job.params.validate()?;
    bake::step(&job, &clients).await
}
