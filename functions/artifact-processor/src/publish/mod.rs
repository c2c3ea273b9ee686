//! `publish`: extract an input artifact into a bucket and prefix, uploading only what changed.
//!
//! Two passes over the artifact. The first reads and checks every entry (CRC-32, sizes, local
//! headers; in parallel ranged GETs for a large archive) while the bucket is listed, and
//! hashes each file (MD5 and SHA-256), so nothing is published from an archive that turns out
//! bad halfway. A file is unchanged when its size and content match the object: the listed
//! ETag when it is a plain MD5, otherwise the SHA-256 kept in the object's metadata. The
//! second pass reads only the files that changed and uploads them (see [`upload`]). Stale keys
//! are deleted only after every upload succeeded, and never outside the prefix.

mod headers;
mod invalidation;
mod target;
mod upload;
mod window;

use crate::digest::{Digests, FileDigest};
use crate::params::PublishStep;
use crate::{Clients, StepReport};
pub use headers::{content_type, HEADER_RULES_METADATA};
use headers::{header_rules_digest, CacheRules};
use invalidation::{encode_path, invalidate};
use pipeline_ext::artifacts::{ObjectOptions, ReadTimings, PARALLEL_READS};
use pipeline_ext::job::{Job, JobError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use target::SHA256_METADATA;
use target::{Existing, Fate, Target};
use tokio::task::JoinSet;
use upload::{upload_changed, ChangedFile, UploadFailure};
use window::RequestWindow;

/// What one file to publish holds beside its key and name: its record, headers and metadata.
const FILE_RECORD_BYTES: usize = 320;

pub fn check(step: &PublishStep) -> Result<(), JobError> {
    normalize_prefix(&step.prefix)?;
    if step.bucket.trim().is_empty() {
        return Err(JobError::config("publish: `bucket` is empty"));
    }
    if !(1..=64).contains(&step.concurrency) {
        return Err(JobError::config(format!(
            "publish: `concurrency` must be between 1 and 64, not {}",
            step.concurrency
        )));
    }
    CacheRules::new(step)?;
    Ok(())
}

/// `""` or a relative folder ending in `/`.
fn normalize_prefix(prefix: &str) -> Result<String, JobError> {
    let trimmed = prefix.trim_start_matches('/');
    if trimmed.split('/').any(|part| part == ".." || part == ".") || trimmed.contains('\\') {
        return Err(JobError::config(format!(
            "publish: `prefix` `{prefix}` must be a plain folder path"
        )));
    }
    Ok(if trimmed.is_empty() || trimmed.ends_with('/') {
        trimmed.to_string()
    } else {
        format!("{trimmed}/")
    })
}

/// Where the time of a publish went, logged at DEBUG.
#[derive(Default)]
struct Phases {
    verify_and_list: Duration,
    /// The listing alone (it runs during the verify pass).
    list: Duration,
    /// The verify pass's streams, summed: GETs, inflate and CRC, MD5 and SHA-256.
    read: ReadTimings,
    compare: Duration,
    upload: Duration,
    delete: Duration,
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

pub async fn run(
    job: &Job<crate::Params, ()>,
    clients: &Clients,
    step: &PublishStep,
) -> Result<StepReport, JobError> {
    let prefix = normalize_prefix(&step.prefix)?;
    let rules = CacheRules::new(step)?;
    let store = job.artifacts()?;
    let mut phases = Phases::default();
    let mut clock = Instant::now();
    let mut lap = |into: &mut Duration| {
        *into = clock.elapsed();
        clock = Instant::now();
    };
    // The whole table of contents is checked before anything is written.
    let reader = store.open(job.input(&step.input)?).await?;
    // Every request to the site bucket goes through one window, sized by `concurrency` and
    // narrowed by the bucket's throttling.
    let window = RequestWindow::new(step.concurrency);
    let mut target = Target {
        client: window.paced(&clients.s3),
        bucket: step.bucket.to_string(),
        header_rules: header_rules_digest(step),
        refresh_headers: false,
    };
    job.doing(format!(
        "verifying the artifact while listing s3://{}/{prefix}",
        step.bucket
    ));
    let listing = async {
        let started = Instant::now();
        let listed = target.list(&prefix, store.budget()).await;
        (listed, started.elapsed())
    };
    let mut held = store.budget().reserve(
        (reader.entries().len() * std::mem::size_of::<FileDigest>()) as u64,
        "the digests of the artifact's files",
    )?;
    let (verified, (existing, listing)) =
        tokio::join!(reader.verify_with::<Digests>(PARALLEL_READS), listing);
    let verified = verified?;
    let (existing, _listing_held) = existing?;
    lap(&mut phases.verify_and_list);
    phases.list = listing;
    phases.read = verified.timings;
    let digests = verified.outputs;
    let sample = reader
        .entries()
        .iter()
        .map(|e| format!("{prefix}{}", e.name))
        .find(|key| existing.contains_key(key));
    if let Some(key) = sample {
        target.refresh_headers =
            target.published_header_rules(&key).await?.as_deref() != Some(&target.header_rules);
    }
    let target = Arc::new(target);

    let mut wanted: HashSet<String> = HashSet::new();
    let mut files = Vec::new();
    for (index, (entry, digest)) in reader.entries().iter().zip(digests).enumerate() {
        if entry.is_dir {
            continue;
        }
        let key = format!("{prefix}{}", entry.name);
        // The key twice (wanted, the file), the name, and the file's headers.
        held.grow(
            (2 * key.len() + entry.name.len() + FILE_RECORD_BYTES) as u64,
            "the publish's list of files",
        )?;
        wanted.insert(key.clone());
        let options = ObjectOptions {
            content_type: Some(content_type(&entry.name)),
            cache_control: rules.for_path(&entry.name),
            metadata: vec![
                (HEADER_RULES_METADATA.into(), target.header_rules.clone()),
                (SHA256_METADATA.into(), digest.sha256_hex()),
            ],
            ..ObjectOptions::default()
        };
        files.push(ChangedFile {
            index,
            name: entry.name.clone(),
            key,
            size: entry.size,
            digest,
            options,
        });
    }
    job.doing(format!(
        "comparing {} files with s3://{}/{prefix}",
        files.len(),
        step.bucket
    ));
    let compared = compare(&target, files, &existing, &window).await?;
    lap(&mut phases.compare);

    let changed = match upload_changed(
        &reader,
        target.clone(),
        compared.changed,
        window.clone(),
        job.activity(),
    )
    .await
    {
        Ok(uploaded) => uploaded,
        Err(UploadFailure { error, uploaded }) => {
            // Nothing is deleted after a failed upload: the site keeps every file it had.
            return Err(error.context(format!(
                "publish stopped after {uploaded} uploads, nothing deleted"
            )));
        }
    };
    lap(&mut phases.upload);
    let (headers_only, unchanged) = (compared.headers_only, compared.unchanged);

    let stale: Vec<String> = if step.delete_stale {
        let mut stale: Vec<String> = existing
            .keys()
            .filter(|k| k.starts_with(&prefix) && !wanted.contains(*k))
            .cloned()
            .collect();
        stale.sort();
        job.doing(format!(
            "deleting {} stale objects under s3://{}/{prefix}",
            stale.len(),
            step.bucket
        ));
        target.delete_keys(&stale).await?;
        stale
    } else {
        Vec::new()
    };
    lap(&mut phases.delete);
    let pace = window.report();
    tracing::debug!(
        requests_in_flight_max = pace.max,
        requests_in_flight_lowest = pace.lowest,
        throttled_attempts = pace.throttles,
        verify_and_list_ms = millis(phases.verify_and_list),
        list_ms = millis(phases.list),
        read_network_ms = millis(phases.read.network),
        read_inflate_ms = millis(phases.read.inflate),
        read_hash_ms = millis(phases.read.hash),
        compare_ms = millis(phases.compare),
        upload_ms = millis(phases.upload),
        delete_ms = millis(phases.delete),
        archive_bytes = reader.object_size(),
        files_uploaded = changed.len(),
        "publish phases"
    );

    let invalidation = match &step.cloudfront_distribution_id {
        Some(distribution)
            if !changed.is_empty() || !headers_only.is_empty() || !stale.is_empty() =>
        {
            let mut paths: Vec<String> = changed
                .iter()
                .chain(headers_only.iter())
                .chain(stale.iter())
                .map(|k| format!("/{}", encode_path(k)))
                .collect();
            paths.sort();
            if paths.len() > step.invalidate_all_over {
                paths = vec!["/*".to_string()];
            }
            Some(
                invalidate(
                    clients,
                    distribution,
                    paths,
                    &format!("{}-{}", job.id, job.request_id),
                )
                .await?,
            )
        }
        _ => None,
    };

    let mut summary = format!(
        "s3://{}/{prefix}: {} uploaded, {} updated for headers only, {unchanged} unchanged, {} deleted",
        step.bucket,
        changed.len(),
        headers_only.len(),
        stale.len()
    );
    let mut variables = vec![
        ("FilesPublished", changed.len().to_string()),
        ("FilesHeadersUpdated", headers_only.len().to_string()),
        ("FilesDeleted", stale.len().to_string()),
    ];
    if let Some(id) = invalidation {
        summary.push_str(&format!(", CloudFront invalidation {id}"));
        variables.push(("InvalidationId", id));
    }
    if pace.throttles > 0 {
        summary.push_str(&format!(
            "; the bucket throttled {} requests (SlowDown): {} in flight at the lowest, of {}",
            pace.throttles, pace.lowest, pace.max
        ));
    }
    Ok(StepReport { summary, variables })
}

/// The files to upload, and what became of the others.
struct Compared {
    /// In archive order.
    changed: Vec<ChangedFile>,
    headers_only: Vec<String>,
    unchanged: usize,
}

/// Sorts the files into changed and unchanged, asking S3 (`HeadObject`) only when the listing
/// cannot tell, and refreshes the headers of unchanged files when the rules changed.
async fn compare(
    target: &Arc<Target>,
    files: Vec<ChangedFile>,
    existing: &std::collections::HashMap<String, Existing>,
    window: &Arc<RequestWindow>,
) -> Result<Compared, JobError> {
    let mut compared = Compared {
        changed: Vec::new(),
        headers_only: Vec::new(),
        unchanged: 0,
    };
    let mut checks: JoinSet<Result<Result<Fate, ChangedFile>, JobError>> = JoinSet::new();
    let record =
        |done: Result<Result<Result<Fate, ChangedFile>, JobError>, tokio::task::JoinError>,
         compared: &mut Compared|
         -> Result<(), JobError> {
            match done.map_err(|e| JobError::failed(format!("comparison task failed: {e}")))?? {
                Ok(Fate::HeadersOnly(key)) => compared.headers_only.push(key),
                Ok(Fate::Unchanged) => compared.unchanged += 1,
                Err(file) => compared.changed.push(file),
            }
            Ok(())
        };
    for file in files {
        let Some(prior) = existing.get(&file.key).cloned() else {
            compared.changed.push(file);
            continue;
        };
        if prior.size != file.size as i64 {
            compared.changed.push(file);
            continue;
        }
        let listed_same = prior.etag.as_deref() == Some(file.digest.md5_hex().as_str());
        if listed_same && !target.refresh_headers {
            // The listing decides: no request, no task.
            compared.unchanged += 1;
            continue;
        }
        // A slot is taken before the task exists, so no more tasks are alive than requests
        // the window allows (each holds a request's state).
        let slot = window
            .slot()
            .await
            .map_err(|_| JobError::failed("the comparison pool was closed"))?;
        let target = target.clone();
        checks.spawn(async move {
            let _slot = slot;
            if listed_same || target.holds_content(&file.key, &file.digest).await? {
                Ok(Ok(target.keep(&file.key, file.options).await?))
            } else {
                Ok(Err(file))
            }
        });
        while let Some(done) = checks.try_join_next() {
            record(done, &mut compared)?;
        }
    }
    while let Some(done) = checks.join_next().await {
        record(done, &mut compared)?;
    }
    compared.changed.sort_by_key(|f| f.index);
    compared.headers_only.sort();
    Ok(compared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized_and_traversal_refused() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("site").unwrap(), "site/");
        assert_eq!(normalize_prefix("/a/b/").unwrap(), "a/b/");
        assert!(normalize_prefix("a/../b").is_err());
    }
}
