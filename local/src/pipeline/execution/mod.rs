//! One execution of a template's pipeline, split by responsibility:
//!
//! - this module: what `execute` sets up, and the [`Execution`] it runs;
//! - [`provision`]: the template's resources, secrets and function instances;
//! - [`schedule`]: stages in order, conditions, automatic retry, actions by `RunOrder`;
//! - [`stage_gate`]: stages entered as the execution mode lets several executions in;
//! - [`rollback`]: a failed stage run again with its last successful inputs;
//! - [`actions`]: one module per action provider pipeline-local runs;
//! - [`observer`]: the report, the event bus, the console ([`console_view`]) and the API
//!   history, told what happens through one interface.

mod actions;
mod console_view;
mod observer;
mod provision;
mod rollback;
mod schedule;
mod stage_gate;

pub use actions::{ArtifactLocation, ContainerEngine};
pub use observer::{ExecutionObserver, Progress};
pub use stage_gate::StageGates;

use super::approval;
use super::events::EventBus;
use super::model::{ActionDef, PipelineDef, Variables};
use super::report::Report;
use super::template::{FunctionDef, Template};
use super::ExecutionContext;
use super::ExecutionState;
use crate::runtime_api::FunctionHost;
use console_view::ConsoleView;
use observer::{ApiHistory, Observers};
use std::collections::HashMap;
use std::path::PathBuf;

/// `trigger-type` and `trigger-detail` of an execution `pipeline-local run` starts.
const TRIGGER: (&str, &str) = ("StartPipelineExecution", "pipeline-local run");

const SLACK_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:pipeline-local/slack";
const DATABASE_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:pipeline-local/database";
/// The RDS instance the example pipeline snapshots (`DatabaseInstanceIdentifier`).
const DATABASE_INSTANCE: &str = "demo-db";

/// One execution of the pipeline, as it progresses.
struct Execution<'a> {
    context: &'a ExecutionContext<'a>,
    template: Template,
    functions: Vec<FunctionDef>,
    /// Function instances by logical id, started on first use.
    hosts: HashMap<String, FunctionHost>,
    bin_dir: PathBuf,
    pipeline: PipelineDef,
    execution_id: String,
    artifacts: HashMap<String, ArtifactLocation>,
    variables: Variables,
    observers: Observers<'a>,
    /// The source folder zipped once, as the S3 source action delivers it (or why it cannot be).
    source_archive: Result<Vec<u8>, String>,
    /// What each build action's commands printed, by action name (the console's log table).
    build_logs: HashMap<String, Vec<String>>,
}

/// The parameters `run` sets so the example pipeline runs on loopback; `--parameter` wins.
fn embedded_parameters(context: &ExecutionContext, declared: &Template) -> Vec<(String, String)> {
    // The gate checks the page the Deploy stage publishes, served from the local site bucket.
    let health = if declared.declares("ExampleSiteBucket", "AWS::S3::Bucket") {
        let bucket = super::template::bucket_name("ExampleSiteBucket");
        format!("{}/{bucket}/live/site/health.txt", context.site_url)
    } else {
        format!("{}/health", context.site_url)
    };
    vec![
        ("CreateExamplePipeline".into(), "true".into()),
        ("SlackSecretArn".into(), SLACK_SECRET_ARN.into()),
        ("SlackChannel".into(), approval::CHANNEL.into()),
        ("SlackApprovers".into(), approval::APPROVER.into()),
        ("DatabaseSecretArn".into(), DATABASE_SECRET_ARN.into()),
        (
            "DatabaseInstanceIdentifier".into(),
            DATABASE_INSTANCE.into(),
        ),
        ("ExampleHealthCheckUrl".into(), health),
        ("ExampleBakeSeconds".into(), "3".into()),
        ("ExampleBakeIntervalSeconds".into(), "1".into()),
    ]
}

/// Executes the template's pipeline once; the state it ended in.
pub async fn execute(context: ExecutionContext<'_>) -> Result<ExecutionState, String> {
    let declared = Template::load(&context.options.template, &[]).map_err(|e| e.to_string())?;
    let mut parameters: Vec<(String, String)> = embedded_parameters(&context, &declared)
        .into_iter()
        .filter(|(k, _)| declared.parameter(k).is_some())
        .collect();
    for (key, value) in &context.overrides {
        parameters.retain(|(k, _)| k != key);
        parameters.push((key.clone(), value.clone()));
    }
    let template =
        Template::load(&context.options.template, &parameters).map_err(|e| e.to_string())?;
    let functions = template.functions().map_err(|e| e.to_string())?;
    let (logical_id, resource) = choose_pipeline(
        &template,
        context.options.pipeline.as_deref(),
        &context.options.template,
    )?;
    let properties = template
        .resolve(&resource["Properties"])
        .map_err(|e| e.to_string())?;
    let name = properties["Name"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| super::template::function_name(logical_id));
    let pipeline = PipelineDef::from_resource(name, &properties)?;
    let bin_dir = match &context.options.bin_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
            .ok_or("cannot tell where pipeline-local is")?,
    };
    let missing: Vec<&str> = functions
        .iter()
        .filter(|f| !bin_dir.join(&f.binary).exists())
        .map(|f| f.binary.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "function binaries missing from {}: {}; build them with `cargo build --workspace --bins`",
            bin_dir.display(),
            missing.join(", ")
        ));
    }
    named_actions_exist(&pipeline, "--fail", &context.options.fail)?;
    named_actions_exist(&pipeline, "--skip", &context.options.skip)?;
    let pipeline_variables = pipeline.resolve_variables(&context.options.variables)?;
    let execution_id = uuid::Uuid::new_v4().to_string();
    let console = context
        .console
        .clone()
        .map(|console| ConsoleView::new(console, &pipeline));
    let mut execution = Execution {
        observers: Observers {
            report: Report::new(&pipeline.name, &execution_id),
            events: EventBus {
                targets: Vec::new(),
                pipeline: pipeline.name.clone(),
                execution_id: execution_id.clone(),
                trigger: (TRIGGER.0.into(), TRIGGER.1.into()),
                attempt: 1,
                failures: Vec::new(),
                console: context.console.clone(),
            },
            console,
            history: ApiHistory {
                aws: context.aws,
                pipeline: pipeline.name.clone(),
                execution_id: execution_id.clone(),
            },
        },
        context: &context,
        template,
        functions,
        hosts: HashMap::new(),
        bin_dir,
        pipeline,
        execution_id,
        artifacts: HashMap::new(),
        variables: {
            let mut variables = Variables::default();
            variables.set("variables", pipeline_variables);
            variables
        },
        build_logs: HashMap::new(),
        source_archive: crate::zips::zip_folder(&context.options.source)
            .map_err(|e| format!("cannot zip {}: {e}", context.options.source.display())),
    };
    execution.provision().await?;
    let ended = execution.run_stages().await;
    let observers = &mut execution.observers;
    observers.report.finish(
        execution.context.aws,
        execution.context.slack,
        &execution.artifacts,
        &execution.variables,
        &observers.events.failures,
    );
    for host in execution.hosts.values() {
        host.shutdown().await;
    }
    observers.events.shutdown().await;
    Ok(ended)
}

/// Whether `--fail FLAG` names this action (`ACTION` or `STAGE.ACTION`).
fn names_action(flag: &str, stage: &str, action: &ActionDef) -> bool {
    match flag.split_once('.') {
        Some((s, a)) => s == stage && a == action.name,
        None => flag == action.name,
    }
}

/// The pipeline to run: the one `--pipeline` names, or the template's only one.
fn choose_pipeline<'t>(
    template: &'t Template,
    chosen: Option<&str>,
    path: &std::path::Path,
) -> Result<(&'t String, &'t serde_json::Value), String> {
    let pipelines: Vec<(&String, &serde_json::Value)> = template
        .resources_of_type("AWS::CodePipeline::Pipeline")
        .collect();
    let ids = || {
        pipelines
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (chosen, pipelines.as_slice()) {
        (_, []) => Err(format!(
            "{} declares no AWS::CodePipeline::Pipeline",
            path.display()
        )),
        (Some(id), _) => pipelines
            .iter()
            .find(|(logical_id, _)| logical_id.as_str() == id)
            .copied()
            .ok_or_else(|| {
                format!(
                    "--pipeline {id}: {} declares no pipeline of that logical id (its pipelines: {})",
                    path.display(),
                    ids()
                )
            }),
        (None, [only]) => Ok(*only),
        (None, _) => Err(format!(
            "{} declares {} pipelines ({}): choose one with --pipeline LOGICAL_ID",
            path.display(),
            pipelines.len(),
            ids()
        )),
    }
}

/// Every `--fail` and `--skip` names an action of the pipeline; a typo is an error, not a
/// quiet success.
fn named_actions_exist(
    pipeline: &PipelineDef,
    option: &str,
    flags: &[String],
) -> Result<(), String> {
    let actions: Vec<(&str, &ActionDef)> = pipeline
        .stages
        .iter()
        .flat_map(|s| s.actions.iter().map(move |a| (s.name.as_str(), a)))
        .collect();
    for flag in flags {
        if !actions
            .iter()
            .any(|(stage, a)| names_action(flag, stage, a))
        {
            let known: Vec<String> = actions
                .iter()
                .map(|(stage, a)| format!("{stage}.{}", a.name))
                .collect();
            return Err(format!(
                "{option} {flag}: the pipeline has no such action (its actions: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}
