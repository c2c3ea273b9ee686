//! The local console: the pipeline as the AWS console draws it (stages as columns, actions
//! with their states, retries, conditions, rollbacks), the selected action's details, the
//! timeline, and the recorded Slack channel as Slack draws it, where Approve and Reject really
//! work. Served by `pipeline-local run --console` and `pipeline-local console`.

pub mod block_kit;
pub mod model;
pub mod mrkdwn;
mod server;

pub use model::ConsoleRecord;
pub use server::{Console, SlackAction, SlackRequest};
