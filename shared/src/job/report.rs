//! Sends the job's result to CodePipeline, within the API's limits.

use super::outcome::{JobError, JobSuccess};
use crate::sdk::SdkFailure;
use aws_sdk_codepipeline::error::SdkError;
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};
use std::collections::BTreeMap;

/// `executionDetails.summary` and `continuationToken` limit.
pub const MAX_SUMMARY_CHARS: usize = 2048;
/// `failureDetails.message` limit.
pub const MAX_FAILURE_MESSAGE_CHARS: usize = 5000;
/// `continuationToken` limit.
pub const MAX_CONTINUATION_TOKEN_CHARS: usize = 2048;
/// All output variable names and values together.
pub const MAX_OUTPUT_VARIABLES_BYTES: usize = 122_880;

/// What CodePipeline said to our report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// CodePipeline recorded the result.
    Accepted,
    /// `InvalidJobStateException` / `JobNotFoundException`: the job was already completed by an
    /// earlier delivery of the same event.
    AlreadyCompleted,
}

/// A report CodePipeline did not accept, or did not answer.
#[derive(Debug, thiserror::Error)]
#[error("could not report the job result to CodePipeline: {failure}")]
pub struct ReportError {
    /// The failed call.
    pub failure: SdkFailure,
}

impl ReportError {
    /// CodePipeline answered and refused this report as it was: sending it again changes nothing.
    pub fn is_refusal(&self) -> bool {
        self.failure.is_refusal()
    }
}

/// Reports results for jobs through the real CodePipeline client. Each call is one attempt:
/// the runner decides whether and when to try again (`JobRunner`'s bounded backoff).
#[derive(Clone, Debug)]
pub struct JobReporter {
    client: aws_sdk_codepipeline::Client,
}

impl JobReporter {
    /// A reporter using that client.
    pub fn new(client: aws_sdk_codepipeline::Client) -> Self {
        Self { client }
    }

    /// Reports success with a summary, external execution id and output variables.
    pub async fn success(
        &self,
        job_id: &str,
        success: &JobSuccess,
        execution_id: &str,
    ) -> Result<Delivery, ReportError> {
        let mut request = self
            .client
            .put_job_success_result()
            .job_id(job_id)
            .execution_details(details(&success.summary, execution_id, None));
        if !success.output_variables.is_empty() {
            request = request
                .set_output_variables(Some(success.output_variables.clone().into_iter().collect()));
        }
        classify("PutJobSuccessResult", request.send().await)
    }

    /// Reports success with a continuation token.
    pub async fn continuation(
        &self,
        job_id: &str,
        token: &str,
        summary: &str,
        percent_complete: Option<u8>,
        execution_id: &str,
    ) -> Result<Delivery, ReportError> {
        let request = self
            .client
            .put_job_success_result()
            .job_id(job_id)
            .continuation_token(token)
            .execution_details(details(summary, execution_id, percent_complete));
        classify("PutJobSuccessResult", request.send().await)
    }

    /// Reports a failure.
    pub async fn failure(
        &self,
        job_id: &str,
        error: &JobError,
        execution_id: &str,
    ) -> Result<Delivery, ReportError> {
        let failure_type = match error.kind {
            super::FailureKind::JobFailed => FailureType::JobFailed,
            super::FailureKind::ConfigurationError => FailureType::ConfigurationError,
            super::FailureKind::PermissionError => FailureType::PermissionError,
        };
        let details = FailureDetails::builder()
            .r#type(failure_type)
            .message(truncate(&error.message, MAX_FAILURE_MESSAGE_CHARS))
            .external_execution_id(execution_id)
            .build()
            .map_err(|e| ReportError {
                failure: SdkFailure {
                    service: "CodePipeline",
                    operation: "PutJobFailureResult",
                    resource: Some(job_id.to_string()),
                    code: Some("InvalidRequest".into()),
                    status: None,
                    message: e.to_string(),
                },
            })?;
        let request = self
            .client
            .put_job_failure_result()
            .job_id(job_id)
            .failure_details(details);
        classify("PutJobFailureResult", request.send().await)
    }
}

fn details(summary: &str, execution_id: &str, percent_complete: Option<u8>) -> ExecutionDetails {
    ExecutionDetails::builder()
        .summary(truncate(summary, MAX_SUMMARY_CHARS))
        .external_execution_id(execution_id)
        .set_percent_complete(percent_complete.map(|p| i32::from(p.min(100))))
        .build()
}

fn classify<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, aws_sdk_codepipeline::config::http::HttpResponse>>,
) -> Result<Delivery, ReportError>
where
    E: aws_sdk_codepipeline::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(_) => Ok(Delivery::Accepted),
        Err(err) => {
            let failure = SdkFailure::from_sdk("CodePipeline", operation, &err);
            // CodePipeline says "already completed" with a 400. The same code on a 5xx (a
            // proxy or a broken endpoint) proves nothing was recorded: it is tried again, and
            // never taken as a result that landed.
            let refused = failure.status.is_some_and(|s| (400..500).contains(&s));
            match failure.code() {
                "InvalidJobStateException" | "JobNotFoundException" if refused => {
                    Ok(Delivery::AlreadyCompleted)
                }
                _ => Err(ReportError { failure }),
            }
        }
    }
}

/// Cuts `text` to at most `max` UTF-16 code units (CodePipeline's measure), on a grapheme
/// boundary, marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    crate::text::truncate_utf16(text, max, " …[truncated]").into_owned()
}

/// Checks output variables against CodePipeline's rules before sending, so a bad name fails
/// with our message instead of an API validation error.
pub fn validate_output_variables(variables: &BTreeMap<String, String>) -> Result<(), JobError> {
    let mut total = 0usize;
    for (key, value) in variables {
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_'));
        if !valid {
            return Err(JobError::failed(format!(
                "output variable name `{key}` is invalid: names use only A-Z, a-z, 0-9, @, - and _"
            )));
        }
        total += key.len() + value.len();
    }
    if total > MAX_OUTPUT_VARIABLES_BYTES {
        return Err(JobError::failed(format!(
            "output variables total {total} bytes, over CodePipeline's limit of {MAX_OUTPUT_VARIABLES_BYTES}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_emoji_is_cut_to_codepipelines_utf16_limit() {
        let long = "🔥".repeat(MAX_FAILURE_MESSAGE_CHARS);
        let cut = truncate(&long, MAX_FAILURE_MESSAGE_CHARS);
        assert!(crate::text::utf16_len(&cut) <= MAX_FAILURE_MESSAGE_CHARS);
        assert!(cut.ends_with("[truncated]"));
    }

    #[test]
    fn truncates_on_char_boundaries_and_marks_the_cut() {
        let long = "é".repeat(6000);
        let cut = truncate(&long, MAX_FAILURE_MESSAGE_CHARS);
        assert_eq!(cut.chars().count(), MAX_FAILURE_MESSAGE_CHARS);
        assert!(cut.ends_with("[truncated]"));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn output_variable_names_are_checked() {
        let mut vars = BTreeMap::new();
        vars.insert("Good-Name_1@x".to_string(), "v".to_string());
        assert!(validate_output_variables(&vars).is_ok());
        vars.insert("bad name".to_string(), "v".to_string());
        assert!(validate_output_variables(&vars)
            .unwrap_err()
            .message
            .contains("`bad name`"));
    }

    #[test]
    fn output_variables_total_size_is_limited() {
        let mut vars = BTreeMap::new();
        vars.insert("Big".to_string(), "x".repeat(MAX_OUTPUT_VARIABLES_BYTES));
        assert!(validate_output_variables(&vars)
            .unwrap_err()
            .message
            .contains("122880"));
    }
}
