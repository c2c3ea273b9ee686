//! `pipeline-local run`: the example pipeline of `template.yaml`, executed stage by stage on
//! `examples/demo` with the real function binaries behind the local endpoints.
//!
//! What CodePipeline would do, this does: the S3 source action zips the demo folder into the
//! source bucket and the artifact store; Lambda invoke actions become jobs for the function the
//! action's `FunctionName` resolves to, re-invoked on continuation tokens; a manual approval is
//! published to the topic it names, so approval-notifier posts to the (recorded) Slack, and the
//! Approve (or, with `--reject`, Reject) button of that message is clicked with a request signed
//! as Slack signs it, into approval-responder; output variables replace `#{Namespace.Var}` in
//! later actions; every state change goes to the functions the template's EventBridge rule
//! targets. Action types it cannot emulate are shown as skipped, never as succeeded.

mod approval;
mod database;
mod events;
mod executor;
mod model;
mod report;
pub mod template;

use crate::endpoints::LocalAws;
use crate::slack::LocalSlack;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The SAM template holding the pipeline.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// The folder the S3 source action delivers (zipped).
    #[arg(long, default_value = "examples/demo")]
    pub source: PathBuf,
    /// Run the migrations against this database instead of a SQLite file
    /// (postgres://user:password@host:port/db or mysql://…).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Click Reject on the approval instead of Approve.
    #[arg(long)]
    pub reject: bool,
    /// Override a template parameter: KEY=VALUE (repeatable).
    #[arg(long = "parameter", value_name = "KEY=VALUE")]
    pub parameters: Vec<String>,
    /// Where the function binaries are (default: next to pipeline-local).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Keep S3 objects and the SQLite database in this folder (default: a temporary folder).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Echo the functions' log lines.
    #[arg(long)]
    pub verbose: bool,
}

pub async fn run(args: RunArgs) -> ExitCode {
    match execute(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn execute(args: RunArgs) -> Result<bool, String> {
    let mut overrides = Vec::new();
    for pair in &args.parameters {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("--parameter {pair:?}: expected KEY=VALUE"))?;
        overrides.push((key.to_string(), value.to_string()));
    }
    let temp = match &args.state_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("pipeline-local-run-")
                .tempdir()
                .map_err(|e| format!("cannot create a temporary folder: {e}"))?,
        ),
    };
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| temp.as_ref().expect("temp").path().to_path_buf());
    std::fs::create_dir_all(&state_dir)
        .map_err(|e| format!("cannot create {}: {e}", state_dir.display()))?;
    let aws = LocalAws::start(Some(&state_dir))
        .await
        .map_err(|e| format!("cannot start the local endpoints: {e}"))?;
    let slack = LocalSlack::new(approval::BOT_TOKEN, aws.calls.clone(), aws.faults.clone());
    let slack_url = slack
        .start()
        .await
        .map_err(|e| format!("cannot start the local Slack: {e}"))?;
    let health_url = report::serve_health()
        .await
        .map_err(|e| format!("cannot start the local health endpoint: {e}"))?;
    let database = database::DatabaseTarget::new(args.database_url.as_deref(), &state_dir)?;
    let setup = executor::Setup {
        args: &args,
        aws: &aws,
        slack: &slack,
        slack_url,
        health_url,
        database,
        overrides,
    };
    let succeeded = executor::run_pipeline(setup).await?;
    if temp.is_some() {
        println!("\n(state was in a temporary folder, now removed; keep it with --state-dir DIR)");
    }
    Ok(succeeded)
}
