//! Benchmark driver (bench/cold_start.py --all runs it): the cold start of **every** function,
//! each on a minimal valid event of its own trigger, beside the fixture action and the Python
//! sample of the AWS documentation, over plain HTTP and over HTTPS (a CA made for the run,
//! trusted through `SSL_CERT_FILE` as a bundle file, the way Lambda's images keep theirs), all
//! interleaved in one run, each run on fresh local endpoints.
//!
//! Measured: process spawn → the first request any local endpoint receives (AWS or Slack: the
//! cold start proper, what a function does before it can talk to anyone, TLS handshake
//! included), spawn → the invocation's answer to the Runtime API (an invoke action has reported
//! to CodePipeline by then, a notifier has posted to Slack, the responder has decided: the
//! function's own work on top), and the process's peak RSS.
//!
//! `cold_starts RUNS BIN_DIR PYTHON SAMPLE_SCRIPT`

use pipeline_ext::slack::approval::ApprovalRef;
use pipeline_local::job_invocation::run_job;
use pipeline_local::runtime_api::{FunctionHost, Invocation, Outcome};
use pipeline_testkit::bench_table::Wire;
use pipeline_testkit::{JobEventBuilder, SlackFunctions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const CHANNEL: &str = "C0BENCH";
const ARTIFACTS: &str = "codepipeline-artifacts";
const DB_SECRET: &str = "arn:aws:secretsmanager:us-east-1:111111111111:secret:db";

/// One subject: a name, the program and its arguments.
struct Subject {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fixture,
    PythonSample,
    ArtifactProcessor,
    MigrationRunner,
    DeployGate,
    ApprovalNotifier,
    ApprovalResponder,
    PipelineNotifier,
}

fn unique() -> String {
    format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect();
    pipeline_local::zips::zip_files(&files).expect("zip")
}

/// What one cold start took.
#[derive(Clone, Copy)]
struct Sample {
    first_request_ms: f64,
    answer_ms: f64,
    rss_mib: f64,
}

/// A cold start of `subject` on a fresh world.
async fn one(subject: &Subject, wire: Wire, scratch: &Path) -> Result<Sample, String> {
    let mut world = SlackFunctions::start_over(wire, CHANNEL).await;
    world.set_env("APPROVERS", "U0APPROVER");
    let aws = &world.aws;
    let _ = aws.s3.create_bucket(ARTIFACTS);
    let invocation: Invocation = match subject.kind {
        Kind::Fixture | Kind::PythonSample => {
            let host = start(&world, subject).await;
            job(
                aws,
                &host,
                JobEventBuilder::new("fixture-action", &json!({"succeed": {}})).build(),
            )
            .await?
        }
        Kind::ArtifactProcessor => {
            let host = start(&world, subject).await;
            let id = unique();
            let params = json!({"steps": [{"image_definitions": {"output": "Deploy",
                "containers": {"web": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123"}}}]});
            let event = JobEventBuilder::new("artifact-processor", &params)
                .output("Deploy", ARTIFACTS, &format!("out/{id}.zip"))
                .build();
            job(aws, &host, event).await?
        }
        Kind::MigrationRunner => {
            let id = unique();
            let db = scratch.join(format!("{id}.db"));
            aws.secrets.put(
                DB_SECRET,
                json!({"engine": "sqlite", "dbname": db.display().to_string()}),
            );
            let key = format!("in/{id}.zip");
            aws.s3
                .put_file(
                    ARTIFACTS,
                    &key,
                    &zip_of(&[(
                        "db/migrations/1_init.sql",
                        b"CREATE TABLE t (id INTEGER PRIMARY KEY);",
                    )]),
                )
                .map_err(|e| e.to_string())?;
            let params = json!({"database_secret_arn": DB_SECRET, "input": "Source", "path": "db/migrations", "mode": "apply"});
            let event = JobEventBuilder::new("migration-runner", &params)
                .input("Source", ARTIFACTS, &key)
                .build();
            let host = start(&world, subject).await;
            job(aws, &host, event).await?
        }
        Kind::DeployGate => {
            aws.cloudwatch.set_alarm("HighErrorRate", "OK", "healthy");
            let host = start(&world, subject).await;
            let params = json!({"alarms": ["HighErrorRate"], "bake_seconds": 0});
            job(
                aws,
                &host,
                JobEventBuilder::new("deploy-gate", &params).build(),
            )
            .await?
        }
        Kind::ApprovalNotifier => {
            let host = start(&world, subject).await;
            let event = sns_approval(&unique());
            answered(&host, &event, "approval-notifier").await?
        }
        Kind::ApprovalResponder => {
            let token = unique();
            aws.codepipeline
                .register_approval(&token, "web", "Staging", "Approve");
            let host = start(&world, subject).await;
            let invocation = answered(&host, &signed_click(&token), "approval-responder").await?;
            if aws
                .codepipeline
                .approval(&token)
                .and_then(|a| a.decision)
                .is_none()
            {
                return Err(format!(
                    "approval-responder: the click decided nothing\n{}",
                    host.logs().join("\n")
                ));
            }
            invocation
        }
        Kind::PipelineNotifier => {
            let host = start(&world, subject).await;
            let event = json!({"version": "0", "id": unique(), "detail-type": "CodePipeline Pipeline Execution State Change",
                "source": "aws.codepipeline", "account": "111111111111", "time": "2026-12-04T10:00:00Z", "region": "us-east-1",
                "resources": ["arn:aws:codepipeline:us-east-1:111111111111:web"],
                "detail": {"pipeline": "web", "execution-id": "5f1c2d3e-aaaa-4bbb-8ccc-0123456789ab", "state": "STARTED", "version": 1}});
            answered(&host, &event, "pipeline-notifier").await?
        }
    };
    if matches!(
        subject.kind,
        Kind::ApprovalNotifier | Kind::PipelineNotifier
    ) && world.slack.messages().is_empty()
    {
        return Err(format!("{}: nothing was posted to Slack", subject.name));
    }
    let first_request = world
        .aws
        .calls
        .all()
        .iter()
        .map(|c| c.at_ms)
        .filter(|at| *at >= invocation.spawned_at_ms)
        .min_by(|a, b| a.total_cmp(b))
        .ok_or_else(|| format!("{}: no request reached an endpoint", subject.name))?;
    Ok(Sample {
        first_request_ms: first_request - invocation.spawned_at_ms,
        answer_ms: invocation.finished_at_ms - invocation.spawned_at_ms,
        rss_mib: invocation.peak_rss_kib.unwrap_or(0) as f64 / 1024.0,
    })
}

async fn start(world: &SlackFunctions, subject: &Subject) -> FunctionHost {
    world
        .host(subject.name, &subject.program, &subject.args)
        .await
}

/// Runs a job; its first invocation, once the job succeeded.
async fn job(
    aws: &pipeline_local::endpoints::LocalAws,
    host: &FunctionHost,
    event: Value,
) -> Result<Invocation, String> {
    let run = run_job(aws, host, event, 0)
        .await
        .map_err(|e| format!("{e:?}"))?;
    host.shutdown().await;
    if !run.succeeded() {
        return Err(format!(
            "job failed: {:?}\n{}",
            run.results(),
            host.logs().join("\n")
        ));
    }
    run.invocations
        .into_iter()
        .next()
        .ok_or_else(|| "no invocation".to_string())
}

/// One invocation that must answer (not fail).
async fn answered(host: &FunctionHost, event: &Value, name: &str) -> Result<Invocation, String> {
    let invocation = host.invoke(event).await;
    host.shutdown().await;
    match &invocation.outcome {
        Outcome::Response { .. } => Ok(invocation),
        other => Err(format!("{name}: {other:?}\n{}", host.logs().join("\n"))),
    }
}

fn sns_approval(token: &str) -> Value {
    let message = json!({"region": "us-east-1",
        "consoleLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/web",
        "approval": {"pipelineName": "web", "stageName": "Staging", "actionName": "Approve", "token": token,
            "expires": "2026-12-11T10:00Z", "externalEntityLink": "https://staging.example.com",
            "approvalReviewLink": "https://console.aws.amazon.com/codepipeline/home", "customData": "Release 1.4.2"}});
    json!({"Records": [{"EventSource": "aws:sns", "EventVersion": "1.0",
        "Sns": {"Type": "Notification", "MessageId": unique(), "TopicArn": "arn:aws:sns:us-east-1:111111111111:approvals",
            "Subject": "APPROVAL NEEDED", "Message": message.to_string(), "Timestamp": "2026-12-04T10:00:00.000Z"}}]})
}

fn signed_click(token: &str) -> Value {
    let approval = ApprovalRef {
        pipeline: "web".into(),
        stage: "Staging".into(),
        action: "Approve".into(),
        token: token.into(),
        requested_by: None,
    };
    SlackFunctions::signed_approve_click(&approval, CHANNEL, "1700000000.000100")
}

fn percentile(mut values: Vec<f64>, at: f64) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() as f64 * at) as usize).min(values.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runs, bin_dir, python, sample] = args.as_slice() else {
        return Err("usage: cold_starts RUNS BIN_DIR PYTHON SAMPLE_SCRIPT".into());
    };
    let runs: usize = runs.parse().map_err(|_| "RUNS must be a number")?;
    let bin = |name: &str| Path::new(bin_dir).join(name);
    let ours = |name: &'static str, kind: Kind| Subject {
        name,
        program: bin(name),
        args: vec![],
        kind,
    };
    let subjects = [
        ours("fixture-action", Kind::Fixture),
        ours("artifact-processor", Kind::ArtifactProcessor),
        ours("migration-runner", Kind::MigrationRunner),
        ours("deploy-gate", Kind::DeployGate),
        ours("approval-notifier", Kind::ApprovalNotifier),
        ours("approval-responder", Kind::ApprovalResponder),
        ours("pipeline-notifier", Kind::PipelineNotifier),
        Subject {
            name: "python + boto3 (AWS sample)",
            program: PathBuf::from(python),
            args: vec![sample.clone()],
            kind: Kind::PythonSample,
        },
    ];
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    // results[subject][wire]
    let mut results: Vec<[Vec<Sample>; 2]> = subjects.iter().map(|_| Default::default()).collect();
    for _ in 0..runs {
        // Interleaved, so machine noise hits every subject alike.
        for (w, wire) in Wire::BOTH.into_iter().enumerate() {
            for (s, subject) in subjects.iter().enumerate() {
                results[s][w].push(one(subject, wire, scratch.path()).await?);
            }
        }
    }
    let python = subjects.len() - 1;
    let stat = |s: usize, w: usize, at: f64, of: fn(&Sample) -> f64| {
        percentile(results[s][w].iter().map(of).collect(), at)
    };
    let first: fn(&Sample) -> f64 = |x| x.first_request_ms;
    let answer: fn(&Sample) -> f64 = |x| x.answer_ms;
    let rss: fn(&Sample) -> f64 = |x| x.rss_mib;
    println!("cold start of every function ({runs} runs each, interleaved; medians unless said)\n");
    println!(
        "{:28} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8}",
        "subject",
        "1st req",
        "1st req",
        "p90",
        "TLS adds",
        "vs fixt.",
        "× python",
        "answer",
        "RSS MiB",
        "RSS÷py"
    );
    println!(
        "{:28} {:>10} {:>10} {:>7} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8}",
        "", "http ms", "https ms", "https", "ms", "ms", "https", "https ms", "https", ""
    );
    for (s, subject) in subjects.iter().enumerate() {
        let (http, https) = (stat(s, 0, 0.5, first), stat(s, 1, 0.5, first));
        println!(
            "{:28} {:>10.1} {:>10.1} {:>7.1} {:>+9.1} {:>+9.1} {:>9.1} {:>10.1} {:>8.1} {:>8.2}",
            subject.name,
            http,
            https,
            stat(s, 1, 0.9, first),
            https - http,
            https - stat(0, 1, 0.5, first),
            stat(python, 1, 0.5, first) / https,
            stat(s, 1, 0.5, answer),
            stat(s, 1, 0.5, rss),
            stat(s, 1, 0.5, rss) / stat(python, 1, 0.5, rss),
        );
    }
    println!("\n1st req: spawn → the first request any endpoint receives; answer: spawn → the invocation's answer;");
    println!("vs fixt.: the HTTPS 1st-req median less the fixture action's; × python: the Python sample's over ours.");
    Ok(())
}
