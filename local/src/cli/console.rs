//! `pipeline-local console`: the executions kept in a state folder, in the browser, to look at
//! after the runs (nothing runs, nothing is decided).

use crate::console::{Console, ConsoleRecord};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pipeline-local console`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The state folder of earlier `pipeline-local run --state-dir DIR` runs.
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The port on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Serves until Ctrl-C; exit status 2 when the folder cannot be read or the port is taken.
pub async fn main(args: Args) -> ExitCode {
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    if !args.state_dir.is_dir() {
        return Err(format!("{} is not a folder", args.state_dir.display()));
    }
    let record = ConsoleRecord::load(&args.state_dir)?;
    if record.executions.is_empty() {
        eprintln!(
            "note: {} holds no execution seen by a console yet; run `pipeline-local run --console --state-dir {}` first",
            args.state_dir.display(),
            args.state_dir.display()
        );
    }
    let console = Console::browse(record, args.state_dir.join("s3"));
    let url = console
        .serve(args.port)
        .await
        .map_err(|e| format!("cannot serve the console on port {}: {e}", args.port))?;
    println!("console: {url}\n(Ctrl-C to stop)");
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}
