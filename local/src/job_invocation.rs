//! Drives one CodePipeline job through a function as CodePipeline does: fresh artifact
//! credentials per invocation, the job registered before the call, and re-invocation with the
//! continuation token until the function reports a final result.

use crate::codepipeline::JobRecord;
use crate::endpoints::LocalAws;
use crate::runtime_api::{FunctionHost, Invocation};
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Serialize)]
pub struct JobRun {
    pub job_id: String,
    pub invocations: Vec<Invocation>,
    /// What the function reported, as the local CodePipeline recorded it.
    pub record: Option<JobRecord>,
}

impl JobRun {
    pub fn succeeded(&self) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.status == crate::codepipeline::JobStatus::Succeeded)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobEventError {
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
        event["CodePipeline.job"]["data"]["artifactCredentials"] = json!({
            "accessKeyId": issued.access_key_id,
            "secretAccessKey": issued.secret_access_key,
            "sessionToken": issued.session_token,
            "expirationTime": (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0) + 3_600_000) as u64,
        });
        let data = event["CodePipeline.job"]["data"].clone();
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
                event["CodePipeline.job"]["data"]["continuationToken"] = json!(token);
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
