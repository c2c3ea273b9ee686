use approval_responder::{Config, Responder};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_ext::telemetry::init();
    let config = Config::from_env()?;
    let sdk = pipeline_ext::sdk::load_config().await;
    let responder = match Responder::new(config, &sdk).await {
        Ok(responder) => Arc::new(responder),
        Err(err) => {
            tracing::error!(error = %err, "approval-responder cannot start");
            return Err(err.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let responder = responder.clone();
        async move { Ok::<Value, lambda_runtime::Error>(responder.handle(event.payload).await) }
    }))
    .await
}
