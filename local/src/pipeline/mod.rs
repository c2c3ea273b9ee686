//! The pipeline of a SAM template (by default the example pipeline of `template.yaml` on
//! `examples/demo`), executed stage by stage with the real function binaries behind the local
//! endpoints; `pipeline-local run` ([`crate::cli::run`]) sets up its surroundings and calls [`execute`].
//!
//! What CodePipeline would do, this does: the S3 source action zips the demo folder into the
//! source bucket and the artifact store; Lambda invoke actions become jobs for the function the
//! action's `FunctionName` resolves to, re-invoked on continuation tokens; a manual approval is
//! published to the topic it names, so approval-notifier posts to the (recorded) Slack, and the
//! Approve (or, with `--reject`, Reject) button of that message is clicked with a request signed
//! as Slack signs it, into approval-responder; output variables replace `#{Namespace.Var}` in
//! later actions; every state change goes to the functions the template's EventBridge rule
//! targets. An action it cannot run fails the execution, never counts as succeeded, unless
//! the person skipped it by name (`--skip`).

/// `println!` into the current execution's output ([`output`]).
macro_rules! say {
    () => {
        $crate::pipeline::output::line(String::new())
    };
    ($($arg:tt)*) => {
        $crate::pipeline::output::line(format!($($arg)*))
    };
}

mod approval;
mod buildspec;
mod conditions;
mod database;
mod events;
mod execution;
mod git;
mod model;
pub mod output;
mod report;
mod state;
pub mod template;
mod triggers;
mod website;

pub use approval::BOT_TOKEN as SLACK_BOT_TOKEN;
pub use database::DatabaseTarget;
pub use execution::{execute, ContainerEngine, StageGates};
pub use state::ExecutionState;
pub use website::serve_website;

use crate::endpoints::LocalAws;
use crate::slack::LocalSlack;
use std::path::PathBuf;

/// What to execute and how: the template, the source and the choices a person makes.
#[derive(clap::Args, Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Options {
    /// The SAM template holding the pipeline.
    #[arg(long, default_value = "template.yaml")]
    pub template: PathBuf,
    /// The pipeline to run, by logical id, when the template declares more than one.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// A JSON file of secrets (secret id → value) loaded into the local Secrets Manager, for
    /// builds' `secrets-manager` variables and the functions.
    #[arg(long)]
    pub secrets: Option<PathBuf>,
    /// A JSON file of SSM parameters (name → value, or `{"Value", "Type"}`) loaded into the
    /// local Parameter Store, for builds' `parameter-store` and `PARAMETER_STORE` variables.
    #[arg(long, value_name = "FILE")]
    pub ssm_parameters: Option<PathBuf>,
    /// The git repository the pipeline's git source actions (CodeStarSourceConnection,
    /// CodeCommit, GitHub) read (default: the current directory, when it is a work tree).
    #[arg(long)]
    pub repo: Option<PathBuf>,
    /// The branch, tag or commit they build (default: the action's branch).
    #[arg(long = "ref", value_name = "REF")]
    pub git_ref: Option<String>,
    /// The folder the S3 source action delivers (zipped).
    #[arg(long, default_value = "examples/demo")]
    pub source: PathBuf,
    /// The source revision's summary (what the S3 source action reads from the object's
    /// `codepipeline-artifact-revision-summary` metadata), e.g. a commit message.
    #[arg(long)]
    pub revision_summary: Option<String>,
    /// Make this action fail instead of running it (`ACTION` or `STAGE.ACTION`, repeatable), to
    /// see how the pipeline, the notifications and the Slack thread tell a failure.
    #[arg(long = "fail", value_name = "ACTION")]
    pub fail: Vec<String>,
    /// Do not run this action (`ACTION` or `STAGE.ACTION`, repeatable): it is shown as
    /// SKIPPED. An action pipeline-local cannot run fails the execution unless named here.
    #[arg(long = "skip", value_name = "ACTION")]
    pub skip: Vec<String>,
    /// Count deploy actions pipeline-local checks but cannot perform (ECS, CodeDeploy,
    /// CloudFormation, Lambda, ECR, CodePipeline) as done once their checks pass; without it
    /// the execution stops at the first, shown NOT DEPLOYED.
    #[arg(long)]
    pub assume_deployed: bool,
    /// A pipeline variable's value for this execution (`NAME=VALUE`, repeatable), as
    /// StartPipelineExecution takes it; declared variables not named take their default.
    #[arg(long = "variable", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    /// Set a CloudWatch alarm's state for the run (`NAME=ALARM|OK|INSUFFICIENT_DATA`, repeatable),
    /// to see the deploy gate and `CloudWatchAlarm` conditions react.
    #[arg(long = "alarm", value_name = "NAME=STATE")]
    pub alarms: Vec<String>,
    /// Click Reject on the approval instead of Approve.
    #[arg(long)]
    pub reject: bool,
    /// Who decides manual approvals: `auto` clicks Approve (or Reject with `--reject`),
    /// `console` waits for a person to click in the console's Slack channel. Default: `console`
    /// with `--console`, else `auto`.
    #[arg(long, value_enum)]
    pub approve: Option<ApproveMode>,
    /// Cap every build's time limit at this many seconds (default: the project's
    /// `TimeoutInMinutes`, at least 5 minutes as CodeBuild allows), to try a hanging build
    /// without waiting for it.
    #[arg(long, value_name = "SECONDS")]
    pub build_timeout: Option<u64>,
    /// Run CodeBuild and Commands actions in their image with this engine instead of on the
    /// host (refused when the engine is not on this machine).
    #[arg(long, value_enum, value_name = "ENGINE")]
    pub container_engine: Option<ContainerEngine>,
    /// Where the function binaries are (default: next to pipeline-local).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Echo the functions' log lines.
    #[arg(long)]
    pub verbose: bool,
}

/// Who decides manual approvals in a local run.
#[derive(
    clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
pub enum ApproveMode {
    /// pipeline-local clicks the button itself.
    Auto,
    /// A person clicks in the console.
    Console,
}

/// Everything an execution runs against: the local endpoints, the recorded Slack, the health
/// endpoint the deploy gate checks, the database the migrations go to, and parameter overrides.
pub struct ExecutionContext<'a> {
    /// What to execute.
    pub options: &'a Options,
    /// The local AWS endpoints.
    pub aws: &'a LocalAws,
    /// The recorded Slack.
    pub slack: &'a LocalSlack,
    /// `SLACK_API_URL` of the Slack functions.
    pub slack_url: String,
    /// The local buckets as a website (the example deploy gate checks the published site).
    pub site_url: String,
    /// Where migrations go.
    pub database: DatabaseTarget,
    /// Template parameters from `--parameter KEY=VALUE`; they win over the embedded defaults.
    pub overrides: Vec<(String, String)>,
    /// The console showing the run (`--console`), which also decides approvals with
    /// `--approve console`.
    pub console: Option<crate::console::Console>,
    /// The stage gates shared by every execution of this process (execution modes).
    pub gates: StageGates,
}
