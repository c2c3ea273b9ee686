//! `pipeline-ext`: what the CodePipeline extension functions share.
//!
//! - [`job`]: the invoke-action contract: event model, typed `UserParameters`, continuation
//!   state, and [`job::JobRunner`], which reports exactly one result per invocation.
//! - [`event_runner`]: the same for the functions an event triggers (SNS, EventBridge, a
//!   Function URL): deadline, panics, stable `errorType`s, events that can never succeed skipped.
//! - `executions_table` (feature `executions-table`): the DynamoDB table the notifiers and
//!   the responder share: typed keys, claims, leases, expiry.
//! - [`artifacts`]: zip artifacts in S3, read and written with the job's credentials, streaming,
//!   with limits for untrusted input.
//! - [`secrets`]: Secrets Manager JSON secrets with a warm-invocation cache.
//! - [`slack`]: the Slack Web API client, request signatures, approval button values.
//! - [`telemetry`]: logging setup that never prints events or credentials.
//! - [`sdk`]: AWS SDK configuration from the environment.
//! - [`https`]: the one TLS stack (rustls on ring) under the AWS SDKs and reqwest.
//! - [`pipeline_events`]: CodePipeline's EventBridge state-change events, one serde model.
//! - [`pipeline_state`]: the execution an approval belongs to, from the pipeline's state.
//! - [`source_revision`]: commit messages and compare links of source revisions.
//! - [`text`]: text cut to AWS length limits (UTF-16 code units, whole graphemes).

#![warn(missing_docs)]

pub mod artifacts;
pub mod event_runner;
#[cfg(feature = "executions-table")]
pub mod executions_table;
pub mod glob;
pub mod https;
pub mod job;
pub mod pipeline_events;
pub mod pipeline_state;
pub mod sdk;
pub mod secrets;
pub mod slack;
pub mod source_revision;
pub mod target_account;
pub mod telemetry;
pub mod text;
