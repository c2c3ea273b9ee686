//! Fixtures for the tests and benchmarks of the CodePipeline extensions, one per kind of test
//! (as ripgrep's `tests/util.rs` is for its suite). Never shipped: it panics with the fix
//! instead of returning errors, because a fixture that cannot start is a broken test machine.
//!
//! - [`LocalFunction`]: one function binary behind the Runtime API host, with its own local
//!   AWS endpoints; [`JobEventBuilder`] builds the jobs it runs and [`JobRunAssertions`] reads
//!   what they reported.
//! - [`SlackFunctions`]: the Slack functions' world: local AWS holding the Slack secret, a
//!   recorded Slack, the executions table, and the environment the functions need.
//! - [`MotoServer`]: `moto_server`, the independent implementation of the AWS APIs.
//! - [`bench_table`]: the result table every benchmark driver prints.
//! - [`block_kit`]: Block Kit validity of a Slack message, by Slack's own `slack_sdk`.
//! - [`zip_records`]: where a zip's headers are, for crafting hostile archives.
//! - [`noise()`]: incompressible bytes.

#![warn(missing_docs)]

pub mod bench_table;
pub mod block_kit;
mod function;
mod job_event;
mod job_run;
mod moto;
mod noise;
mod slack_functions;
pub mod zip_records;

pub use function::{
    s3_client, workspace_binary, LocalFunction, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY,
};
pub use job_event::JobEventBuilder;
pub use job_run::JobRunAssertions;
pub use moto::MotoServer;
pub use noise::noise;
pub use pipeline_local::job_invocation::new_job_id;
pub use slack_functions::SlackFunctions;
