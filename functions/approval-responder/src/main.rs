use approval_responder::{Config, Responder};
use lambda_runtime::{service_fn, LambdaEvent};
use pipeline_ext::event_runner::EventRunner;
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Kept back from the Lambda deadline; the responder's own budget (Slack's 3 s) is far shorter.
const MARGIN: Duration = Duration::from_millis(200);

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
    let runner = EventRunner::new(MARGIN);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let (responder, runner) = (responder.clone(), runner.clone());
        async move {
            runner
                .run(event, move |payload, _deadline| async move {
                    Ok::<Value, Infallible>(responder.handle(payload).await)
                })
                .await
        }
    }))
    .await
}
