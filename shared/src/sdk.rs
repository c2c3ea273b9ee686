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
