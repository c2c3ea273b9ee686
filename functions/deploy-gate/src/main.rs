use deploy_gate::{handle, Clients};
use lambda_runtime::{service_fn, LambdaEvent};
use pipeline_ext::job::JobRunner;
use serde_json::Value;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_ext::telemetry::init();
    let config = pipeline_ext::sdk::load_config().await;
    let clients = Clients::new(&config)?;
    let runner = Arc::new(JobRunner::new(&config));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (runner, clients) = (runner.clone(), clients.clone());
        async move { runner.run(event, move |job| handle(job, clients)).await }
    }))
    .await
}
