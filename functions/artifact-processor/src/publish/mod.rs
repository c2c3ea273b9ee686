//! `publish`: extract an input artifact into a bucket and prefix, uploading only what changed.
//!
//! Two passes over the artifact. The first reads and checks every entry (CRC-32, sizes, local
//! headers; in parallel ranged GETs for a large archive) while the bucket is listed and the
//! release record read, and hashes each file (MD5 and SHA-256), so nothing is published from
//! an archive that turns out bad halfway. A file is unchanged when its size and content match
//! the object: the listed ETag when it is a plain MD5, otherwise the SHA-256 kept in the
//! object's metadata. The second pass reads only the files that changed and uploads them (see
//! [`upload`]): every other file first, the entry pages (`entry_points`) last, so no page
//! names an asset that is not there yet. Files the artifact no longer has are deleted only
//! after every upload succeeded, never outside the prefix, and with `prune` only past their
//! grace ([`releases`]). Then the CloudFront invalidation ([`invalidation`]), and last the
//! release record.

mod compare;
mod encodings;
mod headers;
mod invalidation;
mod plan;
mod releases;
mod target;
mod upload;
mod window;

use crate::globs::GlobList;
use crate::params::PublishStep;
use crate::{Clients, StepReport};
use headers::{header_rules_digest, CacheRules};
pub use invalidation::InvalidationWait;
use invalidation::{encode_path, plan_paths, still_in_progress, NotCreated};
use pipeline_ext::artifacts::ReadTimings;
use pipeline_ext::artifacts::PARALLEL_READS;
use pipeline_ext::job::JobError;
use releases::{
    next_record, plan_prune, Kept, PendingInvalidation, PruneRulesOf, RecordState, Release,
    RECORD_NAME,
};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use target::Target;
use upload::{upload_changed, UploadFailure};
use window::RequestWindow;

/// Names of stale files listed in a summary at most.
const LISTED_NAMES: usize = 10;

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
    if step.compress_level.br > 11 || !(1..=9).contains(&step.compress_level.gzip) {
        return Err(JobError::config(format!(
            "publish: `compress_level` takes brotli 0–11 and gzip 1–9, not br {} and gzip {}",
            step.compress_level.br, step.compress_level.gzip
        )));
    }
    if !(1..=55).contains(&step.invalidation.max_wait_minutes) {
        return Err(JobError::config(format!(
            "publish: `invalidation.max_wait_minutes` must be between 1 and 55, not {}",
            step.invalidation.max_wait_minutes
        )));
    }
    if step.invalidation.wait && step.cloudfront_distribution_id.is_none() {
        return Err(JobError::config(
            "publish: `invalidation.wait` needs a `cloudfront_distribution_id` to wait for",
        ));
    }
    CacheRules::new(step)?;
    name_globs("publish.entry_points", &step.entry_points)?;
    name_globs("publish.compress", &step.compress)?;
    Ok(())
}

/// Globs of file names (`entry_points`, `compress`): a pattern without `/` (`*.js`) names files
/// in every folder, as in a `.gitignore`; one with a `/` is matched against the whole path.
fn name_globs(field: &str, patterns: &[String]) -> Result<GlobList, JobError> {
    let mut all = Vec::with_capacity(patterns.len() * 2);
    for pattern in patterns {
        all.push(pattern.clone());
        if !pattern.contains('/') {
            all.push(format!("**/{pattern}"));
        }
    }
    GlobList::new(field, &all)
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

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a publish did, and the invalidations it still waits for.
pub(crate) struct Published {
    pub report: StepReport,
    pub wait: Option<InvalidationWait>,
}

pub async fn run(
    job: &crate::ProcessorJob,
    clients: &Clients,
    step: &PublishStep,
) -> Result<Published, JobError> {
    let prefix = normalize_prefix(&step.prefix)?;
    let cache = CacheRules::new(step)?;
    let entry_points = name_globs("publish.entry_points", &step.entry_points)?;
    let compress = name_globs("publish.compress", &step.compress)?;
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
    let record_key = format!("{prefix}{RECORD_NAME}");
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
        (reader.entries().len() * std::mem::size_of::<crate::digest::FileDigest>()) as u64,
        "the digests of the artifact's files",
    )?;
    let (verified, (existing, listing), record) = tokio::join!(
        reader.verify_with::<crate::digest::Digests>(PARALLEL_READS),
        listing,
        target.read_record(&record_key, store.budget())
    );
    let verified = verified?;
    let (mut existing, _listing_held) = existing?;
    let (record, _record_held) = record?;
    existing.remove(&record_key);
    lap(&mut phases.verify_and_list);
    phases.list = listing;
    phases.read = verified.timings;
    let sample = reader
        .entries()
        .iter()
        .map(|e| format!("{prefix}{}", e.name))
        .find(|key| existing.contains_key(key));
    if let Some(key) = sample {
        target.refresh_headers =
            target.published_header_rules(&key).await?.as_deref() != Some(&target.header_rules);
    }
    let rules = plan::PlanRules {
        step,
        cache: &cache,
        compress: &compress,
        entry_points: &entry_points,
        header_rules: &target.header_rules,
        refresh_headers: target.refresh_headers,
    };
    let planned = plan::plan(
        reader.entries(),
        verified.outputs,
        &prefix,
        &rules,
        &existing,
        &record,
        &mut held,
    )?;
    let target = Arc::new(target);
    job.doing(format!(
        "comparing {} files with s3://{}/{prefix}",
        planned.files.len(),
        step.bucket
    ));
    let compared = compare::compare(&target, planned.files, &existing, &window).await?;
    lap(&mut phases.compare);

    // Entry pages last (`upload`): a page is never live before what it loads.
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

    let mut stale: Vec<String> = existing
        .keys()
        .filter(|k| k.starts_with(&prefix) && !planned.wanted.contains(*k))
        .cloned()
        .collect();
    stale.sort();
    let previous = record.release();
    let removed_now = stale
        .iter()
        .any(|k| record.release_of(k.strip_prefix(&prefix).unwrap_or(k)) == Some(previous));
    let fresh_record = !matches!(record, RecordState::Found(_));
    let release = if !changed.is_empty() || !headers_only.is_empty() || removed_now || fresh_record
    {
        previous + 1
    } else {
        previous
    };
    let now = unix_seconds();
    let prune_rules = PruneRulesOf::of(step, &entry_points);
    let mut pruned = plan_prune(&stale, &prefix, &record, &prune_rules, release, now);
    let dry_run = step.prune.as_ref().is_some_and(|p| p.dry_run);
    let would_delete = if dry_run {
        let would = std::mem::take(&mut pruned.delete);
        pruned.kept.extend(would.iter().map(|k| {
            (
                k.strip_prefix(&prefix).unwrap_or(k).to_string(),
                Kept::InGrace,
            )
        }));
        would
    } else {
        Vec::new()
    };
    job.doing(format!(
        "deleting {} stale objects under s3://{}/{prefix}",
        pruned.delete.len(),
        step.bucket
    ));
    target.delete_keys(&pruned.delete).await?;
    let deleted = pruned.delete;
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

    // The invalidation: what changed, what was deleted, and what an earlier publish left.
    let mut invalidation = None;
    let mut pending = None;
    if let Some(distribution) = &step.cloudfront_distribution_id {
        let mut paths: Vec<String> = changed
            .iter()
            .chain(headers_only.iter())
            .chain(deleted.iter())
            .map(|k| format!("/{}", encode_path(k)))
            .collect();
        paths.extend(record.pending_paths(distribution));
        if !paths.is_empty() {
            let paths = plan_paths(
                paths,
                step.invalidate_all_over,
                step.invalidation.max_wildcards,
            );
            job.doing(format!(
                "invalidating {} paths on CloudFront distribution {distribution}",
                paths.len()
            ));
            let created = invalidation::create(
                &clients.cloudfront,
                distribution,
                &paths,
                &format!("{}-{}", job.id, release),
                job.deadline().into_std(),
            )
            .await;
            if created.is_err() {
                pending = Some(PendingInvalidation {
                    distribution: distribution.to_string(),
                    paths: paths.clone(),
                });
            }
            invalidation = Some((distribution.to_string(), paths.len(), created));
        }
    }

    // The release record, last.
    let had_pending =
        record.pending_paths(step.cloudfront_distribution_id.as_deref().unwrap_or(""));
    let record_changes = release != previous
        || !deleted.is_empty()
        || pending.as_ref().map(|p| &p.paths) != Some(&had_pending).filter(|p| !p.is_empty());
    if record_changes {
        job.doing(format!(
            "writing the release record s3://{}/{record_key}",
            step.bucket
        ));
        let published = planned
            .wanted
            .iter()
            .map(|k| k.strip_prefix(&prefix).unwrap_or(k).to_string());
        let next = next_record(
            &record,
            Release {
                release,
                published_at: now,
                job: job.id.clone(),
            },
            published,
            &pruned.kept,
            planned.generated,
            pending.clone(),
        );
        target.write_record(&record_key, &next).await.map_err(|e| {
            e.context(
                "the files are published; the release record could not be written, so the next publish keeps every old file",
            )
        })?;
    }

    let mut summary = format!(
        "s3://{}/{prefix}: {} uploaded, {} updated for headers only, {unchanged} unchanged, {} deleted",
        step.bucket,
        changed.len(),
        headers_only.len(),
        deleted.len()
    );
    let mut variables = vec![
        ("FilesPublished", changed.len().to_string()),
        ("FilesHeadersUpdated", headers_only.len().to_string()),
        ("FilesDeleted", deleted.len().to_string()),
        ("Release", release.to_string()),
    ];
    if planned.to_compress > 0 {
        summary.push_str(&format!(
            ", {} compressed at publish time",
            planned.to_compress
        ));
    }
    if planned.too_large_to_compress > 0 {
        summary.push_str(&format!(
            ", {} not compressed (over {} MiB)",
            planned.too_large_to_compress,
            upload::SMALL_FILE / 1024 / 1024
        ));
    }
    if planned.folded > 0 {
        summary.push_str(&format!(
            ", {} variants not published (another stands in their plain name)",
            planned.folded
        ));
    }
    let graced = pruned
        .kept
        .iter()
        .filter(|(_, why)| *why != Kept::NotPruning)
        .count();
    if let Some(problem) = &pruned.record_problem {
        summary.push_str(&format!(
            "; nothing old deleted: {problem}, so {graced} files no longer in the artifact were kept (a new record starts with release {release})"
        ));
    } else if graced > 0 && !dry_run {
        summary.push_str(&format!(
            "; release {release}: {graced} files no longer in the artifact kept for pages still open"
        ));
    }
    if dry_run {
        summary.push_str(&format!(
            "; prune dry run: would delete {}{}",
            would_delete.len(),
            listed(&would_delete, &prefix)
        ));
        variables.push(("FilesToPrune", would_delete.len().to_string()));
    }
    variables.push(("FilesKept", graced.to_string()));
    if pace.throttles > 0 {
        summary.push_str(&format!(
            "; the bucket throttled {} requests (SlowDown): {} in flight at the lowest, of {}",
            pace.throttles, pace.lowest, pace.max
        ));
    }
    let mut wait = None;
    match invalidation {
        None => {}
        Some((distribution, count, Err(NotCreated { failure, attempts }))) => {
            let message = format!(
                "{summary}. The files are live, the cache is not: the CloudFront invalidation of {count} paths on distribution {distribution} failed after {attempts} attempts ({failure}); CloudFront may serve the old files until they expire. The paths are kept in the release record and invalidated by the next publish."
            );
            return Err(if failure.code() == "NoSuchDistribution" {
                JobError::config(message)
            } else {
                JobError::failed(message)
            });
        }
        Some((distribution, count, Ok(created))) => {
            summary.push_str(&format!(
                ", CloudFront invalidation {} ({count} paths{})",
                created.id,
                if created.attempts > 1 {
                    format!(", after {} attempts", created.attempts)
                } else {
                    String::new()
                }
            ));
            variables.push(("InvalidationId", created.id.clone()));
            if step.invalidation.wait {
                let waiting = InvalidationWait {
                    distribution,
                    ids: vec![created.id],
                    since_ms: now * 1000,
                };
                wait = resume_wait(clients, step, waiting).await?;
            }
        }
    }
    Ok(Published {
        report: StepReport { summary, variables },
        wait,
    })
}

/// True when `name`, or the plain name of a compressed variant (`index.html.br`), is an
/// entry page.
pub(super) fn is_entry_point(entry_points: &GlobList, name: &str) -> bool {
    let plain = [".br", ".gz"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    entry_points.matches(name) || entry_points.matches(plain)
}

/// `, names…` of the first few stale keys, for a summary.
fn listed(keys: &[String], prefix: &str) -> String {
    if keys.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = keys
        .iter()
        .take(LISTED_NAMES)
        .map(|k| k.strip_prefix(prefix).unwrap_or(k))
        .collect();
    let more = keys.len().saturating_sub(LISTED_NAMES);
    format!(
        ": {}{}",
        names.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// Reads the invalidations `wait` names once: `None` when all completed, the rest otherwise.
/// Past `max_wait_minutes` the step fails, saying the files are live and the cache is not.
pub(crate) async fn resume_wait(
    clients: &Clients,
    step: &PublishStep,
    wait: InvalidationWait,
) -> Result<Option<InvalidationWait>, JobError> {
    let now_ms = unix_seconds() * 1000;
    if wait.since_ms > now_ms + 60_000 || wait.ids.is_empty() || wait.ids.len() > 8 {
        return Err(JobError::failed(
            "the continuation token is inconsistent: it waits for invalidations it could not have made",
        ));
    }
    let open = still_in_progress(&clients.cloudfront, &wait).await.map_err(|failure| {
        JobError::from(failure).context(format!(
            "The files are live and CloudFront invalidation {} was made, but its progress cannot be read (allow cloudfront:GetInvalidation, or drop `invalidation.wait`)",
            wait.ids.join(", ")
        ))
    })?;
    if open.is_empty() {
        return Ok(None);
    }
    let waited_ms = now_ms.saturating_sub(wait.since_ms);
    if waited_ms > u64::from(step.invalidation.max_wait_minutes) * 60_000 {
        return Err(JobError::failed(format!(
            "The files are live, the cache is not: CloudFront invalidation {} on distribution {} is still in progress after {} minutes (`invalidation.max_wait_minutes`)",
            open.join(", "),
            wait.distribution,
            waited_ms / 60_000
        )));
    }
    Ok(Some(InvalidationWait { ids: open, ..wait }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_globs_without_a_slash_match_in_every_folder() {
        let names =
            name_globs("compress", &["*.js".to_string(), "site/*.css".to_string()]).unwrap();
        assert!(names.matches("app.js") && names.matches("assets/js/app.js"));
        assert!(names.matches("site/a.css") && !names.matches("other/site/a.css"));
        assert!(name_globs("compress", &["a[".to_string()]).is_err());
    }

    #[test]
    fn prefixes_are_normalized_and_traversal_refused() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("site").unwrap(), "site/");
        assert_eq!(normalize_prefix("/a/b/").unwrap(), "a/b/");
        assert!(normalize_prefix("a/../b").is_err());
    }
}
