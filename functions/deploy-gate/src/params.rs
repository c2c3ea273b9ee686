//! deploy-gate `UserParameters` (README, "deploy-gate") and the checks made on them before anything runs.

use pipeline_ext::job::JobError;
use pipeline_ext::target_account::TargetRole;
use serde::Deserialize;
use std::collections::HashSet;
use std::time::Duration;

/// The longest bake CodePipeline can wait for: an invoke action times out after 12 hours.
const MAX_BAKE_SECONDS: u64 = 12 * 60 * 60;
/// One interval must fit in one Lambda run (15 minutes) with room for the checks.
const MAX_INTERVAL_SECONDS: u64 = 600;
const MAX_TIMEOUT_MS: u64 = 60_000;
const MAX_RETRIES: u32 = 5;

/// The `UserParameters` of deploy-gate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// HTTP smoke checks, all of which must pass.
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    /// CloudWatch alarm names (metric or composite).
    #[serde(default)]
    pub alarms: Vec<String>,
    /// How long every check must keep passing; 0 means one round.
    #[serde(default)]
    pub bake_seconds: u64,
    /// Seconds between rounds during the bake.
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    /// What an alarm in `INSUFFICIENT_DATA` means for the gate.
    #[serde(default)]
    pub insufficient_data: InsufficientData,
    /// The role the alarms are read as, in the account they are in (the deployment's).
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id that role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
}

/// One HTTP smoke check.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL to GET.
    pub url: String,
    /// The status the endpoint must answer with.
    #[serde(default = "default_status")]
    pub status: u16,
    /// A substring the body must contain.
    #[serde(default)]
    pub contains: Option<String>,
    /// Per attempt.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Further attempts, with backoff, before the check counts as failed.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Which redirects are followed.
    #[serde(default)]
    pub follow_redirects: FollowRedirects,
}

/// Which redirects a check follows. A health check that ends up on another host checks
/// something else than the deployment, so by default only the checked host's own redirects are.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FollowRedirects {
    /// Redirects to the same host (`http` → `https` included, never back down).
    #[default]
    SameHost,
    /// Any redirect.
    Any,
    /// None: a 3xx is the answer that is judged.
    None,
}

/// What an alarm with insufficient data counts as.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum InsufficientData {
    /// Not a breach.
    #[default]
    Ok,
    /// A breach: the gate fails.
    Fail,
}

fn default_interval() -> u64 {
    30
}
fn default_status() -> u16 {
    200
}
fn default_timeout_ms() -> u64 {
    5_000
}
fn default_retries() -> u32 {
    2
}

impl Params {
    /// The role the alarms are read as, when not the function's own.
    pub fn target_role(&self) -> Result<Option<TargetRole>, JobError> {
        TargetRole::from_params("", self.role_arn.as_deref(), self.external_id.as_deref())
    }
}

impl HttpCheck {
    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The longest one check can take: every attempt timing out, plus the backoff between them.
    pub fn worst_case(&self) -> Duration {
        let backoff: Duration = (0..self.retries).map(crate::http_check::backoff).sum();
        self.timeout() * (self.retries + 1) + backoff
    }
}

impl Params {
    /// The time between bake rounds.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_seconds)
    }

    /// How long the gate keeps checking after the first passing round.
    pub fn bake(&self) -> Duration {
        Duration::from_secs(self.bake_seconds)
    }

    /// Checks what serde cannot: values in range, URLs that parse, something to check.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.http.is_empty() && self.alarms.is_empty() {
            return Err(JobError::config(
                "nothing to check: give `http` checks, `alarms`, or both",
            ));
        }
        if !(1..=MAX_INTERVAL_SECONDS).contains(&self.interval_seconds) {
            return Err(JobError::config(format!(
                "`interval_seconds` is {}; expected 1 to {MAX_INTERVAL_SECONDS}",
                self.interval_seconds
            )));
        }
        if self.bake_seconds > MAX_BAKE_SECONDS {
            return Err(JobError::config(format!(
                "`bake_seconds` is {}; expected at most {MAX_BAKE_SECONDS} (CodePipeline's 12-hour action limit)",
                self.bake_seconds
            )));
        }
        for (index, check) in self.http.iter().enumerate() {
            check
                .validate()
                .map_err(|e| e.context(format!("http[{index}]")))?;
        }
        if self.target_role()?.is_some() && self.alarms.is_empty() {
            return Err(JobError::config(
                "`role_arn` is the role the alarms are read as, and there are no `alarms`",
            ));
        }
        let mut seen = HashSet::new();
        for (index, name) in self.alarms.iter().enumerate() {
            if name.trim().is_empty() || name.len() > 255 {
                return Err(JobError::config(format!(
                    "alarms[{index}]: `{name}` is not an alarm name (1 to 255 characters)"
                )));
            }
            if !seen.insert(name) {
                return Err(JobError::config(format!(
                    "alarms[{index}]: `{name}` is listed twice"
                )));
            }
        }
        Ok(())
    }
}

impl HttpCheck {
    fn validate(&self) -> Result<(), JobError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            JobError::config(format!(
                "`url` `{}` is not a URL: {e}",
                crate::redact::url(&self.url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(JobError::config(format!(
                "`url` `{}` must be an http:// or https:// URL with a host",
                crate::redact::url(&self.url)
            )));
        }
        if !(100..=599).contains(&self.status) {
            return Err(JobError::config(format!(
                "`status` is {}; expected an HTTP status from 100 to 599",
                self.status
            )));
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&self.timeout_ms) {
            return Err(JobError::config(format!(
                "`timeout_ms` is {}; expected 1 to {MAX_TIMEOUT_MS}",
                self.timeout_ms
            )));
        }
        if self.retries > MAX_RETRIES {
            return Err(JobError::config(format!(
                "`retries` is {}; expected at most {MAX_RETRIES}",
                self.retries
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeline_ext::job::FailureKind;

    fn parse(value: serde_json::Value) -> Params {
        serde_json::from_value(value).expect("parses")
    }

    #[test]
    fn defaults_follow_the_design() {
        let params = parse(serde_json::json!({"http": [{"url": "https://example.com/health"}]}));
        assert_eq!(params.interval_seconds, 30);
        assert_eq!(params.bake_seconds, 0);
        assert_eq!(params.insufficient_data, InsufficientData::Ok);
        assert_eq!(params.http[0].status, 200);
        assert!(params.validate().is_ok());
    }

    #[test]
    fn refuses_a_gate_with_nothing_to_check() {
        let err = parse(serde_json::json!({"bake_seconds": 60}))
            .validate()
            .unwrap_err();
        assert_eq!(err.kind, FailureKind::ConfigurationError);
        assert!(err.message.contains("nothing to check"), "{}", err.message);
    }

    #[test]
    fn refuses_urls_that_are_not_http() {
        for url in ["ftp://example.com/x", "not a url", "file:///etc/passwd"] {
            let err = parse(serde_json::json!({"http": [{"url": url}]}))
                .validate()
                .unwrap_err();
            assert!(err.message.starts_with("http[0]: `url`"), "{}", err.message);
        }
    }

    #[test]
    fn refuses_out_of_range_numbers_naming_the_key() {
        let cases = [
            (
                serde_json::json!({"alarms": ["A"], "interval_seconds": 0}),
                "interval_seconds",
            ),
            (
                serde_json::json!({"alarms": ["A"], "bake_seconds": 86_400}),
                "bake_seconds",
            ),
            (
                serde_json::json!({"http": [{"url": "http://h/", "status": 42}]}),
                "status",
            ),
            (
                serde_json::json!({"http": [{"url": "http://h/", "timeout_ms": 0}]}),
                "timeout_ms",
            ),
            (serde_json::json!({"alarms": ["A", "A"]}), "listed twice"),
        ];
        for (value, needle) in cases {
            let err = parse(value).validate().unwrap_err();
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
    }
}
