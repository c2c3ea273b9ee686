//! Streaming an input artifact into an output artifact, and the `filter` step built on it.

use crate::globs::GlobList;
use crate::params::FilterStep;
use crate::StepReport;
use pipeline_ext::artifacts::{ArtifactWriter, EntryStream, WrittenArtifact};
use pipeline_ext::job::JobError;

/// Copies the current entry's data into the open entry of `writer`; returns the bytes copied.
pub async fn copy_data(
    entries: &mut EntryStream,
    writer: &mut ArtifactWriter,
) -> Result<u64, JobError> {
    let mut bytes = 0u64;
    while let Some(chunk) = entries.read_chunk().await? {
        bytes += chunk.len() as u64;
        writer.write(&chunk).await?;
    }
    Ok(bytes)
}

/// Publishes the output when `work` succeeded; otherwise aborts it so no partial artifact
/// is left.
pub async fn finish_or_abort<T>(
    writer: ArtifactWriter,
    work: Result<T, JobError>,
) -> Result<(T, WrittenArtifact), JobError> {
    match work {
        Ok(value) => Ok((value, writer.finish().await?)),
        Err(err) => {
            writer.abort().await;
            Err(err)
        }
    }
}

pub fn check_filter(step: &FilterStep) -> Result<(), JobError> {
    GlobList::new("filter.include", &step.include)?;
    GlobList::new("filter.exclude", &step.exclude)?;
    Ok(())
}

pub async fn filter(job: &crate::ProcessorJob, step: &FilterStep) -> Result<StepReport, JobError> {
    let include = GlobList::new("filter.include", &step.include)?;
    let exclude = GlobList::new("filter.exclude", &step.exclude)?;
    let store = job.artifacts()?;
    let reader = store.open(job.input(&step.input)?).await?;
    let mut entries = reader.stream().await?;
    let mut writer = store.create(job.output(&step.output)?);
    let work = async {
        let (mut kept, mut dropped) = (0usize, 0usize);
        while let Some(entry) = entries.next_entry().await? {
            if entry.is_dir {
                continue;
            }
            if include.matches(&entry.name) && !exclude.matches(&entry.name) {
                writer.start_file(&entry.name).await?;
                copy_data(&mut entries, &mut writer).await?;
                kept += 1;
            } else {
                dropped += 1;
            }
        }
        if kept == 0 {
            return Err(JobError::config(format!(
                "filter: no file of `{}` matches include {:?} without matching exclude {:?}",
                step.input, step.include, step.exclude
            )));
        }
        Ok((kept, dropped))
    }
    .await;
    let ((kept, dropped), written) = finish_or_abort(writer, work).await?;
    Ok(StepReport {
        summary: format!(
            "{kept} files kept, {dropped} left out, into `{}` (s3://{}/{})",
            step.output, written.bucket, written.key
        ),
        variables: Vec::new(),
    })
}
