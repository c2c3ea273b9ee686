//! `manifest`: the artifact's files plus `manifest.json` (`[{"path","size","sha256"}]`, sorted
//! by path); the manifest's own SHA-256 is the `ArtifactSha256` output variable.

use crate::digest::{sha256_hex, Digests};
use crate::params::ManifestStep;
use crate::StepReport;
use pipeline_ext::job::{Job, JobError};
use serde::Serialize;

pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Serialize)]
struct FileRecord {
    path: String,
    size: u64,
    sha256: String,
}

pub async fn run(
    job: &Job<crate::Params, ()>,
    step: &ManifestStep,
) -> Result<StepReport, JobError> {
    let store = job.artifacts()?;
    let reader = store.open(job.input(&step.input)?).await?;
    if reader.entries().iter().any(|e| e.name == MANIFEST_FILE) {
        return Err(JobError::config(format!(
            "manifest: `{}` already has a {MANIFEST_FILE} at its root",
            step.input
        )));
    }
    let mut entries = reader.stream().await?;
    let mut writer = store.create(job.output(&step.output)?);
    let work = async {
        let mut records = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            if entry.is_dir {
                continue;
            }
            writer.start_file(&entry.name).await?;
            let mut digests = Digests::default();
            let mut size = 0u64;
            while let Some(chunk) = entries.read_chunk().await? {
                digests.update(&chunk);
                size += chunk.len() as u64;
                writer.write(&chunk).await?;
            }
            records.push(FileRecord {
                path: entry.name.clone(),
                size,
                sha256: digests.finish().0,
            });
        }
        records.sort_by(|a, b| a.path.cmp(&b.path));
        let mut manifest = serde_json::to_vec_pretty(&records)
            .map_err(|e| JobError::failed(format!("cannot serialize the manifest: {e}")))?;
        manifest.push(b'\n');
        writer.add_file(MANIFEST_FILE, &manifest).await?;
        Ok((records.len(), sha256_hex(&manifest)))
    }
    .await;
    let ((files, digest), written) = crate::transform::finish_or_abort(writer, work).await?;
    Ok(StepReport {
        summary: format!(
            "{MANIFEST_FILE} of {files} files (sha256 {digest}) into `{}` (s3://{}/{})",
            step.output, written.bucket, written.key
        ),
        variables: vec![("ArtifactSha256", digest)],
    })
}
