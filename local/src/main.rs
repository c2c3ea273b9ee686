//! `pipeline-local`: run the CodePipeline extension functions locally.

mod invoke_command;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pipeline-local",
    version,
    about = "Run the CodePipeline extension functions on loopback: Lambda Runtime API, S3, CodePipeline, Secrets Manager, CloudWatch, DynamoDB and Slack, no Docker, no AWS account."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the example pipeline of template.yaml end to end on examples/demo.
    Run(pipeline_local::run::RunArgs),
    /// Run one function once on an event and print what it reported and wrote.
    Invoke(invoke_command::InvokeArgs),
    /// Start the local endpoints and print the environment variables to reach them.
    Serve {
        /// Keep objects in this folder (default: a temporary folder).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// JSON file of secret id → value for the Secrets Manager endpoint.
        #[arg(long)]
        secrets: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Run(args) => pipeline_local::run::run(args).await,
            Command::Invoke(args) => invoke_command::run(args).await,
            Command::Serve { state_dir, secrets } => serve(state_dir, secrets).await,
        }
    })
}

async fn serve(state_dir: Option<PathBuf>, secrets: Option<PathBuf>) -> ExitCode {
    let aws = match pipeline_local::endpoints::LocalAws::start(state_dir.as_deref()).await {
        Ok(aws) => aws,
        Err(err) => {
            eprintln!("error: cannot start the local endpoints: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = secrets {
        if let Err(err) = aws.secrets.load_file(&path) {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    }
    println!(
        "# pipeline-local endpoints; objects in {}",
        aws.s3.root().display()
    );
    for (key, value) in aws.function_env() {
        println!("export {key}={value}");
    }
    println!("# Ctrl-C to stop");
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
