use approval_notifier::{Config, Notifier};
use lambda_runtime::{service_fn, LambdaEvent};
use pipeline_ext::event_runner::EventRunner;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Kept back from the Lambda deadline so the invocation ends with its own error, not a timeout.
const MARGIN: Duration = Duration::from_millis(500);

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_ext::telemetry::init();
    let config = Config::from_env()?;
    let sdk = pipeline_ext::sdk::load_config().await;
    let notifier = Arc::new(Notifier::new(config, &sdk)?);
    let runner = EventRunner::new(MARGIN);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (notifier, runner) = (notifier.clone(), runner.clone());
        async move {
            runner
                .run(event, move |payload, _deadline| async move {
                    notifier.handle(payload).await
                })
                .await
        }
    }))
    .await
}
