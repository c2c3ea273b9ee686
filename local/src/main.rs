//! `pipeline-local`: run the CodePipeline extension functions locally.

use clap::{Parser, Subcommand};
use pipeline_local::cli;
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
    Run(cli::run::Args),
    /// Show the executions kept in a state folder in the browser.
    Console(cli::console::Args),
    /// Run one function once on an event and print what it reported and wrote.
    Invoke(cli::invoke::Args),
    /// Start the local endpoints and print the environment variables to reach them.
    Serve(cli::serve::Args),
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
            Command::Run(args) => cli::run::main(args).await,
            Command::Console(args) => cli::console::main(args).await,
            Command::Invoke(args) => cli::invoke::main(args).await,
            Command::Serve(args) => cli::serve::main(args).await,
        }
    })
}
