//! `pipeline-local run`: sets up the surroundings of a local execution (state folder, local
//! endpoints, recorded Slack, health endpoint, database) and executes the template's pipeline,
//! with the executions other `run`s on the same state folder join to it
//! ([`super::joined_runs`]).

use super::joined_runs::{self, Held, Join, JoinListener, JoinRequest};
use crate::console::{Console, ConsoleRecord};
use crate::endpoints::LocalAws;
use crate::pipeline::output;
use crate::pipeline::{
    self, ApproveMode, DatabaseTarget, ExecutionContext, ExecutionState, Options, StageGates,
};
use crate::slack::LocalSlack;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
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
    /// Show the run in a browser: the pipeline, the actions' details, the timeline and the
    /// Slack channel, where approvals are decided (see `--approve`). The console stays up after
    /// the run until Ctrl-C.
    #[arg(long)]
    pub console: bool,
    /// The console's port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0, requires = "console")]
    pub port: u16,
}

/// Exit status 0 when the pipeline succeeded, 1 when it failed (or stopped at an action it
/// cannot run), 2 when it could not run, 3 when a newer execution superseded it.
pub async fn main(args: Args) -> ExitCode {
    match run(args).await {
        Ok(ExecutionState::Succeeded) => ExitCode::SUCCESS,
        Ok(ExecutionState::Superseded) => ExitCode::from(3),
        Ok(_) => ExitCode::from(1),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(mut args: Args) -> Result<ExecutionState, String> {
    if args.options.approve.is_none() {
        args.options.approve = Some(if args.console {
            ApproveMode::Console
        } else {
            ApproveMode::Auto
        });
    }
    if args.options.approve == Some(ApproveMode::Console) && !args.console {
        return Err("--approve console needs --console: the approval is decided there".into());
    }
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
    // Another run holding this folder runs this execution (an execution mode decides how it
    // goes with the others there).
    let _lock =
        match joined_runs::hold_or_join(&state_dir, || join_request(&args, &overrides)).await? {
            Held::Here(lock) => lock,
            Held::Joined(state) => return Ok(state),
        };
    let (listener, mut joins) = JoinListener::listen(&state_dir)?;
    let tls = crate::tls::LocalTls::when(args.tls)?;
    let aws = LocalAws::start_with(Some(&state_dir), tls.clone())
        .await
        .map_err(|e| format!("cannot start the local endpoints: {e}"))?;
    if let Some(path) = &args.options.secrets {
        aws.secrets.load_file(path)?;
    }
    if let Some(path) = &args.options.ssm_parameters {
        aws.ssm.load_file(path)?;
    }
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
    let console = if args.console {
        let record = ConsoleRecord::load(&state_dir)?;
        let console = Console::live(
            record,
            Some(state_dir.clone()),
            aws.s3.root().to_path_buf(),
            slack.clone(),
        );
        let url = console
            .serve(args.port)
            .await
            .map_err(|e| format!("cannot serve the console on port {}: {e}", args.port))?;
        println!("console: {url}\n");
        Some((console, url))
    } else {
        None
    };
    let surroundings = Surroundings {
        aws: &aws,
        slack: &slack,
        slack_url,
        site_url,
        console: console.as_ref().map(|(c, _)| c.clone()),
        gates: StageGates::default(),
    };
    type Running<'a> =
        Pin<Box<dyn Future<Output = (Option<Join>, Result<ExecutionState, String>)> + 'a>>;
    let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
    running.push(Box::pin(async {
        let own = surroundings.context(&args.options, overrides.clone(), database);
        (None, pipeline::execute(own).await)
    }));
    let mut own: Option<Result<ExecutionState, String>> = None;
    let mut said_ended = false;
    // Until the last execution ends (with --console: until Ctrl-C), other runs on this folder
    // join theirs.
    loop {
        if matches!(own, Some(Err(_))) {
            break;
        }
        if running.is_empty() {
            let Some((_, url)) = &console else { break };
            if !said_ended {
                println!("\nThe run has ended; the console stays up at {url} until Ctrl-C.");
                said_ended = true;
            }
        }
        tokio::select! {
            Some(join) = joins.recv() => {
                let database = match &join.request.database_url {
                    Some(url) => DatabaseTarget::new(Some(url), &state_dir),
                    None => DatabaseTarget::new(args.database_url.as_deref(), &state_dir),
                };
                let surroundings = &surroundings;
                running.push(Box::pin(async move {
                    let result = match database {
                        Ok(database) => {
                            let sink = Some(join.sink.clone());
                            let joined = surroundings.context(
                                &join.request.options,
                                join.request.overrides.clone(),
                                database,
                            );
                            output::scoped(sink, pipeline::execute(joined)).await
                        }
                        Err(message) => Err(message),
                    };
                    (Some(join), result)
                }));
            }
            Some((join, result)) = running.next(), if !running.is_empty() => match join {
                None => own = Some(result),
                Some(join) => {
                    let _ = join.ended.send(result);
                }
            },
            _ = tokio::signal::ctrl_c(), if running.is_empty() => break,
            else => break,
        }
    }
    drop(running);
    drop(joins);
    listener.close().await;
    let ended = own.unwrap_or_else(|| Err("the run's own execution did not end".into()))?;
    if temp.is_some() {
        println!("\n(state was in a temporary folder, now removed; keep it with --state-dir DIR)");
    }
    Ok(ended)
}

/// What every execution of this process runs against.
struct Surroundings<'s> {
    aws: &'s LocalAws,
    slack: &'s LocalSlack,
    slack_url: String,
    site_url: String,
    console: Option<Console>,
    gates: StageGates,
}

impl Surroundings<'_> {
    /// The context of one execution with its own options.
    fn context<'a>(
        &'a self,
        options: &'a Options,
        overrides: Vec<(String, String)>,
        database: DatabaseTarget,
    ) -> ExecutionContext<'a> {
        ExecutionContext {
            options,
            aws: self.aws,
            slack: self.slack,
            slack_url: self.slack_url.clone(),
            site_url: self.site_url.clone(),
            database,
            overrides,
            console: self.console.clone(),
            gates: self.gates.clone(),
        }
    }
}

/// This run's execution as a request to the run holding the state folder.
fn join_request(args: &Args, overrides: &[(String, String)]) -> JoinRequest {
    let mut options = args.options.clone();
    let absolute = joined_runs::absolute;
    options.template = absolute(&options.template);
    options.source = absolute(&options.source);
    options.repo = Some(absolute(
        options.repo.as_deref().unwrap_or(std::path::Path::new(".")),
    ));
    for path in [
        &mut options.secrets,
        &mut options.ssm_parameters,
        &mut options.bin_dir,
    ]
    .into_iter()
    .flatten()
    {
        *path = absolute(path);
    }
    JoinRequest {
        options,
        overrides: overrides.to_vec(),
        database_url: args.database_url.clone(),
    }
}
