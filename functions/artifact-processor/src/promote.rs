//! `promote`: copies an input artifact to a release bucket and key.
//!
//! The artifact bucket is readable only with the job's credentials and the release bucket
//! writable only with the function's role, so the copy streams through the function (one part
//! in memory) rather than using `CopyObject`. The zip's table of contents is checked first: a
//! hostile archive is never promoted.

use crate::params::{PromoteEncryption, PromoteStep};
use crate::{Clients, StepReport};
use pipeline_ext::artifacts::{Encryption, ObjectOptions, ObjectUpload, DEFAULT_PART_SIZE};
use pipeline_ext::job::JobError;

pub fn check(step: &PromoteStep) -> Result<(), JobError> {
    if step.bucket.trim().is_empty() || step.key.trim().is_empty() {
        return Err(JobError::config(
            "promote: `bucket` and `key` must not be empty",
        ));
    }
    if step.kms_key_id.is_some() && step.encryption != PromoteEncryption::AwsKms {
        return Err(JobError::config(
            "promote: `kms_key_id` needs `\"encryption\": \"aws:kms\"`",
        ));
    }
    Ok(())
}

pub async fn run(
    job: &crate::ProcessorJob,
    clients: &Clients,
    step: &PromoteStep,
) -> Result<StepReport, JobError> {
    let store = job.artifacts()?;
    let artifact = job.input(&step.input)?;
    let reader = store.open(artifact).await?;
    // What is promoted is checked as fully as what is published.
    reader.verify().await?;
    let source = &artifact.location.s3_location;
    let object = store
        .client()
        .get_object()
        .bucket(&source.bucket_name)
        .key(&source.object_key)
        .send()
        .await
        .map_err(|e| {
            JobError::from(
                pipeline_ext::sdk::SdkFailure::from_sdk("S3", "GetObject", &e)
                    .on(format!("s3://{}/{}", source.bucket_name, source.object_key)),
            )
        })?;
    let encryption = match step.encryption {
        PromoteEncryption::Aes256 => Encryption::S3Managed,
        PromoteEncryption::AwsKms => {
            Encryption::Kms(step.kms_key_id.as_ref().map(|k| k.to_string()))
        }
    };
    let options = ObjectOptions {
        content_type: Some("application/zip".into()),
        encryption,
        ..ObjectOptions::default()
    };
    let mut upload = ObjectUpload::new(
        clients.s3.clone(),
        &step.bucket,
        &step.key,
        options,
        DEFAULT_PART_SIZE,
    );
    let mut body = object.body;
    let mut bytes = 0u64;
    loop {
        match body.next().await {
            Some(Ok(chunk)) => {
                bytes += chunk.len() as u64;
                if let Err(err) = upload.write(&chunk).await {
                    upload.abort().await;
                    return Err(err.into());
                }
            }
            Some(Err(err)) => {
                upload.abort().await;
                return Err(JobError::failed(format!(
                    "promote: reading the artifact failed: {err}"
                )));
            }
            None => break,
        }
    }
    upload.finish().await?;
    Ok(StepReport {
        summary: format!(
            "`{}` ({} files, {bytes} bytes) promoted to s3://{}/{}",
            step.input,
            reader.entries().len(),
            step.bucket,
            step.key
        ),
        variables: Vec::new(),
    })
}
