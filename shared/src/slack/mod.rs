//! Slack: the Web API client, Block Kit text helpers, request signature verification and the
//! notifiers' settings, shared by the approval and notification functions.

pub mod approval;
mod client;
pub mod fallback;
pub mod mrkdwn;
mod settings;
pub mod signature;

pub use client::{SlackClient, SlackError, DEFAULT_API_URL};
pub use settings::{optional, required, SettingsError, SlackSettings};

use serde::Deserialize;

/// The Slack secret in Secrets Manager (`SLACK_SECRET_ARN`). `Debug` shows neither value.
#[derive(Clone, Deserialize)]
pub struct SlackSecret {
    /// `bot_token` (`xoxb-…`).
    pub bot_token: String,
    /// `signing_secret` of the Slack app.
    #[serde(default)]
    pub signing_secret: String,
}

impl std::fmt::Debug for SlackSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlackSecret { bot_token: <redacted>, signing_secret: <redacted> }")
    }
}
