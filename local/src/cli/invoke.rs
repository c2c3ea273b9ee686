//! `pipeline-local invoke FUNCTION --event FILE`.

use crate::calls::Call;
use crate::endpoints::LocalAws;
use crate::job_invocation::{run_job, JobRun};
use crate::runtime_api::{FunctionHost, FunctionSpec, Invocation, Outcome};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `pipeline-local invoke`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The function (a workspace binary such as `artifact-processor`).
    function: String,
    /// The event JSON file (see events/).
    #[arg(long)]
    event: PathBuf,
    /// Replace the job's UserParameters with this JSON.
    #[arg(long)]
    user_parameters: Option<String>,
    /// Seed an input artifact: NAME=PATH, where PATH is a folder (zipped) or a .zip file.
    #[arg(long = "artifact", value_name = "NAME=PATH")]
    artifacts: Vec<String>,
    /// Create this bucket in the local S3 before the run (repeatable), e.g. a site bucket.
    #[arg(long = "bucket", value_name = "NAME")]
    buckets: Vec<String>,
    /// The program to run (default: target/release/FUNCTION, built with cargo if missing).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// Arguments for the program (repeatable), e.g. a script for an interpreter.
    #[arg(long = "arg")]
    args: Vec<String>,
    /// JSON file of secret id → value served by the Secrets Manager endpoint.
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// Extra environment for the function: KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// The function's timeout in seconds, as configured in Lambda.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The function's log level (AWS_LAMBDA_LOG_LEVEL).
    #[arg(long, default_value = "INFO")]
    log_level: String,
    /// Keep objects in this folder (default: a temporary folder, removed afterwards).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// How many continuation re-invocations to follow.
    #[arg(long, default_value_t = 100)]
    max_continuations: usize,
    /// Print a JSON report on stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Do not echo the function's log lines.
    #[arg(long)]
    quiet: bool,
    /// Serve the endpoints over HTTPS with a CA made for this run, which the function trusts
    /// through SSL_CERT_FILE and AWS_CA_BUNDLE (as it trusts AWS's certificates on Lambda).
    #[arg(long)]
    tls: bool,
}

/// Exit status 0 only if the job succeeded; 2 when it could not run.
pub async fn main(args: Args) -> ExitCode {
    match invoke(args).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn invoke(args: Args) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(&args.event)
        .map_err(|e| format!("cannot read event {}: {e}", args.event.display()))?;
    let mut event: Value = serde_json::from_str(&text)
        .map_err(|e| format!("event {} is not JSON: {e}", args.event.display()))?;
    let program = resolve_program(&args)?;
    let _lock = args
        .state_dir
        .as_deref()
        .map(crate::state_folder::lock)
        .transpose()?;
    let tls = crate::tls::LocalTls::when(args.tls)?;
    let aws = LocalAws::start_with(args.state_dir.as_deref(), tls)
        .await
        .map_err(|e| format!("cannot start local endpoints: {e}"))?;
    if let Some(path) = &args.secrets {
        aws.secrets.load_file(path)?;
    }
    let is_job = event.get("CodePipeline.job").is_some();
    if let Some(params) = &args.user_parameters {
        if !is_job {
            return Err("--user-parameters applies to CodePipeline job events only".into());
        }
        event["CodePipeline.job"]["data"]["actionConfiguration"]["configuration"]
            ["UserParameters"] = json!(params);
    }
    for bucket in &args.buckets {
        aws.s3
            .create_bucket(bucket)
            .map_err(|e| format!("cannot create bucket {bucket}: {e}"))?;
    }
    for bucket in crate::job_invocation::artifact_buckets(&event) {
        aws.s3
            .create_bucket(&bucket)
            .map_err(|e| format!("cannot create bucket {bucket}: {e}"))?;
    }
    for spec in &args.artifacts {
        seed_artifact(&aws, &event, spec)?;
    }

    let mut env = aws.function_env();
    env.push(("AWS_LAMBDA_LOG_LEVEL".into(), args.log_level.clone()));
    for pair in &args.env {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--env {pair}: expected KEY=VALUE"))?;
        env.push((key.into(), value.into()));
    }
    let mut spec = FunctionSpec::new(&args.function, program);
    spec.args = args.args.clone();
    spec.env = env;
    spec.timeout = Duration::from_secs(args.timeout);
    spec.echo_logs = !args.quiet && !args.json;
    let host = FunctionHost::start(spec)
        .await
        .map_err(|e| format!("cannot start the Runtime API: {e}"))?;

    if !args.json {
        eprintln!(
            "pipeline-local invoke {}: objects in {}",
            args.function,
            aws.s3.root().display()
        );
    }
    let (code, report) = if is_job {
        let run = run_job(&aws, &host, event, args.max_continuations)
            .await
            .map_err(|e| e.to_string())?;
        let code = if run.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        if !args.json {
            print_job(&run, &aws);
        }
        (code, json!({"job": run, "calls": aws.calls.all()}))
    } else {
        let invocation = host.invoke(&event).await;
        let code = if matches!(invocation.outcome, Outcome::Response { .. }) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        if !args.json {
            print_invocation(1, &invocation);
        }
        (
            code,
            json!({"invocation": invocation, "calls": aws.calls.all()}),
        )
    };
    host.shutdown().await;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    }
    Ok(code)
}

fn resolve_program(args: &Args) -> Result<PathBuf, String> {
    if let Some(binary) = &args.binary {
        return Ok(binary.clone());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("target"));
    let path = target.join("release").join(&args.function);
    if path.is_file() {
        return Ok(path);
    }
    if !Path::new("Cargo.toml").is_file() {
        return Err(format!(
            "no binary at {}; pass --binary or run from the workspace root",
            path.display()
        ));
    }
    eprintln!(
        "building {} (cargo build --release --bin {}) …",
        args.function, args.function
    );
    let status = std::process::Command::new("cargo")
        .args(["build", "--release", "--bin", &args.function])
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() || !path.is_file() {
        return Err(format!(
            "could not build {}: is it a binary of this workspace?",
            args.function
        ));
    }
    Ok(path)
}

fn seed_artifact(aws: &LocalAws, event: &Value, spec: &str) -> Result<(), String> {
    let (name, path) = spec
        .split_once('=')
        .ok_or_else(|| format!("--artifact {spec}: expected NAME=PATH"))?;
    let inputs = event["CodePipeline.job"]["data"]["inputArtifacts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let artifact = inputs.iter().find(|a| a["name"] == name).ok_or_else(|| {
        format!("--artifact {name}: the event has no input artifact of that name")
    })?;
    let bucket = artifact["location"]["s3Location"]["bucketName"]
        .as_str()
        .unwrap_or_default();
    let key = artifact["location"]["s3Location"]["objectKey"]
        .as_str()
        .unwrap_or_default();
    let path = Path::new(path);
    let size = if path.is_dir() {
        let bytes = crate::zips::zip_folder(path)
            .map_err(|e| format!("cannot zip {}: {e}", path.display()))?;
        aws.s3
            .put_file(bucket, key, &bytes)
            .map_err(|e| format!("cannot store s3://{bucket}/{key}: {e}"))?;
        bytes.len() as u64
    } else {
        aws.s3.put_path(bucket, key, path).map_err(|e| {
            format!(
                "cannot store {} at s3://{bucket}/{key}: {e}",
                path.display()
            )
        })?
    };
    eprintln!(
        "input artifact {name} ← {} ({size} bytes) at s3://{bucket}/{key}",
        path.display()
    );
    Ok(())
}

fn print_invocation(n: usize, invocation: &Invocation) {
    let rss = invocation
        .peak_rss_kib
        .map(|k| format!(", peak RSS {:.1} MiB", k as f64 / 1024.0))
        .unwrap_or_default();
    let start = if invocation.cold_start {
        "cold start"
    } else {
        "warm"
    };
    println!(
        "invocation {n}: {start}, {:.0} ms{rss}",
        invocation.duration_ms()
    );
    match &invocation.outcome {
        Outcome::Response { body } => println!("  returned {body}"),
        Outcome::Error {
            error_type,
            error_message,
        } => println!("  error {error_type}: {error_message}"),
        Outcome::InitError {
            error_type,
            error_message,
        } => println!("  init error {error_type}: {error_message}"),
        Outcome::Timeout => println!("  timed out (process killed)"),
        Outcome::Crashed { status } => println!("  process exited: {status}"),
    }
}

fn print_job(run: &JobRun, aws: &LocalAws) {
    for (i, invocation) in run.invocations.iter().enumerate() {
        print_invocation(i + 1, invocation);
    }
    let Some(record) = &run.record else {
        println!("job {}: no record", run.job_id);
        return;
    };
    for result in &record.results {
        if let Some(failure) = result.get("failureDetails") {
            println!(
                "  PutJobFailureResult {}: {}",
                failure["type"].as_str().unwrap_or(""),
                failure["message"].as_str().unwrap_or("")
            );
        } else if result.get("continuationToken").is_some() {
            println!(
                "  PutJobSuccessResult (continuation): {}",
                result["executionDetails"]["summary"].as_str().unwrap_or("")
            );
        } else {
            println!(
                "  PutJobSuccessResult: {}",
                result["executionDetails"]["summary"].as_str().unwrap_or("")
            );
            if let Some(vars) = result.get("outputVariables").and_then(Value::as_object) {
                for (key, value) in vars {
                    println!("    {key} = {}", value.as_str().unwrap_or(""));
                }
            }
        }
    }
    println!("job {}: {:?}", run.job_id, record.status);
    let writes: Vec<Call> = aws
        .calls
        .all()
        .into_iter()
        .filter(|c| {
            c.service == "s3"
                && matches!(
                    c.operation.as_str(),
                    "PutObject"
                        | "CompleteMultipartUpload"
                        | "CopyObject"
                        | "DeleteObject"
                        | "DeleteObjects"
                )
        })
        .collect();
    if !writes.is_empty() {
        println!("S3 writes:");
        for call in writes {
            let sse = call
                .detail
                .get("x-amz-server-side-encryption")
                .and_then(Value::as_str)
                .map(|s| format!(" [{s}]"))
                .unwrap_or_default();
            println!(
                "  {} s3://{}/{} → {}{sse}",
                call.operation,
                call.detail["bucket"].as_str().unwrap_or(""),
                call.detail["key"].as_str().unwrap_or(""),
                call.status
            );
        }
    }
}
