//! The executions of the local pipelines, their actions and their condition rules, as
//! `GetPipelineExecution`, `ListPipelineExecutions`, `ListActionExecutions` and
//! `ListRuleExecutions` answer them; kept in a JSON file of the
//! state folder when there is one, so a later `pipeline-local run` finds the earlier executions
//! (the approval message compares against the last successful one).

use crate::service::ServiceError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The file in a state folder that holds the history.
pub const HISTORY_FILE: &str = "codepipeline-executions.json";

/// One execution: its `GetPipelineExecution` object and what only the summaries carry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionRecord {
    /// The `pipelineExecution` object (`pipelineName` and `pipelineExecutionId` required).
    execution: Value,
    /// `sourceRevisions` of its summary: `{actionName, revisionId, revisionSummary, revisionUrl}`.
    #[serde(default)]
    source_revisions: Vec<Value>,
    /// Seconds since the epoch.
    start_time: f64,
    /// When it last changed (epoch seconds).
    last_update_time: f64,
    /// Registration order, so executions started in the same instant still list newest first.
    sequence: u64,
}

impl ExecutionRecord {
    /// Its pipeline.
    fn pipeline(&self) -> &str {
        self.execution["pipelineName"].as_str().unwrap_or_default()
    }
    /// Its id.
    fn id(&self) -> &str {
        self.execution["pipelineExecutionId"]
            .as_str()
            .unwrap_or_default()
    }
}

/// `ListActionExecutions` (or `ListRuleExecutions`) details of one execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DetailRecords {
    /// The pipeline.
    pipeline: String,
    /// The execution.
    execution_id: String,
    /// The details, as the API returns them.
    details: Vec<Value>,
}

/// What a stage ran with in an execution where it succeeded (pipeline-local's own record, for
/// rollbacks: `{"artifacts": {name: {bucket, key}}, "variables": {namespace: {name: value}}}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StageInputs {
    /// The pipeline.
    pipeline: String,
    /// The execution.
    execution_id: String,
    /// The stage.
    stage: String,
    /// Its artifacts and variables.
    inputs: Value,
}

/// What is kept in the state folder.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    /// Executions, oldest first.
    executions: Vec<ExecutionRecord>,
    /// Action executions per execution.
    action_executions: Vec<DetailRecords>,
    /// Rule executions per execution.
    #[serde(default)]
    rule_executions: Vec<DetailRecords>,
    /// What each successful stage ran with.
    #[serde(default)]
    succeeded_stages: Vec<StageInputs>,
}

/// Every execution known to the local CodePipeline.
#[derive(Debug, Default)]
pub struct ExecutionHistory {
    /// What is kept.
    stored: Stored,
    /// Where, with a state folder.
    file: Option<PathBuf>,
}

impl ExecutionHistory {
    /// The history kept in `file`, read from it when it exists.
    pub fn kept_in(file: &Path) -> std::io::Result<Self> {
        let stored = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} is not a pipeline-local execution history ({e}); move it away to start afresh",
                        file.display()
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            stored,
            file: Some(file.to_path_buf()),
        })
    }

    /// Whether any execution of the pipeline is known.
    pub fn knows_pipeline(&self, pipeline: &str) -> bool {
        self.stored
            .executions
            .iter()
            .any(|e| e.pipeline() == pipeline)
            || self
                .stored
                .action_executions
                .iter()
                .chain(&self.stored.rule_executions)
                .any(|a| a.pipeline == pipeline)
    }

    /// Adds (or replaces) an execution, started now.
    pub fn register(&mut self, execution: Value, source_revisions: Vec<Value>) {
        let now = now();
        let sequence = self
            .stored
            .executions
            .iter()
            .map(|e| e.sequence + 1)
            .max()
            .unwrap_or(0);
        let record = ExecutionRecord {
            execution,
            source_revisions,
            start_time: now,
            last_update_time: now,
            sequence,
        };
        self.stored
            .executions
            .retain(|e| !(e.pipeline() == record.pipeline() && e.id() == record.id()));
        self.stored.executions.push(record);
        self.save();
    }

    /// Sets an execution's status.
    pub fn set_status(&mut self, pipeline: &str, execution_id: &str, status: &str) {
        if let Some(record) = self.find_mut(pipeline, execution_id) {
            record.execution["status"] = json!(status);
            record.last_update_time = now();
            self.save();
        }
    }

    /// Adds action executions to an execution.
    pub fn add_action_executions(
        &mut self,
        pipeline: &str,
        execution_id: &str,
        details: Vec<Value>,
    ) {
        add_details(
            &mut self.stored.action_executions,
            pipeline,
            execution_id,
            details,
        );
        self.save();
    }

    /// Adds `ListRuleExecutions` details (`ruleExecutionDetail` objects) of an execution.
    pub fn add_rule_executions(&mut self, pipeline: &str, execution_id: &str, details: Vec<Value>) {
        add_details(
            &mut self.stored.rule_executions,
            pipeline,
            execution_id,
            details,
        );
        self.save();
    }

    /// Records what a stage ran with in an execution where it succeeded.
    pub fn stage_succeeded(
        &mut self,
        pipeline: &str,
        execution_id: &str,
        stage: &str,
        inputs: Value,
    ) {
        self.stored.succeeded_stages.push(StageInputs {
            pipeline: pipeline.into(),
            execution_id: execution_id.into(),
            stage: stage.into(),
            inputs,
        });
        self.save();
    }

    /// The latest execution in which `stage` succeeded, and what it ran with.
    pub fn last_success_of_stage(&self, pipeline: &str, stage: &str) -> Option<(String, Value)> {
        self.stored
            .succeeded_stages
            .iter()
            .rev()
            .find(|s| s.pipeline == pipeline && s.stage == stage)
            .map(|s| (s.execution_id.clone(), s.inputs.clone()))
    }

    /// An execution, to change it.
    fn find_mut(&mut self, pipeline: &str, execution_id: &str) -> Option<&mut ExecutionRecord> {
        self.stored
            .executions
            .iter_mut()
            .find(|e| e.pipeline() == pipeline && e.id() == execution_id)
    }

    /// Writes the history to its file (a new file renamed over the old, so a killed process
    /// never leaves half a file); a failure is printed, the run goes on.
    fn save(&self) {
        let Some(file) = &self.file else { return };
        let written = serde_json::to_vec_pretty(&self.stored)
            .map_err(std::io::Error::other)
            .and_then(|bytes| {
                let partial = file.with_extension("json.partial");
                std::fs::write(&partial, bytes)?;
                std::fs::rename(&partial, file)
            });
        if let Err(e) = written {
            eprintln!(
                "pipeline-local: cannot keep the execution history in {}: {e}",
                file.display()
            );
        }
    }

    /// `GetPipelineExecution`.
    pub fn get(&self, pipeline: &str, execution_id: &str) -> Option<&Value> {
        self.stored
            .executions
            .iter()
            .find(|e| e.pipeline() == pipeline && e.id() == execution_id)
            .map(|e| &e.execution)
    }

    /// The `sourceRevisions` an execution's summary lists.
    pub fn source_revisions(&self, pipeline: &str, execution_id: &str) -> Vec<Value> {
        self.stored
            .executions
            .iter()
            .find(|e| e.pipeline() == pipeline && e.id() == execution_id)
            .map(|e| e.source_revisions.clone())
            .unwrap_or_default()
    }

    /// `ListPipelineExecutions`: summaries newest first, paged.
    pub fn list(&self, pipeline: &str, request: &Value) -> Result<Value, ServiceError> {
        let max = page_size(request)?;
        let start = page_start(request)?;
        let mut records: Vec<&ExecutionRecord> = self
            .stored
            .executions
            .iter()
            .filter(|e| e.pipeline() == pipeline)
            .collect();
        records.sort_by(|a, b| {
            b.start_time
                .total_cmp(&a.start_time)
                .then(b.sequence.cmp(&a.sequence))
        });
        let summaries: Vec<Value> = records
            .iter()
            .skip(start)
            .take(max)
            .map(|record| {
                let execution = &record.execution;
                let mut summary = json!({
                    "pipelineExecutionId": record.id(),
                    "status": execution["status"],
                    "startTime": record.start_time,
                    "lastUpdateTime": record.last_update_time,
                    "sourceRevisions": record.source_revisions,
                    "executionMode": execution.get("executionMode").cloned().unwrap_or(json!("SUPERSEDED")),
                    "executionType": execution.get("executionType").cloned().unwrap_or(json!("STANDARD")),
                });
                for field in ["trigger", "rollbackMetadata", "statusSummary"] {
                    if let Some(value) = execution.get(field) {
                        summary[field] = value.clone();
                    }
                }
                summary
            })
            .collect();
        let mut body = json!({"pipelineExecutionSummaries": summaries});
        if start + summaries.len() < records.len() {
            body["nextToken"] = json!((start + summaries.len()).to_string());
        }
        Ok(body)
    }

    /// `ListActionExecutions`, optionally of one execution, paged.
    pub fn list_actions(
        &self,
        pipeline: &str,
        execution_id: Option<&str>,
        request: &Value,
    ) -> Result<Value, ServiceError> {
        list_details(
            &self.stored.action_executions,
            "actionExecutionDetails",
            pipeline,
            execution_id,
            request,
        )
    }

    /// `ListRuleExecutions`, optionally of one execution, paged.
    pub fn list_rules(
        &self,
        pipeline: &str,
        execution_id: Option<&str>,
        request: &Value,
    ) -> Result<Value, ServiceError> {
        list_details(
            &self.stored.rule_executions,
            "ruleExecutionDetails",
            pipeline,
            execution_id,
            request,
        )
    }
}

/// Adds details (actions or rules) to an execution's list.
fn add_details(
    records: &mut Vec<DetailRecords>,
    pipeline: &str,
    execution_id: &str,
    details: Vec<Value>,
) {
    match records
        .iter_mut()
        .find(|a| a.pipeline == pipeline && a.execution_id == execution_id)
    {
        Some(records) => records.details.extend(details),
        None => records.push(DetailRecords {
            pipeline: pipeline.into(),
            execution_id: execution_id.into(),
            details,
        }),
    }
}

/// One page of the details of a pipeline's executions (or of one execution), under `key`.
fn list_details(
    records: &[DetailRecords],
    key: &str,
    pipeline: &str,
    execution_id: Option<&str>,
    request: &Value,
) -> Result<Value, ServiceError> {
    let max = page_size(request)?;
    let start = page_start(request)?;
    let matching: Vec<&Value> = records
        .iter()
        .filter(|a| a.pipeline == pipeline && execution_id.is_none_or(|id| id == a.execution_id))
        .flat_map(|a| a.details.iter())
        .collect();
    let page: Vec<&Value> = matching.iter().skip(start).take(max).copied().collect();
    let mut body = json!({ key: page });
    if start + page.len() < matching.len() {
        body["nextToken"] = json!((start + page.len()).to_string());
    }
    Ok(body)
}

/// `maxResults`, within the API's range.
fn page_size(request: &Value) -> Result<usize, ServiceError> {
    let max = request
        .get("maxResults")
        .and_then(Value::as_u64)
        .unwrap_or(100);
    if !(1..=100).contains(&max) {
        return Err(ServiceError::client("ValidationException", "Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100"));
    }
    Ok(max as usize)
}

/// Where `nextToken` says a page starts.
fn page_start(request: &Value) -> Result<usize, ServiceError> {
    match request.get("nextToken").and_then(Value::as_str) {
        None => Ok(0),
        Some(token) => token.parse::<usize>().map_err(|_| {
            ServiceError::client("InvalidNextTokenException", "The next token is not valid")
        }),
    }
}

/// Now, in epoch seconds.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(id: &str, status: &str) -> Value {
        json!({"pipelineName": "web", "pipelineExecutionId": id, "status": status})
    }

    #[test]
    fn a_state_folder_keeps_the_executions_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(HISTORY_FILE);
        let mut first = ExecutionHistory::kept_in(&file).unwrap();
        first.register(
            execution("e-1", "InProgress"),
            vec![json!({"actionName": "Source", "revisionId": "abc"})],
        );
        first.set_status("web", "e-1", "Succeeded");
        first.add_action_executions("web", "e-1", vec![json!({"actionName": "Plan"})]);
        drop(first);

        let mut second = ExecutionHistory::kept_in(&file).unwrap();
        second.register(execution("e-2", "InProgress"), Vec::new());
        let listed = second.list("web", &json!({})).unwrap();
        let ids: Vec<&str> = listed["pipelineExecutionSummaries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["pipelineExecutionId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["e-2", "e-1"], "newest first");
        assert_eq!(
            listed["pipelineExecutionSummaries"][1]["status"],
            "Succeeded"
        );
        assert_eq!(
            listed["pipelineExecutionSummaries"][1]["sourceRevisions"][0]["revisionId"],
            "abc"
        );
        let actions = second.list_actions("web", Some("e-1"), &json!({})).unwrap();
        assert_eq!(actions["actionExecutionDetails"][0]["actionName"], "Plan");
    }

    #[test]
    fn a_damaged_history_file_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(HISTORY_FILE);
        std::fs::write(&file, b"{not json").unwrap();
        let error = ExecutionHistory::kept_in(&file).unwrap_err().to_string();
        assert!(error.contains(HISTORY_FILE), "{error}");
        assert!(error.contains("move it away"), "{error}");
    }

    #[test]
    fn pages_the_executions() {
        let mut history = ExecutionHistory::default();
        for i in 0..5 {
            history.register(execution(&format!("e-{i}"), "Succeeded"), Vec::new());
        }
        let first = history.list("web", &json!({"maxResults": 2})).unwrap();
        assert_eq!(
            first["pipelineExecutionSummaries"][0]["pipelineExecutionId"],
            "e-4"
        );
        let token = first["nextToken"].as_str().unwrap();
        let second = history
            .list("web", &json!({"maxResults": 2, "nextToken": token}))
            .unwrap();
        assert_eq!(
            second["pipelineExecutionSummaries"][0]["pipelineExecutionId"],
            "e-2"
        );
        assert!(history.list("web", &json!({"maxResults": 0})).is_err());
        assert!(history.list("web", &json!({"nextToken": "x"})).is_err());
    }
}
