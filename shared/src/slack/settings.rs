//! Where the two Slack notifiers post, from the function's environment (README,
//! "Configuration reference"): the same variables, read and checked one way.

use super::SlackClient;

/// A setting that is missing or unusable: the function cannot start.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A required environment variable is unset or blank.
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    /// An environment variable holds something the function cannot use.
    #[error("environment variable {name}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// Slack settings of approval-notifier and pipeline-notifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlackSettings {
    /// `SLACK_SECRET_ARN`: the secret holding the bot token.
    pub secret_arn: String,
    /// `SLACK_CHANNEL`: the channel id messages go to.
    pub channel: String,
    /// `SLACK_API_URL`, else Slack's.
    pub api_url: String,
    /// `FALLBACK_TOPIC_ARN`: where a message Slack refused is copied, when set.
    pub fallback_topic_arn: Option<String>,
}

impl SlackSettings {
    /// Reads the settings from the environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Ok(Self {
            secret_arn: required("SLACK_SECRET_ARN")?,
            channel: required("SLACK_CHANNEL")?,
            api_url: SlackClient::api_url_from_env(),
            fallback_topic_arn: optional("FALLBACK_TOPIC_ARN"),
        })
    }
}

/// A variable that must be set to something other than blanks.
pub fn required(name: &'static str) -> Result<String, SettingsError> {
    optional(name).ok_or(SettingsError::Missing(name))
}

/// A variable that may be unset; blank counts as unset.
pub fn optional(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_variable_counts_as_unset_and_is_named() {
        // Names no other test sets, so the process-wide environment is not shared.
        std::env::set_var("PIPELINE_EXT_TEST_BLANK", "  ");
        assert_eq!(optional("PIPELINE_EXT_TEST_BLANK"), None);
        let err = required("PIPELINE_EXT_TEST_UNSET").unwrap_err();
        assert_eq!(
            err.to_string(),
            "environment variable PIPELINE_EXT_TEST_UNSET is not set"
        );
        std::env::set_var("PIPELINE_EXT_TEST_SET", "C123");
        assert_eq!(required("PIPELINE_EXT_TEST_SET").unwrap(), "C123");
    }
}
