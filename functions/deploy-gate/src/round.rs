//! One round of the gate: every HTTP check at once, then the alarms.

use crate::params::Params;
use crate::{alarms, http_check, Clients};
use pipeline_ext::job::JobError;
use std::fmt;
use tokio::time::Instant;

/// What one check saw in one round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    /// `GET <url>` or `alarm <name>`.
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

impl CheckResult {
    pub fn passed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: true,
            detail: detail.into(),
        }
    }
    pub fn failed(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            passed: false,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "passed" } else { "FAILED" };
        write!(f, "{} {mark}: {}", self.name, self.detail)
    }
}

/// Runs every check once. HTTP checks share `deadline`, so a hanging endpoint cannot hold
/// the invocation past it; alarm lookup errors (unknown alarm, no permission) are errors.
pub async fn run(
    params: &Params,
    clients: &Clients,
    cloudwatch: &aws_sdk_cloudwatch::Client,
    deadline: Instant,
) -> Result<Vec<CheckResult>, JobError> {
    let http = futures_util::future::join_all(
        params
            .http
            .iter()
            .map(|check| http_check::run(&clients.http, check, deadline)),
    );
    let alarm_results = async {
        if params.alarms.is_empty() {
            return Ok(Vec::new());
        }
        let lookup = alarms::check(cloudwatch, &params.alarms, params.insufficient_data);
        tokio::time::timeout_at(deadline, lookup)
            .await
            .unwrap_or_else(|_| {
                Err(JobError::failed(
                    "CloudWatch DescribeAlarms did not answer before the invocation's deadline",
                ))
            })
    };
    let (mut results, alarm_results) = tokio::join!(http, alarm_results);
    results.extend(alarm_results?);
    Ok(results)
}
