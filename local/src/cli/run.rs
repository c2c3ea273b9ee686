//! `pipeline-local run`: sets up the surroundings of a local execution (state folder, local
//! endpoints, recorded Slack, health endpoint, database) and executes the template's pipeline.

use crate::endpoints::LocalAws;
use crate::pipeline::{self, DatabaseTarget, ExecutionContext, Options};
use crate::slack::LocalSlack;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pipeline-local run`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to execute.
    #[command(flatten)]
    pub options: Options,
    /// Run the migrations against this database instead of a SQLite file
    /// (postgres://user:password@host:port/db or mysql://…).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Override a template parameter: KEY=VALUE (repeatable).
    #[arg(long = "parameter", value_name = "KEY=VALUE")]
    pub parameters: Vec<String>,
    /// Keep S3 objects and the SQLite database in this folder (default: a temporary folder).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Serve the AWS endpoints and Slack over HTTPS with a CA made for this run, trusted by the
    /// functions through SSL_CERT_FILE and AWS_CA_BUNDLE, as on Lambda.
    #[arg(long)]
    pub tls: bool,
}

/// Exit status 0 when the pipeline succeeded, 1 when it failed, 2 when it could not run.
pub async fn main(args: Args) -> ExitCode {
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
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
    let state_dir = match (&args.state_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(temp)) => temp.path().to_path_buf(),
        (None, None) => return Err("no state folder".into()),
    };
    let _lock = crate::state_folder::lock(&state_dir)?;
    let tls = crate::tls::LocalTls::when(args.tls)?;
    let aws = LocalAws::start_with(Some(&state_dir), tls.clone())
        .await
        .map_err(|e| format!("cannot start the local endpoints: {e}"))?;
    let slack = LocalSlack::new(
        pipeline::SLACK_BOT_TOKEN,
        aws.calls.clone(),
        aws.faults.clone(),
    );
    let slack_url = slack
        .start_with(tls.as_deref())
        .await
        .map_err(|e| format!("cannot start the local Slack: {e}"))?;
    let site_url = pipeline::serve_website(aws.s3.clone())
        .await
        .map_err(|e| format!("cannot start the local website: {e}"))?;
    let database = DatabaseTarget::new(args.database_url.as_deref(), &state_dir)?;
    let context = ExecutionContext {
        options: &args.options,
        aws: &aws,
        slack: &slack,
        slack_url,
        site_url,
        database,
        overrides,
    };
    let succeeded = pipeline::execute(context).await?;
    if temp.is_some() {
        println!("\n(state was in a temporary folder, now removed; keep it with --state-dir DIR)");
    }
    Ok(succeeded)
}
