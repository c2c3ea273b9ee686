//! The CodePipeline invoke-action contract: event model, outcomes, reporting and the runner.

mod continuation;
mod event;
mod outcome;
mod params;
mod report;
mod runner;

pub use event::{
    job_id_of, ActionConfiguration, Artifact, ArtifactCredentials, ArtifactLocation, Configuration,
    EncryptionKey, JobData, JobEvent, JobPayload, S3Location,
};
pub use outcome::{FailureKind, JobError, JobOutcome, JobSuccess};
pub use params::parse_user_parameters;
pub use report::{
    truncate, validate_output_variables, Delivery, JobReporter, ReportError,
    MAX_CONTINUATION_TOKEN_CHARS, MAX_FAILURE_MESSAGE_CHARS, MAX_OUTPUT_VARIABLES_BYTES,
    MAX_SUMMARY_CHARS,
};
pub use runner::{Activity, Job, JobRunner, DEFAULT_SAFETY_MARGIN, REPORT_ATTEMPTS};

/// True when `state` fits in a continuation token (CodePipeline's 2,048 characters), so a
/// handler can shorten what it carries before it returns [`JobOutcome::Continue`].
pub fn fits_in_token<S: serde::Serialize>(state: &S) -> bool {
    continuation::encode(state).is_ok()
}
