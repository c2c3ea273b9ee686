//! The local console: the pipeline as the AWS console draws it and the recorded Slack channel
//! as Slack draws it, in a browser, served by `pipeline-local` itself.

pub mod block_kit;
pub mod mrkdwn;
