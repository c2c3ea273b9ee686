//! AWS SDK configuration shared by every function.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Loads region, credentials and endpoint overrides (`AWS_ENDPOINT_URL_<SERVICE>`) from the
/// environment, with retries on throttling and 5xx answers (exponential backoff with jitter),
/// over [`crate::https::sdk_http_client`].
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(crate::https::sdk_http_client())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .load()
        .await
}

/// Error codes that mean "these credentials may not do this", across the AWS services we call.
/// Expired job credentials belong here: the job's `artifactCredentials` ran out, which the
/// pipeline's user fixes like a permission (a longer-lived role session), not by retrying.
const PERMISSION_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "Forbidden",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "TokenRefreshRequired",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "KMS.AccessDeniedException",
    "KMS.DisabledException",
];

/// Error codes that mean "too many requests, later".
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "SlowDown",
    "RequestThrottled",
];

/// One failed AWS call, described the same way by every function: the service, the operation,
/// the resource it was about, the service's error code and HTTP status when it answered, and
/// its message (or the transport error when it did not).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdkFailure {
    /// `S3`, `CodePipeline`, `CloudWatch`…
    pub service: &'static str,
    /// `GetObject`, `PutJobSuccessResult`…
    pub operation: &'static str,
    /// What the call was about (`s3://bucket/key`, a secret id, an alarm name), when known.
    pub resource: Option<String>,
    /// The service's error code; `None` when it did not answer (connection, timeout).
    pub code: Option<String>,
    /// The HTTP status of the answer, when there was one.
    pub status: Option<u16>,
    /// The service's message, or the transport error, on one line.
    pub message: String,
}

impl SdkFailure {
    /// Describes `err` from `service`'s `operation`. A HEAD answer has no body and so no code:
    /// the status stands in for it (403 → `AccessDenied`, 404 → `NotFound`).
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let status = err.raw_response().map(|r| r.status().as_u16());
        let code = err.code().map(str::to_owned).or_else(|| match status {
            Some(403) => Some("AccessDenied".to_string()),
            Some(404) => Some("NotFound".to_string()),
            _ => None,
        });
        let message = match err.message() {
            Some(message) => message.to_string(),
            None if code.is_some() => String::new(),
            None => {
                one_line(&aws_smithy_types::error::display::DisplayErrorContext(err).to_string())
            }
        };
        Self {
            service,
            operation,
            resource: None,
            code,
            status,
            message,
        }
    }

    /// A call that got no answer in time.
    pub fn timed_out(service: &'static str, operation: &'static str, after: Duration) -> Self {
        Self {
            service,
            operation,
            resource: None,
            code: None,
            status: None,
            message: format!("no answer within {} ms", after.as_millis()),
        }
    }

    /// Names the resource the call was about.
    pub fn on(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// The credentials may not do this (denied, unknown, or expired).
    pub fn is_permission(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| PERMISSION_CODES.contains(&code))
    }

    /// The service asked us to slow down.
    pub fn is_throttling(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| THROTTLING_CODES.contains(&code))
            || self.status == Some(429)
    }

    /// Worth another attempt: no answer, a 5xx, or throttling.
    pub fn is_transient(&self) -> bool {
        self.code.is_none() || self.status.is_some_and(|s| s >= 500) || self.is_throttling()
    }

    /// The service answered and refused the request as it was (a 4xx other than throttling):
    /// sending it again changes nothing.
    pub fn is_refusal(&self) -> bool {
        !self.is_transient()
    }

    /// The error code, or `""`.
    pub fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("")
    }
}

impl std::fmt::Display for SdkFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.service, self.operation)?;
        if let Some(resource) = &self.resource {
            write!(f, " on {resource}")?;
        }
        match (&self.code, self.status) {
            (Some(code), Some(status)) => write!(f, " failed: {code} (HTTP {status})")?,
            (Some(code), None) => write!(f, " failed: {code}")?,
            (None, _) => write!(f, " failed")?,
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for SdkFailure {}

impl From<SdkFailure> for crate::job::JobError {
    fn from(failure: SdkFailure) -> Self {
        if failure.is_permission() {
            crate::job::JobError::permission(failure.to_string())
        } else {
            crate::job::JobError::failed(failure.to_string())
        }
    }
}

/// Folds a multi-line error chain onto one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
