//! A local CodePipeline endpoint: the job and approval calls the functions make, and the
//! execution reads (`GetPipelineExecution`, `ListPipelineExecutions`, `ListActionExecutions`,
//! `ListRuleExecutions`) the notifiers make, answered from the execution history (`history.rs`).

mod history;

use history::ExecutionHistory;
pub use history::HISTORY_FILE;

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, JsonService, ServiceError};
use axum::Router;
use pipeline_ext::text::utf16_len;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum JobStatus {
    /// Handed to a function, no result yet.
    InProgress,
    /// `PutJobSuccessResult` without a continuation token.
    Succeeded,
    /// `PutJobFailureResult`.
    Failed,
}

/// A job the local pipeline handed to a function, and what the function reported.
#[derive(Clone, Debug, Serialize)]
pub struct JobRecord {
    /// The account the job belongs to.
    pub account_id: String,
    /// The job's `data`, as `GetJobDetails` returns it.
    pub data: Value,
    /// Where it stands.
    pub status: JobStatus,
    /// Every accepted `PutJobSuccessResult`/`PutJobFailureResult` request body, in order.
    pub results: Vec<Value>,
}

impl JobRecord {
    /// The last continuation token reported, while the job is still in progress.
    pub fn continuation_token(&self) -> Option<String> {
        if self.status != JobStatus::InProgress {
            return None;
        }
        self.results
            .last()?
            .get("continuationToken")?
            .as_str()
            .map(str::to_owned)
    }
}

/// An approval waiting for `PutApprovalResult`.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalRecord {
    /// The pipeline.
    pub pipeline_name: String,
    /// The stage.
    pub stage_name: String,
    /// The approval action.
    pub action_name: String,
    /// `Approved` or `Rejected` once decided, with the summary.
    pub decision: Option<(String, String)>,
    /// Its token was made to expire (`InvalidApprovalTokenException`).
    pub expired: bool,
    /// The execution waiting on it, for `GetPipelineState`.
    pub execution_id: Option<String>,
    /// Registration order: the latest approval of a stage is the one its state shows.
    order: u64,
}

#[derive(Default)]
struct Pipelines {
    jobs: HashMap<String, JobRecord>,
    approvals: HashMap<String, ApprovalRecord>,
    history: ExecutionHistory,
}

impl Pipelines {
    fn knows_pipeline(&self, pipeline: &str) -> bool {
        self.history.knows_pipeline(pipeline)
            || self.approvals.values().any(|a| a.pipeline_name == pipeline)
    }
}

/// Shared state of the local CodePipeline endpoint.
#[derive(Clone)]
pub struct LocalCodePipeline {
    state: Arc<Mutex<Pipelines>>,
    calls: CallLog,
    faults: Faults,
}

impl LocalCodePipeline {
    /// An empty CodePipeline recording into `calls`, answering `faults` first.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            state: Arc::default(),
            calls,
            faults,
        }
    }

    /// The endpoint with its execution history kept in `file` (read from it when it exists).
    pub fn with_history_file(
        calls: CallLog,
        faults: Faults,
        file: &std::path::Path,
    ) -> std::io::Result<Self> {
        let endpoint = Self::new(calls, faults);
        endpoint.lock().history = ExecutionHistory::kept_in(file)?;
        Ok(endpoint)
    }

    /// The endpoint's routes (awsJson 1.1).
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }

    /// Makes a job known, as CodePipeline does before invoking the function.
    pub fn register_job(&self, job_id: &str, account_id: &str, data: Value) {
        let record = JobRecord {
            account_id: account_id.into(),
            data,
            status: JobStatus::InProgress,
            results: Vec::new(),
        };
        self.lock().jobs.insert(job_id.into(), record);
    }

    /// Replaces a job's data for the next invocation (continuation token, fresh credentials).
    pub fn update_job_data(&self, job_id: &str, data: Value) {
        if let Some(job) = self.lock().jobs.get_mut(job_id) {
            job.data = data;
        }
    }

    /// A job, by id.
    pub fn job(&self, job_id: &str) -> Option<JobRecord> {
        self.lock().jobs.get(job_id).cloned()
    }

    /// Makes an approval wait for `PutApprovalResult` with this token.
    pub fn register_approval(&self, token: &str, pipeline: &str, stage: &str, action: &str) {
        let record = ApprovalRecord {
            pipeline_name: pipeline.into(),
            stage_name: stage.into(),
            action_name: action.into(),
            decision: None,
            expired: false,
            execution_id: None,
            order: 0,
        };
        let mut state = self.lock();
        let order = state.approvals.len() as u64 + 1;
        state
            .approvals
            .insert(token.into(), ApprovalRecord { order, ..record });
    }

    /// Says which execution an approval belongs to, so that `GetPipelineState` shows it as
    /// that execution's waiting action (with its token).
    pub fn set_approval_execution(&self, token: &str, execution_id: &str) {
        if let Some(approval) = self.lock().approvals.get_mut(token) {
            approval.execution_id = Some(execution_id.into());
        }
    }

    /// Makes an approval's token invalid, as when the approval times out.
    pub fn expire_approval(&self, token: &str) {
        if let Some(approval) = self.lock().approvals.get_mut(token) {
            approval.expired = true;
        }
    }

    /// An approval, by token.
    pub fn approval(&self, token: &str) -> Option<ApprovalRecord> {
        self.lock().approvals.get(token).cloned()
    }

    /// Makes an execution known to `GetPipelineExecution` and `ListPipelineExecutions`, started
    /// now: `execution` is its `pipelineExecution` object (`pipelineName` and
    /// `pipelineExecutionId` required).
    pub fn register_execution(&self, execution: Value) {
        self.register_execution_with_sources(execution, Vec::new());
    }

    /// As [`Self::register_execution`], with the `sourceRevisions` its summary lists
    /// (`actionName`, `revisionId`, `revisionSummary`, `revisionUrl`).
    pub fn register_execution_with_sources(&self, execution: Value, source_revisions: Vec<Value>) {
        self.lock().history.register(execution, source_revisions);
    }

    /// Updates a registered execution's `status` (`InProgress`, `Succeeded`, `Failed`, …).
    pub fn set_execution_status(&self, pipeline: &str, execution_id: &str, status: &str) {
        self.lock()
            .history
            .set_status(pipeline, execution_id, status);
    }

    /// A registered execution's `GetPipelineExecution` object and its summary's
    /// `sourceRevisions`.
    pub fn execution(&self, pipeline: &str, execution_id: &str) -> Option<(Value, Vec<Value>)> {
        let state = self.lock();
        let execution = state.history.get(pipeline, execution_id)?.clone();
        Some((
            execution,
            state.history.source_revisions(pipeline, execution_id),
        ))
    }

    /// Records what a stage ran with in an execution where it succeeded (for rollbacks).
    pub fn record_stage_success(
        &self,
        pipeline: &str,
        execution_id: &str,
        stage: &str,
        inputs: Value,
    ) {
        self.lock()
            .history
            .stage_succeeded(pipeline, execution_id, stage, inputs);
    }

    /// The latest execution in which `stage` succeeded, and what it ran with.
    pub fn last_success_of_stage(&self, pipeline: &str, stage: &str) -> Option<(String, Value)> {
        self.lock().history.last_success_of_stage(pipeline, stage)
    }

    /// Adds `ListActionExecutions` details (`actionExecutionDetail` objects) of an execution.
    pub fn register_action_executions(
        &self,
        pipeline: &str,
        execution_id: &str,
        details: Vec<Value>,
    ) {
        self.lock()
            .history
            .add_action_executions(pipeline, execution_id, details);
    }

    /// Adds `ListRuleExecutions` details (`ruleExecutionDetail` objects) of an execution.
    pub fn register_rule_executions(
        &self,
        pipeline: &str,
        execution_id: &str,
        details: Vec<Value>,
    ) {
        self.lock()
            .history
            .add_rule_executions(pipeline, execution_id, details);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pipelines> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl JsonService for LocalCodePipeline {
    const NAME: &'static str = "codepipeline";
    const TARGET_PREFIX: &'static str = "CodePipeline_20150709";
    const AWS_JSON: AwsJson = AwsJson::V1_1;

    fn dispatch(&self, operation: &str, request: &Value) -> Result<Value, ServiceError> {
        match operation {
            "PutJobSuccessResult" => put_job_result(self, request, true),
            "PutJobFailureResult" => put_job_result(self, request, false),
            "GetJobDetails" => get_job_details(self, request),
            "PutApprovalResult" => put_approval_result(self, request),
            "GetPipelineExecution" => get_pipeline_execution(self, request),
            "ListPipelineExecutions" => list_pipeline_executions(self, request),
            "GetPipelineState" => get_pipeline_state(self, request),
            "ListActionExecutions" => {
                list_execution_details(self, request, ExecutionHistory::list_actions)
            }
            "ListRuleExecutions" => {
                list_execution_details(self, request, ExecutionHistory::list_rules)
            }
            other => Err(ServiceError::unknown_operation(other)),
        }
    }
}

fn invalid(code: &str, message: &str) -> ServiceError {
    ServiceError::client(code, message)
}

fn str_field<'a>(request: &'a Value, name: &str) -> Result<&'a str, ServiceError> {
    request
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| ServiceError::missing_member(name))
}

/// Checks the request against the API's documented constraints, as CodePipeline does.
fn validate_job_result(request: &Value, success: bool) -> Result<(), ServiceError> {
    // CodePipeline measures lengths in UTF-16 code units (an emoji is two).
    let too_long = |field: &str, max: usize| {
        invalid("ValidationException", &format!("Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"))
    };
    if success {
        if let Some(details) = request.get("executionDetails") {
            if details
                .get("summary")
                .and_then(Value::as_str)
                .is_some_and(|s| utf16_len(s) > 2048)
            {
                return Err(too_long("executionDetails.summary", 2048));
            }
            if details
                .get("externalExecutionId")
                .and_then(Value::as_str)
                .is_some_and(|s| utf16_len(s) > 1500)
            {
                return Err(too_long("executionDetails.externalExecutionId", 1500));
            }
            if let Some(p) = details.get("percentComplete").and_then(Value::as_i64) {
                if !(0..=100).contains(&p) {
                    return Err(invalid("ValidationException", "Value at 'executionDetails.percentComplete' failed to satisfy constraint: Member must have value between 0 and 100"));
                }
            }
        }
        if request
            .get("continuationToken")
            .and_then(Value::as_str)
            .is_some_and(|s| s.chars().count() > 2048)
        {
            return Err(too_long("continuationToken", 2048));
        }
        if let Some(vars) = request.get("outputVariables").and_then(Value::as_object) {
            if request.get("continuationToken").is_some() {
                return Err(invalid(
                    "InvalidParameterValueException",
                    "outputVariables cannot be set together with continuationToken",
                ));
            }
            for key in vars.keys() {
                if key.is_empty()
                    || !key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_'))
                {
                    return Err(invalid(
                        "ValidationException",
                        &format!("output variable key '{key}' does not match [A-Za-z0-9@\\-_]+"),
                    ));
                }
            }
        }
    } else {
        let details = request.get("failureDetails").ok_or_else(|| {
            invalid(
                "ValidationException",
                "Value at 'failureDetails' failed to satisfy constraint: Member must not be null",
            )
        })?;
        let kind = details.get("type").and_then(Value::as_str).unwrap_or("");
        let kinds = [
            "JobFailed",
            "ConfigurationError",
            "PermissionError",
            "RevisionOutOfSync",
            "RevisionUnavailable",
            "SystemUnavailable",
        ];
        if !kinds.contains(&kind) {
            return Err(invalid("ValidationException", &format!("Value '{kind}' at 'failureDetails.type' failed to satisfy constraint: Member must satisfy enum value set: {kinds:?}")));
        }
        let message = details.get("message").and_then(Value::as_str).unwrap_or("");
        if message.is_empty() || utf16_len(message) > 5000 {
            return Err(too_long("failureDetails.message", 5000));
        }
    }
    Ok(())
}

fn put_job_result(
    cp: &LocalCodePipeline,
    request: &Value,
    success: bool,
) -> Result<Value, ServiceError> {
    let job_id = str_field(request, "jobId")?;
    validate_job_result(request, success)?;
    let mut state = cp.lock();
    let job = state.jobs.get_mut(job_id).ok_or_else(|| {
        invalid(
            "JobNotFoundException",
            &format!("The job was not found: {job_id}"),
        )
    })?;
    if job.status != JobStatus::InProgress {
        return Err(invalid(
            "InvalidJobStateException",
            &format!("The job {job_id} is already {:?}", job.status),
        ));
    }
    job.results.push(request.clone());
    if !success {
        job.status = JobStatus::Failed;
    } else if request.get("continuationToken").is_none() {
        job.status = JobStatus::Succeeded;
    }
    Ok(json!({}))
}

fn get_job_details(cp: &LocalCodePipeline, request: &Value) -> Result<Value, ServiceError> {
    let job_id = str_field(request, "jobId")?;
    let state = cp.lock();
    let job = state.jobs.get(job_id).ok_or_else(|| {
        invalid(
            "JobNotFoundException",
            &format!("The job was not found: {job_id}"),
        )
    })?;
    Ok(json!({"jobDetails": {"id": job_id, "accountId": job.account_id, "data": job.data}}))
}

fn put_approval_result(cp: &LocalCodePipeline, request: &Value) -> Result<Value, ServiceError> {
    let token = str_field(request, "token")?;
    let pipeline = str_field(request, "pipelineName")?;
    let stage = str_field(request, "stageName")?;
    let action = str_field(request, "actionName")?;
    let result = request.get("result").ok_or_else(|| {
        invalid(
            "ValidationException",
            "Value at 'result' failed to satisfy constraint: Member must not be null",
        )
    })?;
    let status = result.get("status").and_then(Value::as_str).unwrap_or("");
    let summary = result.get("summary").and_then(Value::as_str).unwrap_or("");
    if status != "Approved" && status != "Rejected" {
        return Err(invalid("ValidationException", "Value at 'result.status' failed to satisfy constraint: Member must satisfy enum value set: [Approved, Rejected]"));
    }
    if utf16_len(summary) > 512 {
        return Err(invalid("ValidationException", "Value at 'result.summary' failed to satisfy constraint: Member must have length less than or equal to 512"));
    }
    let mut state = cp.lock();
    let approval = state
        .approvals
        .get_mut(token)
        .filter(|a| a.pipeline_name == pipeline && a.stage_name == stage && a.action_name == action)
        .ok_or_else(|| invalid("InvalidApprovalTokenException", &format!("The approval action token {token} is not valid for {pipeline}/{stage}/{action}")))?;
    if approval.expired {
        return Err(invalid(
            "InvalidApprovalTokenException",
            "The approval request has expired",
        ));
    }
    if approval.decision.is_some() {
        return Err(invalid(
            "ApprovalAlreadyCompletedException",
            "The approval request has already been completed",
        ));
    }
    approval.decision = Some((status.to_string(), summary.to_string()));
    let approved_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    Ok(json!({"approvedAt": approved_at}))
}

/// The stages that hold an approval of an execution: each shows its latest approval, with the
/// token while it waits, as CodePipeline's state does.
fn get_pipeline_state(cp: &LocalCodePipeline, request: &Value) -> Result<Value, ServiceError> {
    let pipeline = str_field(request, "name")?;
    let state = cp.lock();
    if !state.knows_pipeline(pipeline) {
        return Err(pipeline_not_found(pipeline));
    }
    let mut latest: HashMap<&str, (&str, &ApprovalRecord)> = HashMap::new();
    for (token, approval) in &state.approvals {
        if approval.pipeline_name != pipeline || approval.execution_id.is_none() {
            continue;
        }
        let slot = latest
            .entry(approval.stage_name.as_str())
            .or_insert((token, approval));
        if approval.order > slot.1.order {
            *slot = (token, approval);
        }
    }
    let mut stages: Vec<_> = latest.into_values().collect();
    stages.sort_by_key(|(_, approval)| approval.order);
    let stage_states: Vec<Value> = stages
        .into_iter()
        .map(|(token, approval)| {
            let status = match (&approval.decision, approval.expired) {
                (Some((result, _)), _) if result == "Approved" => "Succeeded",
                (Some(_), _) | (None, true) => "Failed",
                (None, false) => "InProgress",
            };
            let mut action = json!({"status": status});
            if status == "InProgress" {
                action["token"] = json!(token);
            }
            json!({"stageName": approval.stage_name,
                "latestExecution": {"pipelineExecutionId": approval.execution_id, "status": status},
                "actionStates": [{"actionName": approval.action_name, "latestExecution": action}]})
        })
        .collect();
    Ok(json!({"pipelineName": pipeline, "pipelineVersion": 1, "stageStates": stage_states}))
}

fn get_pipeline_execution(cp: &LocalCodePipeline, request: &Value) -> Result<Value, ServiceError> {
    let pipeline = str_field(request, "pipelineName")?;
    let execution_id = str_field(request, "pipelineExecutionId")?;
    let state = cp.lock();
    match state.history.get(pipeline, execution_id) {
        Some(execution) => Ok(json!({"pipelineExecution": execution})),
        None if !state.knows_pipeline(pipeline) => Err(pipeline_not_found(pipeline)),
        None => Err(invalid(
            "PipelineExecutionNotFoundException",
            &format!("Pipeline execution {execution_id} of pipeline {pipeline} was not found"),
        )),
    }
}

fn list_pipeline_executions(
    cp: &LocalCodePipeline,
    request: &Value,
) -> Result<Value, ServiceError> {
    let pipeline = str_field(request, "pipelineName")?;
    let state = cp.lock();
    if !state.knows_pipeline(pipeline) {
        return Err(pipeline_not_found(pipeline));
    }
    state.history.list(pipeline, request)
}

/// `ListActionExecutions` or `ListRuleExecutions` (`list` reads the one asked for): the same
/// request shape, a pipeline and an optional `filter.pipelineExecutionId`.
fn list_execution_details(
    cp: &LocalCodePipeline,
    request: &Value,
    list: fn(&ExecutionHistory, &str, Option<&str>, &Value) -> Result<Value, ServiceError>,
) -> Result<Value, ServiceError> {
    let pipeline = str_field(request, "pipelineName")?;
    let execution_id = request
        .pointer("/filter/pipelineExecutionId")
        .and_then(Value::as_str);
    let state = cp.lock();
    if !state.knows_pipeline(pipeline) {
        return Err(pipeline_not_found(pipeline));
    }
    list(&state.history, pipeline, execution_id, request)
}

fn pipeline_not_found(pipeline: &str) -> ServiceError {
    invalid(
        "PipelineNotFoundException",
        &format!("Account does not have a pipeline with name '{pipeline}'"),
    )
}
