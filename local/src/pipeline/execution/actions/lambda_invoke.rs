//! `Invoke`/`AWS`/`Lambda`: a CodePipeline job for the template's function the action names,
//! run through the local Runtime API and re-invoked on continuation tokens until it reports.

use super::ArtifactLocation;
use crate::job_invocation::run_job;
use crate::pipeline::execution::Execution;
use crate::pipeline::model::ActionDef;
use crate::pipeline::report::ActionResult;
use crate::runtime_api::Outcome;
use serde_json::{json, Value};

/// A Lambda invoke action's job, ready to run.
pub(in super::super) struct PreparedJob {
    /// The logical id of the function (its instance in `Execution::hosts`).
    pub(in super::super) function: String,
    /// Its binary, for messages.
    binary: String,
    pub(in super::super) event: Value,
    outputs: Vec<(String, ArtifactLocation)>,
}

impl Execution<'_> {
    pub(in super::super) async fn invoke(
        &mut self,
        stage: &str,
        action: &ActionDef,
    ) -> ActionResult {
        let job = match self.prepare_invoke(stage, action).await {
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
    pub(in super::super) async fn prepare_invoke(
        &mut self,
        stage: &str,
        action: &ActionDef,
    ) -> Result<PreparedJob, ActionResult> {
        let Some(reference) = action.config("FunctionName") else {
            return Err(ActionResult::failed(
                "the Lambda invoke action has no FunctionName".into(),
            ));
        };
        let Some(function) = self.function(&reference).cloned() else {
            return Err(self.cannot_run(
                stage,
                action,
                format!("FunctionName {reference} is not a function of this template"),
            ));
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
            "accountId": crate::pipeline::template::ACCOUNT_ID,
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
    pub(in super::super) fn finish_invoke(
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
}

fn artifact_json(name: &str, location: &ArtifactLocation) -> Value {
    json!({"name": name, "revision": null, "location": {"type": "S3",
        "s3Location": {"bucketName": location.bucket, "objectKey": location.key}}})
}
