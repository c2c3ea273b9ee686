//! `pipeline-local serve`: the local endpoints alone, with the environment to reach them.

use crate::endpoints::LocalAws;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `pipeline-local serve`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep objects in this folder (default: a temporary folder).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// JSON file of secret id → value for the Secrets Manager endpoint.
    #[arg(long)]
    pub secrets: Option<PathBuf>,
    /// Serve HTTPS with a CA made for this process; the exports include SSL_CERT_FILE and
    /// AWS_CA_BUNDLE naming a bundle that trusts it.
    #[arg(long)]
    pub tls: bool,
}

/// Serves until Ctrl-C; exit status 2 when the endpoints cannot start.
pub async fn main(args: Args) -> ExitCode {
    let _lock = match args
        .state_dir
        .as_deref()
        .map(crate::state_folder::lock)
        .transpose()
    {
        Ok(lock) => lock,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let tls = match crate::tls::LocalTls::when(args.tls) {
        Ok(tls) => tls,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    let aws = match LocalAws::start_with(args.state_dir.as_deref(), tls).await {
        Ok(aws) => aws,
        Err(err) => {
            eprintln!("error: cannot start the local endpoints: {err}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = args.secrets {
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
