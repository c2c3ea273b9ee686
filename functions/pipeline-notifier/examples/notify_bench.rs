//! Benchmark driver (bench/pipeline_notifier.py runs it): a cold start of a pipeline notifier
//! plus the first event of an execution (the parent message posted), from process spawn to the
//! response, side by side with the Python/boto3 reference, interleaved. Each run gets fresh
//! pipeline-local endpoints (CodePipeline, Secrets Manager, DynamoDB) and a recorded Slack.
//!
//! `notify_bench RUNS RUST_BINARY PYTHON SCRIPT`

use pipeline_local::runtime_api::Outcome;
use pipeline_testkit::bench_table::Wire;
use pipeline_testkit::SlackFunctions;
use serde_json::json;

async fn one(
    run: usize,
    program: String,
    args: Vec<String>,
    wire: Wire,
) -> Result<(f64, f64), String> {
    let world = SlackFunctions::start_over(wire, "C0DEPLOYS").await;
    let (aws, slack) = (&world.aws, &world.slack);
    let execution = format!("{run:08x}-{}", uuid_suffix(&program));
    aws.codepipeline.register_execution(json!({
        "pipelineName": "web", "pipelineExecutionId": execution, "status": "InProgress",
        "artifactRevisions": [{"name": "SourceArtifact", "revisionId": "8f14e45fceea167a5a36dedd4bea2543",
            "revisionSummary": "Speed up the checkout page", "revisionUrl": "https://github.com/acme/web/commit/8f14e45f"}],
        "trigger": {"triggerType": "Webhook", "triggerDetail": "connection"}}));
    let host = world.host("pipeline-notifier", &program, &args).await;
    let event = json!({"version": "0", "id": format!("event-{execution}"),
        "detail-type": "CodePipeline Pipeline Execution State Change", "source": "aws.codepipeline",
        "account": "111111111111", "time": "2026-11-21T10:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:codepipeline:us-east-1:111111111111:web"],
        "detail": {"pipeline": "web", "execution-id": execution, "state": "STARTED", "version": 4,
            "execution-trigger": {"trigger-type": "Webhook", "trigger-detail": "connection"}}});
    let invocation = host.invoke(&event).await;
    host.shutdown().await;
    if !matches!(invocation.outcome, Outcome::Response { .. }) {
        return Err(format!("{program}: {:?}", invocation.outcome));
    }
    if slack.messages().len() != 1 {
        return Err(format!(
            "{program}: expected one Slack message, got {}",
            slack.messages().len()
        ));
    }
    Ok((
        invocation.finished_at_ms - invocation.spawned_at_ms,
        invocation.peak_rss_kib.unwrap_or(0) as f64 / 1024.0,
    ))
}

fn uuid_suffix(program: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", program.len())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    pipeline_testkit::bench_table::compare_with_python(
        "notify_bench",
        "rust pipeline-notifier",
        "cold start + first event of an execution (parent message posted), spawn → response",
        "goal: ≥ 15× faster, RSS ratio ≤ 0.5",
        one,
    )
    .await
}
