//! Benchmark driver (bench/approval_click.py runs it): a cold start of an approval responder
//! plus one verified Approve click, from process spawn to the Function URL response, side by
//! side with the Python/boto3 reference, each run on fresh local endpoints.
//!
//! `click_bench RUNS RUST_BINARY PYTHON SCRIPT`

use pipeline_ext::slack::approval::ApprovalRef;
use pipeline_ext::slack::signature::sign;
use pipeline_local::endpoints::LocalAws;
use pipeline_local::runtime_api::{FunctionHost, FunctionSpec, Outcome};
use pipeline_local::slack::LocalSlack;
use serde_json::json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET_ARN: &str = "arn:aws:secretsmanager:us-east-1:111111111111:secret:slack";

async fn one(program: &str, args: &[String]) -> Result<(f64, f64), String> {
    let aws = LocalAws::start(None).await.map_err(|e| e.to_string())?;
    aws.secrets.put(
        SECRET_ARN,
        json!({"bot_token": "xoxb-bench", "signing_secret": "bench-signing-secret"}),
    );
    let token = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    aws.codepipeline
        .register_approval(&token, "web", "Staging", "Approve");
    let slack = LocalSlack::new("xoxb-bench", aws.calls.clone(), aws.faults.clone());
    let slack_url = slack.start().await.map_err(|e| e.to_string())?;
    let mut spec = FunctionSpec::new("approval-responder", program);
    spec.args = args.to_vec();
    spec.env = aws.function_env();
    spec.env.extend([
        ("SLACK_SECRET_ARN".to_string(), SECRET_ARN.to_string()),
        ("SLACK_API_URL".into(), slack_url),
        ("APPROVERS".into(), "U0APPROVER".into()),
    ]);
    spec.timeout = Duration::from_secs(30);
    let host = FunctionHost::start(spec).await.map_err(|e| e.to_string())?;
    let value = ApprovalRef {
        pipeline: "web".into(),
        stage: "Staging".into(),
        action: "Approve".into(),
        token: token.clone(),
    }
    .encode();
    let payload = json!({"type": "block_actions", "user": {"id": "U0APPROVER", "username": "dana"},
        "channel": {"id": "C1"}, "message": {"ts": "1700000000.000100", "blocks": []}, "trigger_id": "t",
        "actions": [{"action_id": "approve", "value": value}]});
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let request = json!({"headers": {"x-slack-request-timestamp": ts, "x-slack-signature": sign("bench-signing-secret", &ts, body.as_bytes())},
        "body": body, "isBase64Encoded": false});
    let invocation = host.invoke(&request).await;
    host.shutdown().await;
    match &invocation.outcome {
        Outcome::Response { body } if body["statusCode"] == 200 => {}
        other => return Err(format!("{program}: {other:?}")),
    }
    if aws
        .codepipeline
        .approval(&token)
        .and_then(|a| a.decision)
        .is_none()
    {
        return Err(format!("{program}: no PutApprovalResult"));
    }
    Ok((
        invocation.finished_at_ms - invocation.spawned_at_ms,
        invocation.peak_rss_kib.unwrap_or(0) as f64 / 1024.0,
    ))
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runs, rust, python, script] = args.as_slice() else {
        return Err("usage: click_bench RUNS RUST_BINARY PYTHON SCRIPT".into());
    };
    let runs: usize = runs.parse().map_err(|_| "RUNS must be a number")?;
    let subjects = [
        ("rust approval-responder", rust.clone(), vec![]),
        (
            "python + boto3 reference",
            python.clone(),
            vec![script.clone()],
        ),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (i, (_, program, args)) in subjects.iter().enumerate() {
            results[i].push(one(program, args).await?);
        }
    }
    let names: Vec<&str> = subjects.iter().map(|(name, _, _)| *name).collect();
    pipeline_local::bench_table::print(
        &format!("cold start + one verified Approve click, spawn → response ({runs} runs each, interleaved)"),
        &names,
        &results,
        "goal: ≥ 15× faster",
    );
    Ok(())
}
