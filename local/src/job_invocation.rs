//! Drives one CodePipeline job through a function as CodePipeline does: fresh artifact
//! credentials per invocation, the job registered before the call, and re-invocation with the
//! continuation token until the function reports a final result.

use crate::codepipeline::JobRecord;
use crate::endpoints::LocalAws;
use crate::runtime_api::{FunctionHost, Invocation};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicU64, Ordering};

/// One job driven to its end: every invocation and what the function reported.
#[derive(Debug, Serialize)]
pub struct JobRun {
    /// The job id of the event.
    pub job_id: String,
    /// Each invocation of the function, continuations included.
    pub invocations: Vec<Invocation>,
    /// What the function reported, as the local CodePipeline recorded it.
    pub record: Option<JobRecord>,
}

impl JobRun {
    /// The job ended with `PutJobSuccessResult` (without a continuation token).
    pub fn succeeded(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.status == crate::codepipeline::JobStatus::Succeeded)
    }

    /// Every `PutJob*Result` request the function made, in order.
    pub fn results(&self) -> &[Value] {
        self.record.as_ref().map_or(&[], |r| r.results.as_slice())
    }

    /// The last report: the final one once the job ended.
    pub fn last_result(&self) -> Option<&Value> {
        self.results().last()
    }

    /// The final failure's `(type, message)`, if the job failed.
    pub fn failure(&self) -> Option<(String, String)> {
        let details = self.last_result()?.get("failureDetails")?;
        Some((
            details["type"].as_str().unwrap_or_default().to_string(),
            details["message"].as_str().unwrap_or_default().to_string(),
        ))
    }

    /// The last report's `executionDetails.summary`.
    pub fn summary(&self) -> Option<&str> {
        self.last_result()?
            .pointer("/executionDetails/summary")?
            .as_str()
    }

    /// The output variables of the final success report (empty when it had none).
    pub fn output_variables(&self) -> Option<Map<String, Value>> {
        let last = self.last_result()?;
        if last.get("failureDetails").is_some() {
            return None;
        }
        Some(
            last.get("outputVariables")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )
    }
}

/// A job id unique within this process, shaped like CodePipeline's.
pub fn new_job_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{:04x}-4000-8000-{:012x}", &random[..8], n & 0xffff, n)
}

/// Why an event could not be run as a job.
#[derive(Debug, thiserror::Error)]
pub enum JobEventError {
    /// The event lacks the named part of a `CodePipeline.job` event.
    #[error("the event is not a CodePipeline job event: {0}")]
    NotAJob(&'static str),
}

/// The artifact buckets an event names.
pub fn artifact_buckets(event: &Value) -> Vec<String> {
    let data = &event["CodePipeline.job"]["data"];
    let mut buckets: Vec<String> = ["inputArtifacts", "outputArtifacts"]
        .iter()
        .filter_map(|list| data[*list].as_array())
        .flatten()
        .filter_map(|a| {
            a["location"]["s3Location"]["bucketName"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    buckets.sort();
    buckets.dedup();
    buckets
}

/// Runs `event` (a `CodePipeline.job` event) through `host`, re-invoking on continuation
/// tokens up to `max_continuations` times.
pub async fn run_job(
    aws: &LocalAws,
    host: &FunctionHost,
    mut event: Value,
    max_continuations: usize,
) -> Result<JobRun, JobEventError> {
    let job = event
        .get("CodePipeline.job")
        .ok_or(JobEventError::NotAJob("no `CodePipeline.job` key"))?;
    let job_id = job
        .get("id")
        .and_then(Value::as_str)
        .ok_or(JobEventError::NotAJob("no job id"))?
        .to_string();
    let account_id = job
        .get("accountId")
        .and_then(Value::as_str)
        .unwrap_or("000000000000")
        .to_string();
    for bucket in artifact_buckets(&event) {
        let _ = aws.s3.create_bucket(&bucket);
    }
    let mut invocations = Vec::new();
    let mut registered = false;
    loop {
        let issued = aws.issue_credentials();
        let credentials = json!({
            "accessKeyId": issued.access_key_id,
            "secretAccessKey": issued.secret_access_key,
            "sessionToken": issued.session_token,
            "expirationTime": (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) + 3_600_000) as u64,
        });
        // An event whose `data` is not an object is handed over as it is: the function must
        // report it, and this host must not fall over it.
        if let Some(data) = data_of(&mut event) {
            data.insert("artifactCredentials".into(), credentials);
        }
        let data = event
            .pointer("/CodePipeline.job/data")
            .cloned()
            .unwrap_or(Value::Null);
        if registered {
            aws.codepipeline.update_job_data(&job_id, data);
        } else {
            aws.codepipeline.register_job(&job_id, &account_id, data);
            registered = true;
        }
        let invocation = host.invoke(&event).await;
        invocations.push(invocation);
        let token = aws
            .codepipeline
            .job(&job_id)
            .and_then(|r| r.continuation_token());
        match token {
            Some(token) if invocations.len() <= max_continuations => {
                if let Some(data) = data_of(&mut event) {
                    data.insert("continuationToken".into(), json!(token));
                }
            }
            _ => break,
        }
    }
    Ok(JobRun {
        record: aws.codepipeline.job(&job_id),
        job_id,
        invocations,
    })
}

fn data_of(event: &mut Value) -> Option<&mut Map<String, Value>> {
    event
        .pointer_mut("/CodePipeline.job/data")
        .and_then(Value::as_object_mut)
}
