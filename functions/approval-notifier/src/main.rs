use approval_notifier::{Config, Notifier};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_ext::telemetry::init();
    let config = Config::from_env()?;
    let sdk = pipeline_ext::sdk::load_config().await;
    let notifier = Arc::new(Notifier::new(config, &sdk)?);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let notifier = notifier.clone();
        async move {
            notifier
                .handle(event.payload)
                .await
                .map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
