//! Benchmark driver (bench/pipeline_notifier.py runs it): a cold start of a pipeline notifier
//! plus the first event of an execution (the parent message posted), from process spawn to the
//! response, side by side with the Python/boto3 reference, interleaved. Each run gets fresh
//! pipeline-local endpoints (CodePipeline, Secrets Manager, DynamoDB) and a recorded Slack.
//!
//! `notify_bench RUNS RUST_BINARY PYTHON SCRIPT`

use pipeline_local::endpoints::LocalAws;
use pipeline_local::runtime_api::{FunctionHost, FunctionSpec, Outcome};
use pipeline_local::slack::LocalSlack;
use serde_json::json;
use std::time::Duration;

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:111111111111:secret:slack";
const TABLE: &str = "pipeline-executions";

async fn one(run: usize, program: &str, args: &[String]) -> Result<(f64, f64), String> {
    let aws = LocalAws::start(None).await.map_err(|e| e.to_string())?;
    aws.dynamodb.create_table(TABLE, &["pk"]);
    aws.secrets.put(
        SECRET_ARN,
        json!({"bot_token": "xoxb-bench", "signing_secret": "unused"}),
    );
    let execution = format!("{run:08x}-{}", uuid_suffix(program));
    aws.codepipeline.register_execution(json!({
        "pipelineName": "web", "pipelineExecutionId": execution, "status": "InProgress",
        "artifactRevisions": [{"name": "SourceArtifact", "revisionId": "8f14e45fceea167a5a36dedd4bea2543",
            "revisionSummary": "Speed up the checkout page", "revisionUrl": "https://github.com/acme/web/commit/8f14e45f"}],
        "trigger": {"triggerType": "Webhook", "triggerDetail": "connection"}}));
    let slack = LocalSlack::new("xoxb-bench", aws.calls.clone(), aws.faults.clone());
    let slack_url = slack.start().await.map_err(|e| e.to_string())?;
    let mut spec = FunctionSpec::new("pipeline-notifier", program);
    spec.args = args.to_vec();
    spec.env = aws.function_env();
    spec.env.extend([
        ("SLACK_SECRET_ARN".to_string(), SECRET_ARN.to_string()),
        ("SLACK_API_URL".into(), slack_url),
        ("SLACK_CHANNEL".into(), "C0DEPLOYS".into()),
        ("EXECUTIONS_TABLE".into(), TABLE.into()),
    ]);
    spec.timeout = Duration::from_secs(30);
    let host = FunctionHost::start(spec).await.map_err(|e| e.to_string())?;
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runs, rust, python, script] = args.as_slice() else {
        return Err("usage: notify_bench RUNS RUST_BINARY PYTHON SCRIPT".into());
    };
    let runs: usize = runs.parse().map_err(|_| "RUNS must be a number")?;
    let subjects = [
        ("rust pipeline-notifier", rust.clone(), vec![]),
        (
            "python + boto3 reference",
            python.clone(),
            vec![script.clone()],
        ),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(), Vec::new()];
    for run in 0..runs {
        for (i, (_, program, args)) in subjects.iter().enumerate() {
            results[i].push(one(run, program, args).await?);
        }
    }
    let names: Vec<&str> = subjects.iter().map(|(name, _, _)| *name).collect();
    pipeline_local::bench_table::print(
        &format!("cold start + first event of an execution (parent message posted), spawn → response ({runs} runs each, interleaved)"),
        &names,
        &results,
        "goal: ≥ 15× faster, RSS ratio ≤ 0.5",
    );
    Ok(())
}
