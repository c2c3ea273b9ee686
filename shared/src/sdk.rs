//! AWS SDK configuration shared by every function.

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Loads region, credentials and endpoint overrides (`AWS_ENDPOINT_URL_<SERVICE>`) from the
/// environment, with retries on throttling and 5xx answers (exponential backoff with jitter).
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(5)
                .with_initial_backoff(Duration::from_millis(100)),
        )
        .load()
        .await
}

/// `<Service> <Operation>: <Code>: <message>` for an SDK error, or the whole error chain when the
/// service answered no code (a connection or timeout error).
pub fn describe_error<E, R>(
    service: &str,
    operation: &str,
    err: &aws_sdk_s3::error::SdkError<E, R>,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_s3::error::ProvideErrorMetadata;
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{service} {operation}: {code}: {message}"),
        (Some(code), None) => format!("{service} {operation}: {code}"),
        _ => format!(
            "{service} {operation}: {}",
            aws_smithy_types::error::display::DisplayErrorContext(err)
        ),
    }
}
