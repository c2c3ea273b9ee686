use lambda_runtime::{service_fn, LambdaEvent};
use pipeline_notifier::{Config, Notifier};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// Kept back from the Lambda deadline so the invocation ends with its own error, not a timeout.
const MARGIN: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_ext::telemetry::init();
    let config = Config::from_env()?;
    let sdk = pipeline_ext::sdk::load_config().await;
    let notifier = Arc::new(Notifier::new(config, &sdk)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let notifier = notifier.clone();
        async move {
            let now_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let left = Duration::from_millis(event.context.deadline.saturating_sub(now_ms));
            let deadline = Instant::now() + left.saturating_sub(MARGIN);
            notifier
                .handle(event.payload, deadline)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
