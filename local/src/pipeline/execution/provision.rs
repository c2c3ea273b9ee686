//! What the template's resources would be (buckets, tables, alarms), the secrets the
//! parameters name, the RDS instance of the example, the event targets, and the function
//! instances actions run on.

use super::{Execution, DATABASE_INSTANCE, DATABASE_SECRET_ARN, SLACK_SECRET_ARN};
use crate::pipeline::approval;
use crate::pipeline::events::EventTarget;
use crate::pipeline::template::FunctionDef;
use crate::runtime_api::{FunctionHost, FunctionSpec};
use md5::{Digest as _, Md5};
use serde_json::json;
use std::time::Duration;

impl Execution<'_> {
    /// Creates what the template's resources would be, and the secrets the parameters name.
    pub(super) async fn provision(&mut self) -> Result<(), String> {
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
                self.observers.events.targets.push(EventTarget {
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
        // A git source's revision is its commit and message. An S3 source's is the archive's
        // MD5 (its S3 ETag): the same folder is the same revision from one run to the next, so
        // the approval can tell what changed since the last release.
        let options = &self.context.options;
        let git = source
            .filter(|a| super::actions::is_git_source(a))
            .map(|a| self.git_revision(a))
            .transpose()?;
        let (revision_id, revision_summary) = match git {
            Some((_, revision)) => (
                revision.commit,
                options.revision_summary.clone().unwrap_or(revision.message),
            ),
            None => (
                match &self.source_archive {
                    Ok(bytes) => hex::encode(Md5::digest(bytes)),
                    Err(_) => "unavailable".to_string(),
                },
                options.revision_summary.clone().unwrap_or_else(|| {
                    format!("{} (pipeline-local run)", options.source.display())
                }),
            ),
        };
        let resolved: Vec<serde_json::Value> = self
            .variables
            .namespaces
            .get("variables")
            .into_iter()
            .flatten()
            .map(|(name, value)| json!({"name": name, "resolvedValue": value}))
            .collect();
        aws.codepipeline.register_execution_with_sources(
            json!({
                "variables": resolved,
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

    pub(super) async fn start_host(&self, function: &FunctionDef) -> Result<FunctionHost, String> {
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

    /// The function an action's `FunctionName` (name or ARN) is.
    pub(super) fn function(&self, reference: &str) -> Option<&FunctionDef> {
        self.functions
            .iter()
            .find(|f| f.name == reference || f.arn == reference || f.logical_id == reference)
    }

    pub(super) async fn host(&mut self, function: &FunctionDef) -> Result<&FunctionHost, String> {
        if !self.hosts.contains_key(&function.logical_id) {
            let host = self.start_host(function).await?;
            self.hosts.insert(function.logical_id.clone(), host);
        }
        Ok(&self.hosts[&function.logical_id])
    }
}
