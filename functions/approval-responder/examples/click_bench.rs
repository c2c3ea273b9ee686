//! Benchmark driver (bench/approval_click.py runs it): a cold start of an approval responder
//! plus one verified Approve click, from process spawn to the Function URL response, side by
//! side with the Python/boto3 reference, over plain HTTP and over HTTPS (`--tls`), each run on fresh local endpoints.
//!
//! `click_bench RUNS RUST_BINARY PYTHON SCRIPT`

use pipeline_ext::slack::approval::ApprovalRef;
use pipeline_local::runtime_api::Outcome;
use pipeline_testkit::bench_table::Wire;
use pipeline_testkit::SlackFunctions;
use std::time::{SystemTime, UNIX_EPOCH};

async fn one(
    _run: usize,
    program: String,
    args: Vec<String>,
    wire: Wire,
) -> Result<(f64, f64), String> {
    let mut world = SlackFunctions::start_over(wire, "C1").await;
    world.set_env("APPROVERS", "U0APPROVER");
    // Ours decides under an approval policy and records the click and the decision in the
    // executions table first (the reference has neither).
    world.set_env(
        "APPROVAL_POLICY",
        r#"{"rules": [{"name": "production", "pipeline": "w*", "approvers": ["U0APPROVER", "U0OTHER"], "required": 1}]}"#,
    );
    let token = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    world
        .aws
        .codepipeline
        .register_approval(&token, "web", "Staging", "Approve");
    let host = world.host("approval-responder", &program, &args).await;
    let aws = &world.aws;
    let approval = ApprovalRef {
        pipeline: "web".into(),
        stage: "Staging".into(),
        action: "Approve".into(),
        token: token.clone(),
        requested_by: None,
    };
    let request = SlackFunctions::signed_approve_click(&approval, "C1", "1700000000.000100");
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
    pipeline_testkit::bench_table::compare_with_python(
        "click_bench",
        "rust approval-responder",
        "cold start + one verified Approve click, spawn → response",
        "goal: ≥ 15× faster",
        one,
    )
    .await
}
