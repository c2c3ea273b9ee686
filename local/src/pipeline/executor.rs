//! Runs the pipeline: resources from the template, then stage by stage, action by action (in
//! `RunOrder`), stopping at the first failed stage as CodePipeline does.

use super::approval::{self, ApprovalRequest};
use super::events::{EventBus, EventTarget};
use super::model::{ActionDef, PipelineDef, StageDef, Variables};
use super::report::{ActionResult, ActionState, Report};
use super::template::{FunctionDef, Template};
use super::{ExecutionContext, ExecutionState};
use crate::job_invocation::run_job;
use crate::runtime_api::{FunctionHost, FunctionSpec, Outcome};
use md5::{Digest as _, Md5};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const SLACK_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:pipeline-local/slack";
const DATABASE_SECRET_ARN: &str =
    "arn:aws:secretsmanager:us-east-1:000000000000:secret:pipeline-local/database";
/// The RDS instance the example pipeline snapshots (`DatabaseInstanceIdentifier`).
const DATABASE_INSTANCE: &str = "demo-db";

/// Where a built artifact is.
#[derive(Clone, Debug)]
pub struct ArtifactLocation {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
}

/// A Lambda invoke action's job, ready to run.
struct PreparedJob {
    /// The logical id of the function (its instance in `Execution::hosts`).
    function: String,
    /// Its binary, for messages.
    binary: String,
    event: Value,
    outputs: Vec<(String, ArtifactLocation)>,
}

/// One execution of the pipeline, as it progresses.
struct Execution<'a> {
    context: &'a ExecutionContext<'a>,
    template: Template,
    functions: Vec<FunctionDef>,
    hosts: HashMap<String, FunctionHost>,
    bin_dir: PathBuf,
    pipeline: PipelineDef,
    execution_id: String,
    artifacts: HashMap<String, ArtifactLocation>,
    variables: Variables,
    events: EventBus,
    report: Report,
    /// The source folder zipped once, as the S3 source action delivers it (or why it cannot be).
    source_archive: Result<Vec<u8>, String>,
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

/// Executes the template's pipeline once; `Ok(true)` when it succeeded.
pub async fn execute(context: ExecutionContext<'_>) -> Result<bool, String> {
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
    let (logical_id, resource) = template
        .resources_of_type("AWS::CodePipeline::Pipeline")
        .next()
        .ok_or_else(|| {
            format!(
                "{} declares no AWS::CodePipeline::Pipeline",
                context.options.template.display()
            )
        })?;
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
    forced_failures_exist(&pipeline, &context.options.fail)?;
    let execution_id = uuid::Uuid::new_v4().to_string();
    let mut execution = Execution {
        events: EventBus {
            targets: Vec::new(),
            pipeline: pipeline.name.clone(),
            execution_id: execution_id.clone(),
            trigger: ("StartPipelineExecution".into(), "pipeline-local run".into()),
            attempt: 1,
            failures: Vec::new(),
            console: context.console.clone(),
        },
        report: Report::new(&pipeline.name, &execution_id),
        context: &context,
        template,
        functions,
        hosts: HashMap::new(),
        bin_dir,
        pipeline,
        execution_id,
        artifacts: HashMap::new(),
        variables: Variables::default(),
        source_archive: crate::zips::zip_folder(&context.options.source)
            .map_err(|e| format!("cannot zip {}: {e}", context.options.source.display())),
    };
    execution.show_shape();
    execution.provision().await?;
    let succeeded = execution.run_stages().await;
    execution.report.finish(
        execution.context.aws,
        execution.context.slack,
        &execution.artifacts,
        &execution.variables,
        &execution.events.failures,
    );
    for host in execution.hosts.values() {
        host.shutdown().await;
    }
    execution.events.shutdown().await;
    Ok(succeeded)
}

/// Whether `--fail FLAG` names this action (`ACTION` or `STAGE.ACTION`).
fn names_action(flag: &str, stage: &str, action: &ActionDef) -> bool {
    match flag.split_once('.') {
        Some((s, a)) => s == stage && a == action.name,
        None => flag == action.name,
    }
}

/// Every `--fail` names an action of the pipeline; a typo is an error, not a quiet success.
fn forced_failures_exist(pipeline: &PipelineDef, flags: &[String]) -> Result<(), String> {
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
                "--fail {flag}: the pipeline has no such action (its actions: {})",
                known.join(", ")
            ));
        }
    }
    Ok(())
}

impl Execution<'_> {
    /// Creates what the template's resources would be, and the secrets the parameters name.
    async fn provision(&mut self) -> Result<(), String> {
        let aws = self.context.aws;
        for (id, resource) in self.template.resources() {
            let physical = self
                .template
                .physical_id(id, resource)
                .map_err(|e| e.to_string())?;
            match resource["Type"].as_str().unwrap_or_default() {
                "AWS::S3::Bucket" => aws
                    .s3
                    .create_bucket(&physical)
                    .map_err(|e| format!("bucket {physical}: {e}"))?,
                "AWS::DynamoDB::Table" => {
                    let properties = self
                        .template
                        .resolve(&resource["Properties"])
                        .map_err(|e| e.to_string())?;
                    let mut key: Vec<(String, String)> = properties["KeySchema"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|k| {
                            (
                                k["KeyType"].as_str().unwrap_or("").to_string(),
                                k["AttributeName"].as_str().unwrap_or("").to_string(),
                            )
                        })
                        .collect();
                    key.sort();
                    let names: Vec<&str> = key.iter().map(|(_, n)| n.as_str()).collect();
                    aws.dynamodb.create_table(&physical, &names);
                }
                "AWS::CloudWatch::Alarm" => aws.cloudwatch.set_alarm(
                    &physical,
                    "OK",
                    "pipeline-local: no datapoints breach the threshold",
                ),
                _ => {}
            }
        }
        for pair in &self.context.options.alarms {
            let (name, state) = pair
                .split_once('=')
                .filter(|(_, s)| matches!(*s, "OK" | "ALARM" | "INSUFFICIENT_DATA"))
                .ok_or_else(|| {
                    format!("--alarm {pair}: expected NAME=OK|ALARM|INSUFFICIENT_DATA")
                })?;
            aws.cloudwatch
                .set_alarm(name, state, "set by pipeline-local run --alarm");
        }
        aws.secrets.put(
            SLACK_SECRET_ARN,
            json!({"bot_token": approval::BOT_TOKEN, "signing_secret": approval::SIGNING_SECRET}),
        );
        aws.secrets
            .put(DATABASE_SECRET_ARN, self.context.database.secret.clone());
        // The RDS instance the example's snapshot is taken of: the SQLite file is really
        // copied, a server database only recorded.
        let secret = &self.context.database.secret;
        let engine = secret["engine"].as_str().unwrap_or("sqlite");
        let sqlite_file = (engine == "sqlite")
            .then(|| secret["dbname"].as_str().map(std::path::Path::new))
            .flatten();
        aws.rds.add_instance(DATABASE_INSTANCE, engine, sqlite_file);
        let notifiers: Vec<FunctionDef> = self
            .functions
            .iter()
            .filter(|f| f.events.values().any(|e| e["Type"] == "EventBridgeRule"))
            .cloned()
            .collect();
        for function in notifiers {
            for event in function
                .events
                .values()
                .filter(|e| e["Type"] == "EventBridgeRule")
            {
                let host = self.start_host(&function).await?;
                self.events.targets.push(EventTarget {
                    function: function.binary.clone(),
                    host,
                    pattern: event["Properties"]["Pattern"].clone(),
                });
            }
        }
        let source = self
            .pipeline
            .stages
            .iter()
            .flat_map(|s| &s.actions)
            .find(|a| a.category == "Source");
        // The revision is the archive's MD5 (its S3 ETag): the same folder is the same revision
        // from one run to the next, so the approval can tell what changed since the last release.
        let revision_id = match &self.source_archive {
            Ok(bytes) => hex::encode(Md5::digest(bytes)),
            Err(_) => "unavailable".to_string(),
        };
        let options = &self.context.options;
        let revision_summary = options
            .revision_summary
            .clone()
            .unwrap_or_else(|| format!("{} (pipeline-local run)", options.source.display()));
        aws.codepipeline.register_execution_with_sources(
            json!({
                "pipelineName": self.pipeline.name, "pipelineExecutionId": self.execution_id,
                "status": "InProgress", "pipelineVersion": 1,
                "executionMode": self.pipeline.execution_mode, "executionType": "STANDARD",
                "artifactRevisions": source.map(|a| vec![json!({"name": a.outputs.first().cloned().unwrap_or_default(),
                    "revisionId": revision_id, "revisionSummary": revision_summary})]).unwrap_or_default(),
                "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": "pipeline-local run"}
            }),
            source
                .map(|a| vec![json!({"actionName": a.name, "revisionId": revision_id, "revisionSummary": revision_summary})])
                .unwrap_or_default(),
        );
        self.variables.set(
            "codepipeline",
            [("PipelineExecutionId".to_string(), self.execution_id.clone())],
        );
        Ok(())
    }

    async fn start_host(&self, function: &FunctionDef) -> Result<FunctionHost, String> {
        let mut spec = FunctionSpec::new(&function.binary, self.bin_dir.join(&function.binary));
        spec.env = self.context.aws.function_env();
        spec.env.extend(function.environment.iter().cloned());
        spec.env
            .push(("SLACK_API_URL".into(), self.context.slack_url.clone()));
        spec.timeout = Duration::from_secs(function.timeout_seconds);
        spec.memory_mb = function.memory_mb;
        spec.echo_logs = self.context.options.verbose;
        FunctionHost::start(spec)
            .await
            .map_err(|e| format!("cannot host {}: {e}", function.binary))
    }

    /// The pipeline's stages and actions, for the console.
    fn show_shape(&self) {
        let Some(console) = &self.context.console else {
            return;
        };
        let stages: Vec<crate::console::model::StageShape> = self
            .pipeline
            .stages
            .iter()
            .map(|stage| {
                let mut notes = Vec::new();
                let rules = |conditions: &[super::model::ConditionDef]| {
                    conditions.iter().map(|c| c.rules.len()).sum::<usize>()
                };
                if !stage.before_entry.is_empty() {
                    notes.push(format!("BeforeEntry: {} rules", rules(&stage.before_entry)));
                }
                if !stage.on_success.is_empty() {
                    notes.push(format!("OnSuccess: {} rules", rules(&stage.on_success)));
                }
                if let Some(result) = &stage.on_failure {
                    notes.push(format!("OnFailure: {result}"));
                }
                crate::console::model::StageShape {
                    name: stage.name.clone(),
                    notes,
                    actions: stage
                        .actions
                        .iter()
                        .map(|a| crate::console::model::ActionShape {
                            name: a.name.clone(),
                            category: a.category.clone(),
                            provider: a.provider.clone(),
                            run_order: a.run_order,
                        })
                        .collect(),
                }
            })
            .collect();
        let name = self.pipeline.name.clone();
        let mode = self.pipeline.execution_mode.clone();
        console.update(|record| {
            record.pipeline = name;
            record.execution_mode = mode;
            record.stages = stages;
        });
    }

    /// The host of the function a Lambda invoke action runs, once started.
    fn action_host(&self, action: &ActionDef) -> Option<&FunctionHost> {
        let function = self.function(&action.config("FunctionName")?)?;
        self.hosts.get(&function.logical_id)
    }

    /// What only the local run knows of a finished action, for the console: its notes (each
    /// invocation of a continued job), output variables, artifacts and the function's log
    /// lines since `log_mark`.
    fn show_action_details(
        &self,
        stage: &str,
        action: &ActionDef,
        result: &ActionResult,
        log_mark: usize,
    ) {
        let Some(console) = &self.context.console else {
            return;
        };
        // The console keeps the last lines of a chatty action, not all of them: the record is
        // rewritten on every change.
        const MAX_LOG_LINES: usize = 2_000;
        let mut logs: Vec<String> = self
            .action_host(action)
            .map(|h| h.logs().into_iter().skip(log_mark).collect())
            .unwrap_or_default();
        if logs.len() > MAX_LOG_LINES {
            let dropped = logs.len() - MAX_LOG_LINES;
            logs.drain(..dropped);
            logs.insert(0, format!("({dropped} earlier lines not kept)"));
        }
        let variables: Vec<(String, String)> = action
            .namespace
            .as_ref()
            .and_then(|ns| self.variables.namespaces.get(ns))
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let artifact = |name: &String| {
            self.artifacts
                .get(name)
                .map(|at| crate::console::model::ArtifactRef {
                    name: name.clone(),
                    bucket: at.bucket.clone(),
                    key: at.key.clone(),
                })
        };
        let inputs: Vec<_> = action.inputs.iter().filter_map(artifact).collect();
        let outputs: Vec<_> = action.outputs.iter().filter_map(artifact).collect();
        let notes = result.notes.clone();
        let id = self.execution_id.clone();
        console.update(|record| {
            let run = record.execution_mut(&id).action_mut(stage, &action.name);
            run.notes = notes;
            run.logs = logs;
            run.variables = variables;
            run.inputs = inputs;
            run.outputs = outputs;
        });
    }

    /// The function an action's `FunctionName` (name or ARN) is.
    fn function(&self, reference: &str) -> Option<&FunctionDef> {
        self.functions
            .iter()
            .find(|f| f.name == reference || f.arn == reference || f.logical_id == reference)
    }

    async fn host(&mut self, function: &FunctionDef) -> Result<&FunctionHost, String> {
        if !self.hosts.contains_key(&function.logical_id) {
            let host = self.start_host(function).await?;
            self.hosts.insert(function.logical_id.clone(), host);
        }
        Ok(&self.hosts[&function.logical_id])
    }

    /// Runs stage after stage, stopping at the first that fails; true when all succeeded. A
    /// failed stage whose `OnFailure` is `ROLLBACK` (or whose `OnSuccess` condition says
    /// `ROLLBACK`) is then rolled back in an execution of its own, as CodePipeline does.
    async fn run_stages(&mut self) -> bool {
        self.report.header(
            &self.context.options.template,
            &self.context.options.source,
            &self.context.database.label,
            &self.pipeline.execution_mode,
        );
        self.events.pipeline(ExecutionState::Started).await;
        let stages = self.pipeline.stages.clone();
        let mut failed = None;
        for stage in &stages {
            let inputs = self.stage_inputs();
            match self.run_stage_with_conditions(stage, true).await {
                None => self.context.aws.codepipeline.record_stage_success(
                    &self.pipeline.name,
                    &self.execution_id,
                    &stage.name,
                    inputs,
                ),
                Some(roll_back) => {
                    failed = Some((stage, roll_back));
                    break;
                }
            }
        }
        let state = if failed.is_some() {
            ExecutionState::Failed
        } else {
            ExecutionState::Succeeded
        };
        self.finish_execution(state).await;
        self.report.pipeline_finished(state);
        if let Some((stage, true)) = failed {
            self.rollback(stage).await;
        }
        failed.is_none()
    }

    /// One stage as CodePipeline V2 runs it: `BeforeEntry` conditions, the actions, one
    /// automatic retry when `OnFailure` says `RETRY`, then `OnSuccess` conditions. `None` when
    /// the stage succeeded, else whether it is to be rolled back.
    async fn run_stage_with_conditions(&mut self, stage: &StageDef, checked: bool) -> Option<bool> {
        self.report.stage(&stage.name);
        let no_conditions = Vec::new();
        let (before_entry, on_success) = if checked {
            (&stage.before_entry, &stage.on_success)
        } else {
            (&no_conditions, &no_conditions)
        };
        if let Some((result, why)) = self.check_conditions("BeforeEntry", stage, before_entry) {
            println!("  the stage is not entered ({result}): {why}");
            self.events.stage(&stage.name, ExecutionState::Failed).await;
            self.report
                .stage_finished(&stage.name, ExecutionState::Failed);
            return Some(false);
        }
        self.events
            .stage(&stage.name, ExecutionState::Started)
            .await;
        let mut succeeded = Vec::new();
        let mut ok = self.run_actions(stage, &mut succeeded).await;
        if !ok && stage.on_failure.as_deref() == Some("RETRY") {
            if stage.retry_mode == "ALL_ACTIONS" {
                succeeded.clear();
            }
            println!(
                "  ↻ OnFailure: RETRY ({}): attempt 2 of {}",
                stage.retry_mode, stage.name
            );
            self.events.attempt = 2;
            self.report.attempt = 2;
            self.events
                .stage(&stage.name, ExecutionState::Started)
                .await;
            ok = self.run_actions(stage, &mut succeeded).await;
        }
        let mut roll_back = stage.on_failure.as_deref() == Some("ROLLBACK");
        if ok {
            if let Some((result, why)) = self.check_conditions("OnSuccess", stage, on_success) {
                println!("  the stage fails on its OnSuccess condition ({result}): {why}");
                ok = false;
                roll_back = result == "ROLLBACK";
            }
        }
        let state = if ok {
            ExecutionState::Succeeded
        } else {
            ExecutionState::Failed
        };
        self.events.stage(&stage.name, state).await;
        self.events.attempt = 1;
        self.report.attempt = 1;
        self.report.stage_finished(&stage.name, state);
        (!ok).then_some(roll_back)
    }

    /// Checks a stage's conditions of one kind, adding each rule to the timeline and to
    /// `ListRuleExecutions`; the result and why of the first condition not met.
    fn check_conditions(
        &mut self,
        kind: &str,
        stage: &StageDef,
        conditions: &[super::model::ConditionDef],
    ) -> Option<(String, String)> {
        let mut checked = Vec::new();
        let unmet = super::conditions::first_unmet(
            kind,
            &stage.name,
            conditions,
            &self.variables,
            self.context.aws,
            &mut checked,
        );
        self.register_rule_results(&stage.name, &checked);
        if let Some(console) = &self.context.console {
            let rules: Vec<crate::console::model::RuleRun> = checked
                .iter()
                .map(|c| crate::console::model::RuleRun {
                    stage: stage.name.clone(),
                    kind: c.kind.to_string(),
                    rule: c.rule.name.clone(),
                    provider: c.rule.provider.clone(),
                    state: c.state().to_string(),
                    summary: c.summary(),
                })
                .collect();
            let id = self.execution_id.clone();
            console.update(|record| record.execution_mut(&id).rules.extend(rules));
        }
        self.report.conditions(
            &stage.name,
            checked
                .iter()
                .map(|c| (format!("{} rule {}", c.kind, c.rule.name), c.state()))
                .collect(),
        );
        unmet
    }

    /// Makes the rules checked visible to `ListRuleExecutions`, as CodePipeline records them.
    /// A rule pipeline-local cannot check is `Abandoned` (its run never happened), with why.
    fn register_rule_results(&self, stage: &str, checked: &[super::conditions::CheckedRule]) {
        use super::conditions::RuleOutcome;
        let now = epoch_seconds();
        let details = checked
            .iter()
            .map(|c| {
                let status = match c.outcome {
                    RuleOutcome::Met(_) => "Succeeded",
                    RuleOutcome::NotMet(_) => "Failed",
                    RuleOutcome::NotEmulated(_) => "Abandoned",
                };
                let mut result = json!({"externalExecutionSummary": c.summary()});
                if status == "Failed" {
                    result["errorDetails"] = json!({"code": "RuleFailed", "message": c.summary()});
                }
                json!({"pipelineExecutionId": self.execution_id, "ruleExecutionId": uuid::Uuid::new_v4().to_string(),
                    "pipelineVersion": 1, "stageName": stage, "ruleName": c.rule.name,
                    "startTime": now, "lastUpdateTime": now, "status": status,
                    "input": {"ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": c.rule.provider, "version": "1"},
                        "configuration": c.rule.configuration},
                    "output": {"executionResult": result}})
            })
            .collect();
        self.context.aws.codepipeline.register_rule_executions(
            &self.pipeline.name,
            &self.execution_id,
            details,
        );
    }

    /// Runs a stage's actions in `RunOrder`, skipping those in `succeeded` (a retry of failed
    /// actions) and adding the ones that succeed; actions of the same `RunOrder` run side by
    /// side, as CodePipeline runs them. Stops after the first group with a failure. True when
    /// none failed (skipped actions do not fail a stage).
    async fn run_actions(&mut self, stage: &StageDef, succeeded: &mut Vec<String>) -> bool {
        let pending: Vec<&ActionDef> = stage
            .actions
            .iter()
            .filter(|a| !succeeded.contains(&a.name))
            .collect();
        let mut groups: Vec<Vec<&ActionDef>> = Vec::new();
        for action in pending {
            match groups.last_mut() {
                Some(group) if group[0].run_order == action.run_order => group.push(action),
                _ => groups.push(vec![action]),
            }
        }
        for group in groups {
            let mut started = Vec::new();
            let log_marks: Vec<usize> = group
                .iter()
                .map(|a| self.action_host(a).map_or(0, |h| h.logs().len()))
                .collect();
            for action in &group {
                self.report.action_started(&stage.name, action);
                self.events
                    .action(&stage.name, action, ExecutionState::Started, None)
                    .await;
                started.push(Instant::now());
            }
            let results = self.run_group(&stage.name, &group).await;
            let mut group_failed = false;
            for (((action, result), began), log_mark) in
                group.iter().zip(results).zip(started).zip(log_marks)
            {
                let state = match &result.state {
                    ActionState::Succeeded => ExecutionState::Succeeded,
                    ActionState::Failed => ExecutionState::Failed,
                    ActionState::Skipped => ExecutionState::Abandoned,
                };
                let failed = result.state == ActionState::Failed;
                if result.state != ActionState::Skipped {
                    self.register_result(&stage.name, action, failed, &result.summary);
                }
                self.events
                    .action(&stage.name, action, state, Some(&result.summary))
                    .await;
                self.show_action_details(&stage.name, action, &result, log_mark);
                self.report
                    .action_finished(&stage.name, action, result, began);
                if failed {
                    group_failed = true;
                } else {
                    succeeded.push(action.name.clone());
                }
            }
            if group_failed {
                return false;
            }
        }
        true
    }

    /// Runs the actions of one `RunOrder`: Lambda invoke actions of different functions at
    /// the same time (one local instance per function, so two actions of one function take
    /// turns), every other kind one after another. Results in the group's order.
    async fn run_group(&mut self, stage: &str, group: &[&ActionDef]) -> Vec<ActionResult> {
        if group.len() == 1 {
            return vec![self.action(stage, group[0]).await];
        }
        let mut results: Vec<Option<ActionResult>> = (0..group.len()).map(|_| None).collect();
        let mut prepared = Vec::new();
        let mut functions_taken = Vec::new();
        for (i, action) in group.iter().enumerate() {
            let parallel = matches!(
                (
                    action.category.as_str(),
                    action.owner.as_str(),
                    action.provider.as_str()
                ),
                ("Invoke", "AWS", "Lambda")
            ) && self.forced_failure(stage, action).is_none();
            if !parallel {
                continue;
            }
            match self.prepare_invoke(action).await {
                Ok(job) if !functions_taken.contains(&job.function) => {
                    functions_taken.push(job.function.clone());
                    prepared.push((i, job));
                }
                // Same function as another action of the group: it runs after them.
                Ok(_) => {}
                Err(result) => results[i] = Some(result),
            }
        }
        let aws = self.context.aws;
        let hosts = &self.hosts;
        let jobs = prepared.iter().map(|(_, job)| {
            let host = &hosts[&job.function];
            let snapshots_before: Vec<String> =
                aws.rds.snapshots().into_iter().map(|s| s.id).collect();
            async move {
                (
                    run_job(aws, host, job.event.clone(), 1000).await,
                    snapshots_before,
                )
            }
        });
        let finished = futures_util::future::join_all(jobs).await;
        for ((i, job), (outcome, snapshots_before)) in prepared.into_iter().zip(finished) {
            results[i] = Some(self.finish_invoke(group[i], job, outcome, snapshots_before));
        }
        for (i, action) in group.iter().enumerate() {
            if results[i].is_none() {
                results[i] = Some(self.action(stage, action).await);
            }
        }
        results.into_iter().flatten().collect()
    }

    /// The execution's status in CodePipeline and its final event.
    async fn finish_execution(&mut self, state: ExecutionState) {
        self.context.aws.codepipeline.set_execution_status(
            &self.pipeline.name,
            &self.execution_id,
            state.api_name(),
        );
        self.events.pipeline(state).await;
    }

    /// What a stage runs with: the artifacts and variables so far.
    fn stage_inputs(&self) -> Value {
        let artifacts: serde_json::Map<String, Value> = self
            .artifacts
            .iter()
            .map(|(name, at)| (name.clone(), json!({"bucket": at.bucket, "key": at.key})))
            .collect();
        json!({"artifacts": artifacts, "variables": self.variables.namespaces})
    }

    /// Rolls `stage` back: a new execution of type ROLLBACK (trigger `AutomatedRollback`) runs
    /// the stage again with the artifacts and variables of its last successful execution.
    async fn rollback(&mut self, stage: &StageDef) {
        let codepipeline = &self.context.aws.codepipeline;
        let Some((target, inputs)) =
            codepipeline.last_success_of_stage(&self.pipeline.name, &stage.name)
        else {
            self.report.rollback_impossible(&stage.name);
            return;
        };
        let failed_execution = self.execution_id.clone();
        let rollback_id = uuid::Uuid::new_v4().to_string();
        // A rollback deploys the target's revisions again.
        let (target_execution, target_sources) = codepipeline
            .execution(&self.pipeline.name, &target)
            .unwrap_or_default();
        codepipeline.register_execution_with_sources(json!({
            "pipelineName": self.pipeline.name, "pipelineExecutionId": rollback_id,
            "status": "InProgress", "pipelineVersion": 1,
            "artifactRevisions": target_execution["artifactRevisions"].as_array().cloned().unwrap_or_default(),
            "trigger": {"triggerType": "AutomatedRollback", "triggerDetail": failed_execution},
            "executionType": "ROLLBACK",
            "executionMode": self.pipeline.execution_mode,
            "rollbackMetadata": {"rollbackTargetPipelineExecutionId": target}
        }), target_sources);
        self.execution_id = rollback_id.clone();
        self.events.execution_id = rollback_id.clone();
        self.events.trigger = ("AutomatedRollback".into(), failed_execution);
        self.artifacts = inputs["artifacts"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, at)| {
                let text = |k: &str| at[k].as_str().unwrap_or_default().to_string();
                (
                    name.clone(),
                    ArtifactLocation {
                        bucket: text("bucket"),
                        key: text("key"),
                    },
                )
            })
            .collect();
        self.variables = Variables::default();
        for (namespace, values) in inputs["variables"].as_object().into_iter().flatten() {
            let values = values
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()));
            self.variables.set(namespace, values);
        }
        self.variables.set(
            "codepipeline",
            [("PipelineExecutionId".to_string(), rollback_id.clone())],
        );
        self.report
            .rollback_started(&stage.name, &rollback_id, &target);
        self.events.pipeline(ExecutionState::Started).await;
        // The rollback restores what worked; gating it on the conditions that just failed
        // would keep the broken release in place.
        let state = match self.run_stage_with_conditions(stage, false).await {
            None => ExecutionState::Succeeded,
            Some(_) => ExecutionState::Failed,
        };
        self.finish_execution(state).await;
        self.report.rollback_finished(state);
    }

    /// Makes an action's result visible to `ListActionExecutions`, as CodePipeline records it.
    fn register_result(&self, stage: &str, action: &ActionDef, failed: bool, message: &str) {
        let now = epoch_seconds();
        self.context.aws.codepipeline.register_action_executions(
            &self.pipeline.name,
            &self.execution_id,
            vec![json!({"pipelineExecutionId": self.execution_id, "actionExecutionId": uuid::Uuid::new_v4().to_string(),
                "stageName": stage, "actionName": action.name, "startTime": now, "lastUpdateTime": now,
                "status": if failed { "Failed" } else { "Succeeded" },
                "input": {"actionTypeId": {"category": action.category, "owner": action.owner, "provider": action.provider, "version": "1"}},
                "output": {"executionResult": if failed {
                    json!({"externalExecutionSummary": message, "errorDetails": {"code": "JobFailed", "message": message}})
                } else {
                    json!({"externalExecutionSummary": message})
                }}})],
        );
    }

    /// The `--fail` flag naming this action, if any.
    fn forced_failure(&self, stage: &str, action: &ActionDef) -> Option<&String> {
        self.context
            .options
            .fail
            .iter()
            .find(|flag| names_action(flag, stage, action))
    }

    async fn action(&mut self, stage: &str, action: &ActionDef) -> ActionResult {
        if let Some(flag) = self.forced_failure(stage, action) {
            return ActionResult::failed(format!(
                "forced to fail by `--fail {flag}`; the action did not run"
            ));
        }
        match (
            action.category.as_str(),
            action.owner.as_str(),
            action.provider.as_str(),
        ) {
            ("Source", "AWS", "S3") => self.s3_source(action),
            ("Invoke", "AWS", "Lambda") => self.invoke(action).await,
            ("Approval", "AWS", "Manual") => self.approval(stage, action).await,
            _ => ActionResult::skipped(format!(
                "{} actions are not emulated by pipeline-local (they run on AWS only)",
                action.kind()
            )),
        }
    }

    fn new_artifact(&self, name: &str) -> ArtifactLocation {
        let short: String = uuid::Uuid::new_v4().simple().to_string()[..7].to_string();
        let pipeline: String = self.pipeline.name.chars().take(20).collect();
        let folder: String = name.chars().take(20).collect();
        ArtifactLocation {
            bucket: self.pipeline.artifact_bucket.clone(),
            key: format!("{pipeline}/{folder}/{short}"),
        }
    }

    fn s3_source(&mut self, action: &ActionDef) -> ActionResult {
        let (Some(bucket), Some(key)) = (action.config("S3Bucket"), action.config("S3ObjectKey"))
        else {
            return ActionResult::failed(
                "the S3 source action needs S3Bucket and S3ObjectKey".into(),
            );
        };
        let folder = &self.context.options.source;
        let zipped = match &self.source_archive {
            Ok(bytes) => bytes.clone(),
            Err(e) => return ActionResult::failed(e.clone()),
        };
        let aws = self.context.aws;
        if let Err(e) = aws.s3.put_file(&bucket, &key, &zipped) {
            return ActionResult::failed(format!("cannot write s3://{bucket}/{key}: {e}"));
        }
        let mut notes = vec![format!(
            "{} zipped ({} bytes) to s3://{bucket}/{key}",
            folder.display(),
            zipped.len()
        )];
        for output in &action.outputs {
            let location = self.new_artifact(output);
            if let Err(e) = aws.s3.put_file(&location.bucket, &location.key, &zipped) {
                return ActionResult::failed(format!("cannot write the artifact {output}: {e}"));
            }
            notes.push(format!(
                "artifact {output} → s3://{}/{}",
                location.bucket, location.key
            ));
            self.artifacts.insert(output.clone(), location);
        }
        if let Some(namespace) = &action.namespace {
            self.variables.set(
                namespace,
                [
                    ("BucketName".to_string(), bucket.clone()),
                    ("ObjectKey".to_string(), key.clone()),
                ],
            );
        }
        let summary = notes.remove(0);
        ActionResult::succeeded(summary, notes)
    }

    async fn invoke(&mut self, action: &ActionDef) -> ActionResult {
        let job = match self.prepare_invoke(action).await {
            Ok(job) => job,
            Err(result) => return result,
        };
        let aws = self.context.aws;
        let snapshots_before: Vec<String> = aws.rds.snapshots().into_iter().map(|s| s.id).collect();
        let outcome = run_job(aws, &self.hosts[&job.function], job.event.clone(), 1000).await;
        self.finish_invoke(action, job, outcome, snapshots_before)
    }

    /// The job of a Lambda invoke action, its function's instance started; the failure to
    /// report when it cannot be made (no such function, an unresolved variable…).
    async fn prepare_invoke(&mut self, action: &ActionDef) -> Result<PreparedJob, ActionResult> {
        let Some(reference) = action.config("FunctionName") else {
            return Err(ActionResult::failed(
                "the Lambda invoke action has no FunctionName".into(),
            ));
        };
        let Some(function) = self.function(&reference).cloned() else {
            return Err(ActionResult::skipped(format!(
                "FunctionName {reference} is not a function of this template"
            )));
        };
        let user_parameters = match action
            .config("UserParameters")
            .map(|p| self.variables.substitute(&p))
            .transpose()
        {
            Ok(p) => p,
            Err(e) => return Err(ActionResult::failed(e)),
        };
        let mut inputs = Vec::new();
        for name in &action.inputs {
            match self.artifacts.get(name) {
                Some(location) => inputs.push(artifact_json(name, location)),
                None => {
                    return Err(ActionResult::failed(format!(
                        "input artifact {name} was not produced by an earlier action"
                    )))
                }
            }
        }
        let outputs: Vec<(String, ArtifactLocation)> = action
            .outputs
            .iter()
            .map(|name| (name.clone(), self.new_artifact(name)))
            .collect();
        let mut configuration = json!({"FunctionName": function.name});
        if let Some(p) = &user_parameters {
            configuration["UserParameters"] = json!(p);
        }
        let event = json!({"CodePipeline.job": {
            "id": crate::job_invocation::new_job_id(),
            "accountId": super::template::ACCOUNT_ID,
            "data": {
                "actionConfiguration": {"configuration": configuration},
                "inputArtifacts": inputs,
                "outputArtifacts": outputs.iter().map(|(n, l)| artifact_json(n, l)).collect::<Vec<_>>()
            }
        }});
        self.host(&function).await.map_err(ActionResult::failed)?;
        Ok(PreparedJob {
            function: function.logical_id.clone(),
            binary: function.binary.clone(),
            event,
            outputs,
        })
    }

    /// What a finished job means for the action: its result, output variables and artifacts.
    fn finish_invoke(
        &mut self,
        action: &ActionDef,
        job: PreparedJob,
        outcome: Result<crate::job_invocation::JobRun, crate::job_invocation::JobEventError>,
        snapshots_before: Vec<String>,
    ) -> ActionResult {
        let aws = self.context.aws;
        let outputs = job.outputs;
        let binary = job.binary;
        let job = match outcome {
            Ok(job) => job,
            Err(e) => return ActionResult::failed(e.to_string()),
        };
        let invocations = job.invocations.len();
        // What the invocations before the last one said (a snapshot being created, a batch).
        let results = job.results();
        let mut steps: Vec<String> = results[..results.len().saturating_sub(1)]
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let said = r.pointer("/executionDetails/summary")?.as_str()?;
                Some(format!("invocation {}: {}", i + 1, said.replace('\n', " ")))
            })
            .collect();
        for snapshot in aws.rds.snapshots() {
            if !snapshots_before.contains(&snapshot.id) {
                steps.push(match &snapshot.file {
                    Some(file) => format!(
                        "RDS snapshot {} of {} ({}): database copied to {}",
                        snapshot.id,
                        snapshot.of,
                        snapshot.status,
                        file.display()
                    ),
                    None => format!(
                        "RDS snapshot {} of {} ({})",
                        snapshot.id, snapshot.of, snapshot.status
                    ),
                });
            }
        }
        let last = job.record.as_ref().and_then(|r| r.results.last().cloned());
        if job.succeeded() {
            let last = last.unwrap_or(Value::Null);
            let variables: Vec<(String, String)> = last["outputVariables"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect();
            if let Some(namespace) = &action.namespace {
                self.variables.set(namespace, variables.clone());
            }
            let mut notes = Vec::new();
            if invocations > 1 {
                notes.push(format!("{invocations} invocations (continuation tokens)"));
            }
            notes.append(&mut steps);
            for (name, location) in outputs {
                notes.push(format!(
                    "artifact {name} → s3://{}/{}",
                    location.bucket, location.key
                ));
                self.artifacts.insert(name, location);
            }
            let summary = last["executionDetails"]["summary"]
                .as_str()
                .unwrap_or("succeeded")
                .to_string();
            return ActionResult::succeeded(summary, notes);
        }
        let reason = match (&job.record, last) {
            (Some(record), Some(last))
                if record.status == crate::codepipeline::JobStatus::Failed =>
            {
                last["failureDetails"]["message"]
                    .as_str()
                    .unwrap_or("failed")
                    .to_string()
            }
            _ => match job.invocations.last().map(|i| &i.outcome) {
                Some(Outcome::Timeout) => {
                    format!("{binary} timed out without reporting a result")
                }
                Some(other) => format!("{binary} reported no result: {other:?}"),
                None => "the function was not invoked".to_string(),
            },
        };
        ActionResult::failed(reason)
    }

    async fn approval(&mut self, stage: &str, action: &ActionDef) -> ActionResult {
        let custom_data = match action
            .config("CustomData")
            .map(|d| self.variables.substitute(&d))
            .transpose()
        {
            Ok(d) => d,
            Err(e) => return ActionResult::failed(e),
        };
        let topic = action.config("NotificationArn").unwrap_or_default();
        let subscribed: Vec<FunctionDef> = self
            .functions
            .iter()
            .filter(|f| {
                f.events.values().any(|e| {
                    e["Type"] == "SNS" && e["Properties"]["Topic"].as_str() == Some(topic.as_str())
                })
            })
            .cloned()
            .collect();
        let responder_def = self
            .template
            .resources_of_type("AWS::Serverless::Function")
            .find(|(_, r)| !r["Properties"]["FunctionUrlConfig"].is_null())
            .and_then(|(id, _)| self.functions.iter().find(|f| &f.logical_id == id).cloned());
        for function in subscribed.iter().chain(responder_def.iter()) {
            if let Err(e) = self.host(function).await {
                return ActionResult::failed(e);
            }
        }
        let notifiers: Vec<(String, &FunctionHost)> = subscribed
            .iter()
            .map(|f| (f.binary.clone(), &self.hosts[&f.logical_id]))
            .collect();
        let responder = responder_def.as_ref().map(|f| &self.hosts[&f.logical_id]);
        let request = ApprovalRequest {
            pipeline: &self.pipeline.name,
            stage,
            action: &action.name,
            execution_id: &self.execution_id,
            custom_data,
            external_link: action.config("ExternalEntityLink"),
        };
        let decider = match (self.context.options.approve, &self.context.console) {
            (Some(super::ApproveMode::Console), Some(console)) => {
                approval::Decider::Console(console)
            }
            _ => approval::Decider::Auto {
                reject: self.context.options.reject,
            },
        };
        match approval::decide(
            self.context.aws,
            self.context.slack,
            &notifiers,
            responder,
            &request,
            decider,
        )
        .await
        {
            Ok(outcome) if outcome.approved => {
                ActionResult::succeeded(outcome.summary, outcome.steps)
            }
            Ok(outcome) => ActionResult {
                state: ActionState::Failed,
                summary: outcome.summary,
                notes: outcome.steps,
            },
            Err(e) => ActionResult::failed(e),
        }
    }
}

/// Now, as the CodePipeline API's timestamps are: seconds since the epoch.
fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn artifact_json(name: &str, location: &ArtifactLocation) -> Value {
    json!({"name": name, "revision": null, "location": {"type": "S3",
        "s3Location": {"bucketName": location.bucket, "objectKey": location.key}}})
}
