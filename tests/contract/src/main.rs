//! Test-only invoke action: its `UserParameters` choose a behaviour (succeed, fail, panic,
//! overrun, continue, copy an artifact) so the runner's guarantees can be tested through the
//! real Lambda Runtime API. Never shipped.

use lambda_runtime::{service_fn, LambdaEvent};
use pipeline_ext::job::{Job, JobError, JobOutcome, JobRunner, JobSuccess};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
enum Params {
    Succeed {
        #[serde(default)]
        marker_bucket: Option<String>,
    },
    Fail {
        message: String,
    },
    Panic,
    Sleep {
        millis: u64,
    },
    /// Reports `rounds` continuations, then success.
    Continue {
        rounds: u32,
    },
    /// Works in 500 ms units and returns a continuation when time runs short.
    Chunked {
        units: u32,
    },
    /// Streams every entry of `input` into `output`.
    Copy {
        input: String,
        output: String,
    },
    /// Sets the given output variables.
    Variables {
        values: std::collections::BTreeMap<String, String>,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct Progress {
    done: u32,
}

async fn handle(job: Job<Params, Progress>) -> Result<JobOutcome<Progress>, JobError> {
    match &job.params {
        Params::Succeed { marker_bucket } => {
            if let Some(bucket) = marker_bucket {
                let key = format!("effects/{}/{}", job.id, job.request_id);
                let store = job.artifacts()?;
                store
                    .client()
                    .put_object()
                    .bucket(bucket)
                    .key(&key)
                    .body(Vec::new().into())
                    .send()
                    .await
                    .map_err(|e| JobError::failed(format!("marker: {e}")))?;
            }
            Ok(JobOutcome::Succeeded(
                JobSuccess::new("fixture done").variable("Answer", 42),
            ))
        }
        Params::Fail { message } => Err(JobError::failed(message.clone())),
        Params::Panic => panic!("fixture panicked on purpose"),
        Params::Sleep { millis } => {
            job.doing(format!("sleeping {millis} ms"));
            tokio::time::sleep(Duration::from_millis(*millis)).await;
            Ok(JobOutcome::Succeeded(JobSuccess::new("slept")))
        }
        Params::Continue { rounds } => {
            let done = job.state.as_ref().map(|s| s.done).unwrap_or(0);
            if done < *rounds {
                let percent = (done * 100 / rounds.max(&1)) as u8;
                Ok(JobOutcome::Continue {
                    state: Progress { done: done + 1 },
                    summary: format!("round {}", done + 1),
                    percent_complete: Some(percent),
                })
            } else {
                Ok(JobOutcome::Succeeded(
                    JobSuccess::new(format!("{rounds} rounds")).variable("Rounds", rounds),
                ))
            }
        }
        Params::Chunked { units } => {
            let mut done = job.state.as_ref().map(|s| s.done).unwrap_or(0);
            while done < *units {
                if job.remaining() < Duration::from_millis(700) {
                    return Ok(JobOutcome::Continue {
                        state: Progress { done },
                        summary: format!("{done}/{units} units"),
                        percent_complete: Some((done * 100 / units) as u8),
                    });
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                done += 1;
            }
            Ok(JobOutcome::Succeeded(
                JobSuccess::new(format!("{units} units")).variable("Units", units),
            ))
        }
        Params::Copy { input, output } => copy(&job, input, output).await,
        Params::Variables { values } => {
            let mut success = JobSuccess::new("variables");
            success.output_variables = values.clone();
            Ok(JobOutcome::Succeeded(success))
        }
    }
}

async fn copy(
    job: &Job<Params, Progress>,
    input: &str,
    output: &str,
) -> Result<JobOutcome<Progress>, JobError> {
    let store = job.artifacts()?;
    let reader = store.open(job.input(input)?).await?;
    let mut entries = reader.stream().await?;
    let mut writer = store.create(job.output(output)?);
    let mut bytes = 0u64;
    let mut count = 0usize;
    let result: Result<(), pipeline_ext::artifacts::ArtifactError> = async {
        while let Some(entry) = entries.next_entry().await? {
            if entry.is_dir {
                writer.add_directory(&entry.name).await?;
                continue;
            }
            writer.start_file(&entry.name).await?;
            while let Some(chunk) = entries.read_chunk().await? {
                bytes += chunk.len() as u64;
                writer.write(&chunk).await?;
            }
            count += 1;
        }
        Ok(())
    }
    .await;
    if let Err(err) = result {
        writer.abort().await;
        return Err(err.into());
    }
    let written = writer.finish().await?;
    Ok(JobOutcome::Succeeded(
        JobSuccess::new(format!(
            "copied {count} files ({bytes} bytes) into s3://{}/{}",
            written.bucket, written.key
        ))
        .variable("Files", count)
        .variable("Bytes", bytes),
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    pipeline_ext::telemetry::init();
    let runner = Arc::new(JobRunner::from_env().await);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let runner = runner.clone();
        async move { runner.run(event, handle).await }
    }))
    .await
}
