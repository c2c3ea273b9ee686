//! `publish`: extract an input artifact into a bucket and prefix, uploading only what changed.
//!
//! Files stream out of the artifact one by one. Small files are held in memory and uploaded
//! concurrently (bounded in count and in bytes); large ones are spooled to a temporary file
//! while hashed, then uploaded in parts. A file is unchanged when its size and content match the
//! object: the listed ETag when it is a plain MD5, otherwise the SHA-256 kept in the object's
//! metadata. Stale keys are deleted only after every upload succeeded, and never outside the
//! prefix.

use crate::digest::Digests;
use crate::globs::GlobList;
use crate::params::PublishStep;
use crate::{Clients, StepReport};
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use pipeline_ext::artifacts::{
    ArtifactError, EntryStream, ObjectOptions, ObjectUpload, DEFAULT_PART_SIZE,
};
use pipeline_ext::job::{Job, JobError};
use pipeline_ext::sdk::SdkFailure;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Files up to this size are uploaded from memory with one `PutObject`.
const SMALL_FILE: u64 = 8 * 1024 * 1024;
/// Bytes of small files held in memory at once, across all uploads in flight.
const MEMORY_BUDGET: u64 = 32 * 1024 * 1024;
/// The metadata key holding the content's SHA-256.
pub const SHA256_METADATA: &str = "sha256";
/// User metadata naming the header rules (Content-Type table and `cache_control`) an object
/// was published with, so that a change of rules re-publishes the headers of unchanged files.
pub const HEADER_RULES_METADATA: &str = "publish-headers";
/// Bumped when [`content_type`] changes what it answers.
const CONTENT_TYPE_RULES: &str = "content-type-v1";
/// `DeleteObjects` takes at most this many keys.
const DELETE_BATCH: usize = 1000;

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
    let patterns: Vec<String> = step.cache_control.keys().cloned().collect();
    GlobList::new("publish.cache_control", &patterns)?;
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

struct CacheRules {
    globs: GlobList,
    values: Vec<String>,
    default: Option<String>,
}

impl CacheRules {
    fn new(step: &PublishStep) -> Result<Self, JobError> {
        let patterns: Vec<String> = step.cache_control.keys().cloned().collect();
        Ok(Self {
            globs: GlobList::new("publish.cache_control", &patterns)?,
            values: step.cache_control.values().cloned().collect(),
            default: step.default_cache_control.clone(),
        })
    }

    fn for_path(&self, path: &str) -> Option<String> {
        match self.globs.first_match(path) {
            Some(pattern) => self
                .globs
                .patterns()
                .position(|p| p == pattern)
                .map(|i| self.values[i].clone()),
            None => self.default.clone(),
        }
    }
}

/// Content-Type from the extension; text types say they are UTF-8.
pub fn content_type(path: &str) -> String {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let text = mime.type_() == mime_guess::mime::TEXT
        || matches!(
            mime.essence_str(),
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if text {
        format!("{}; charset=utf-8", mime.essence_str())
    } else {
        mime.essence_str().to_string()
    }
}

#[derive(Clone)]
struct Existing {
    size: i64,
    etag: Option<String>,
}

struct Target {
    client: aws_sdk_s3::Client,
    bucket: String,
    /// Digest of the header rules of this publish.
    header_rules: String,
    /// The objects already there were published with other header rules: unchanged files get
    /// their headers replaced (a `CopyObject` onto themselves) instead of being skipped.
    refresh_headers: bool,
}

impl Target {
    fn failed(&self, operation: &str, key: &str, err: impl std::fmt::Display) -> JobError {
        JobError::failed(format!(
            "{operation} s3://{}/{key} failed: {err}",
            self.bucket
        ))
    }

    fn sdk_failed<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        operation: &'static str,
        key: &str,
        err: aws_sdk_s3::error::SdkError<E>,
    ) -> JobError {
        SdkFailure::from_sdk("S3", operation, &err)
            .on(format!("s3://{}/{key}", self.bucket))
            .into()
    }

    async fn list(&self, prefix: &str) -> Result<HashMap<String, Existing>, JobError> {
        let mut found = HashMap::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.sdk_failed("ListObjectsV2", prefix, e))?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    found.insert(
                        key.to_string(),
                        Existing {
                            size: object.size().unwrap_or(-1),
                            etag: object.e_tag().map(|e| e.trim_matches('"').to_string()),
                        },
                    );
                }
            }
        }
        Ok(found)
    }

    async fn head(&self, key: &str) -> Result<HeadObjectOutput, JobError> {
        self.client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.sdk_failed("HeadObject", key, e))
    }

    /// The header rules the objects under `prefix` were published with, read from one of
    /// them (every publish leaves all of its objects on the same rules).
    async fn published_header_rules(&self, key: &str) -> Result<Option<String>, JobError> {
        Ok(self
            .head(key)
            .await?
            .metadata()
            .and_then(|m| m.get(HEADER_RULES_METADATA))
            .cloned())
    }

    /// Replaces an unchanged object's headers with this publish's, without sending its data.
    async fn refresh(&self, key: &str, options: ObjectOptions) -> Result<Fate, JobError> {
        self.client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(format!("{}/{}", self.bucket, encode_path(key)))
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .set_content_type(options.content_type)
            .set_cache_control(options.cache_control)
            .set_metadata(Some(options.metadata.into_iter().collect()))
            .send()
            .await
            .map_err(|e| self.sdk_failed("CopyObject", key, e))?;
        Ok(Fate::HeadersOnly(key.to_string()))
    }

    /// What becomes of a file whose content is already there.
    async fn keep(&self, key: &str, options: ObjectOptions) -> Result<Fate, JobError> {
        if self.refresh_headers {
            self.refresh(key, options).await
        } else {
            Ok(Fate::Unchanged)
        }
    }

    async fn unchanged(
        &self,
        key: &str,
        size: u64,
        sha256: &str,
        md5: &str,
        existing: Option<Existing>,
    ) -> Result<bool, JobError> {
        let Some(existing) = existing else {
            return Ok(false);
        };
        if existing.size != size as i64 {
            return Ok(false);
        }
        if existing.etag.as_deref() == Some(md5) {
            return Ok(true);
        }
        // No ETag in the listing, or not an MD5 (SSE-KMS, multipart): the object's metadata tells.
        let head = self.head(key).await?;
        let etag = head.e_tag().map(|e| e.trim_matches('"'));
        let stored = head
            .metadata()
            .and_then(|m| m.get(SHA256_METADATA))
            .map(String::as_str);
        Ok(stored == Some(sha256) || etag == Some(md5))
    }

    async fn put_small(
        &self,
        key: &str,
        data: Vec<u8>,
        options: ObjectOptions,
    ) -> Result<(), JobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(options.content_type)
            .set_cache_control(options.cache_control)
            .set_metadata(Some(options.metadata.into_iter().collect()))
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.sdk_failed("PutObject", key, e))?;
        Ok(())
    }
}

/// What happened to one file.
enum Fate {
    Uploaded(String),
    /// Same content, new headers.
    HeadersOnly(String),
    Unchanged,
}

pub async fn run(
    job: &Job<crate::Params, ()>,
    clients: &Clients,
    step: &PublishStep,
) -> Result<StepReport, JobError> {
    let prefix = normalize_prefix(&step.prefix)?;
    let rules = CacheRules::new(step)?;
    let store = job.artifacts()?;
    // The whole table of contents is checked before anything is written.
    let reader = store.open(job.input(&step.input)?).await?;
    let mut target = Target {
        client: clients.s3.clone(),
        bucket: step.bucket.clone(),
        header_rules: header_rules_digest(step),
        refresh_headers: false,
    };
    // Nothing is published from an archive that turns out bad halfway: every entry's CRC,
    // size and local header is checked first (while the bucket is listed).
    let (verified, existing) = tokio::join!(reader.verify(), target.list(&prefix));
    verified?;
    let existing = existing?;
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
    let mut entries = reader.stream().await?;

    let slots = Arc::new(Semaphore::new(step.concurrency));
    let budget = Arc::new(Semaphore::new((MEMORY_BUDGET / 1024) as usize));
    let mut uploads: JoinSet<Result<Fate, JobError>> = JoinSet::new();
    let mut wanted: HashSet<String> = HashSet::new();
    let mut changed: Vec<String> = Vec::new();
    let mut headers_only: Vec<String> = Vec::new();
    let mut unchanged = 0usize;
    let mut failure: Option<JobError> = None;

    let record = |result: Result<Result<Fate, JobError>, tokio::task::JoinError>,
                  changed: &mut Vec<String>,
                  headers_only: &mut Vec<String>,
                  unchanged: &mut usize|
     -> Result<(), JobError> {
        match result {
            Ok(Ok(Fate::Uploaded(key))) => changed.push(key),
            Ok(Ok(Fate::HeadersOnly(key))) => headers_only.push(key),
            Ok(Ok(Fate::Unchanged)) => *unchanged += 1,
            Ok(Err(err)) => return Err(err),
            Err(err) => return Err(JobError::failed(format!("upload task failed: {err}"))),
        }
        Ok(())
    };

    while failure.is_none() {
        let entry = match entries.next_entry().await {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(err) => {
                failure = Some(err.into());
                break;
            }
        };
        if entry.is_dir {
            continue;
        }
        let key = format!("{prefix}{}", entry.name);
        job.doing(format!("publishing s3://{}/{key}", step.bucket));
        wanted.insert(key.clone());
        let mut options = ObjectOptions {
            content_type: Some(content_type(&entry.name)),
            cache_control: rules.for_path(&entry.name),
            metadata: vec![(HEADER_RULES_METADATA.into(), target.header_rules.clone())],
            ..ObjectOptions::default()
        };
        let prior = existing.get(&key).cloned();
        if entry.size <= SMALL_FILE {
            let kib = (entry.size / 1024 + 1).min(MEMORY_BUDGET / 1024) as u32;
            let (Ok(bytes_permit), Ok(slot)) = (
                budget.clone().acquire_many_owned(kib).await,
                slots.clone().acquire_owned().await,
            ) else {
                break;
            };
            let data = match entries.read_to_vec(SMALL_FILE as usize).await {
                Ok(data) => data,
                Err(err) => {
                    failure = Some(err.into());
                    break;
                }
            };
            let mut digests = Digests::default();
            digests.update(&data);
            let (sha256, md5) = digests.finish();
            options
                .metadata
                .push((SHA256_METADATA.into(), sha256.clone()));
            let target = target.clone();
            uploads.spawn(async move {
                let _held = (bytes_permit, slot);
                if target
                    .unchanged(&key, data.len() as u64, &sha256, &md5, prior)
                    .await?
                {
                    return target.keep(&key, options).await;
                }
                target.put_small(&key, data, options).await?;
                Ok(Fate::Uploaded(key))
            });
        } else {
            match publish_large(&target, &mut entries, &key, options, prior).await {
                Ok(Fate::Uploaded(key)) => changed.push(key),
                Ok(Fate::HeadersOnly(key)) => headers_only.push(key),
                Ok(Fate::Unchanged) => unchanged += 1,
                Err(err) => failure = Some(err),
            }
        }
        while let Some(done) = uploads.try_join_next() {
            if let Err(err) = record(done, &mut changed, &mut headers_only, &mut unchanged) {
                failure.get_or_insert(err);
            }
        }
    }
    while let Some(done) = uploads.join_next().await {
        if let Err(err) = record(done, &mut changed, &mut headers_only, &mut unchanged) {
            failure.get_or_insert(err);
        }
    }
    if let Some(err) = failure {
        // Nothing is deleted after a failed upload: the site keeps every file it had.
        let done = changed.len();
        return Err(err.context(format!(
            "publish stopped after {done} uploads, nothing deleted"
        )));
    }

    let stale: Vec<String> = if step.delete_stale {
        let mut stale: Vec<String> = existing
            .keys()
            .filter(|k| k.starts_with(&prefix) && !wanted.contains(*k))
            .cloned()
            .collect();
        stale.sort();
        delete_keys(&target, &stale).await?;
        stale
    } else {
        Vec::new()
    };

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
    Ok(StepReport { summary, variables })
}

/// A short digest of everything that decides an object's headers: the Content-Type table's
/// version, the `cache_control` rules in order and the default.
fn header_rules_digest(step: &PublishStep) -> String {
    let rules = serde_json::json!([
        CONTENT_TYPE_RULES,
        step.cache_control.iter().collect::<Vec<_>>(),
        step.default_cache_control,
    ]);
    crate::digest::sha256_hex(rules.to_string().as_bytes())[..16].to_string()
}

/// Spools a large entry to a temporary file while hashing it, then uploads it in parts if it
/// changed. Memory stays at one part whatever the file's size.
async fn publish_large(
    target: &Target,
    entries: &mut EntryStream,
    key: &str,
    mut options: ObjectOptions,
    prior: Option<Existing>,
) -> Result<Fate, JobError> {
    let spool = tempfile::NamedTempFile::new()
        .map_err(|e| JobError::failed(format!("cannot create a temporary file for {key}: {e}")))?;
    let mut file = tokio::fs::File::create(spool.path())
        .await
        .map_err(|e| JobError::failed(format!("cannot spool {key}: {e}")))?;
    let mut digests = Digests::default();
    let mut size = 0u64;
    while let Some(chunk) = entries.read_chunk().await? {
        digests.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(|e| {
            JobError::failed(format!("cannot spool {key} (is /tmp large enough?): {e}"))
        })?;
    }
    file.flush()
        .await
        .map_err(|e| JobError::failed(format!("cannot spool {key}: {e}")))?;
    let (sha256, md5) = digests.finish();
    options
        .metadata
        .push((SHA256_METADATA.into(), sha256.clone()));
    if target.unchanged(key, size, &sha256, &md5, prior).await? {
        return target.keep(key, options).await;
    }
    let mut upload = ObjectUpload::new(
        target.client.clone(),
        &target.bucket,
        key,
        options,
        DEFAULT_PART_SIZE,
    );
    let mut file = tokio::fs::File::open(spool.path())
        .await
        .map_err(|e| JobError::failed(format!("cannot read back {key}: {e}")))?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|e| JobError::failed(format!("cannot read back {key}: {e}")))?;
        if n == 0 {
            break;
        }
        if let Err(err) = upload.write(&buffer[..n]).await {
            upload.abort().await;
            return Err(upload_error(target, key, err));
        }
    }
    upload
        .finish()
        .await
        .map_err(|e| upload_error(target, key, e))?;
    Ok(Fate::Uploaded(key.to_string()))
}

fn upload_error(target: &Target, key: &str, err: ArtifactError) -> JobError {
    match err {
        // The failure names the operation, bucket and key already.
        ArtifactError::S3(failure) => failure.into(),
        other => target.failed("uploading", key, other),
    }
}

async fn delete_keys(target: &Target, keys: &[String]) -> Result<(), JobError> {
    for batch in keys.chunks(DELETE_BATCH) {
        let objects = batch
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| JobError::failed(format!("cannot build the delete request: {e}")))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| JobError::failed(format!("cannot build the delete request: {e}")))?;
        let first = batch.first().map(String::as_str).unwrap_or("");
        let output = target
            .client
            .delete_objects()
            .bucket(&target.bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| target.sdk_failed("DeleteObjects", first, e))?;
        if let Some(error) = output.errors().first() {
            return Err(target.failed(
                "deleting",
                error.key().unwrap_or(""),
                format!(
                    "{}: {} ({} keys not deleted)",
                    error.code().unwrap_or("error"),
                    error.message().unwrap_or(""),
                    output.errors().len()
                ),
            ));
        }
    }
    Ok(())
}

/// CloudFront paths are URL paths: spaces and other reserved characters are percent-encoded.
fn encode_path(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn invalidate(
    clients: &Clients,
    distribution: &str,
    paths: Vec<String>,
    reference: &str,
) -> Result<String, JobError> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    let count = paths.len() as i32;
    let batch = InvalidationBatch::builder()
        .paths(
            Paths::builder()
                .quantity(count)
                .set_items(Some(paths))
                .build()
                .map_err(|e| JobError::failed(e.to_string()))?,
        )
        .caller_reference(reference)
        .build()
        .map_err(|e| JobError::failed(e.to_string()))?;
    let output = clients
        .cloudfront
        .create_invalidation()
        .distribution_id(distribution)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(|e| {
            let failure = SdkFailure::from_sdk("CloudFront", "CreateInvalidation", &e)
                .on(format!("distribution {distribution}"));
            if failure.code() == "NoSuchDistribution" {
                JobError::config(failure.to_string())
            } else {
                failure.into()
            }
        })?;
    Ok(output
        .invalidation()
        .map(|i| i.id().to_string())
        .unwrap_or_default())
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

    #[test]
    fn content_types_come_from_extensions() {
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("assets/app.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("img/logo.png"), "image/png");
        assert_eq!(
            content_type("data.bin.unknownext"),
            "application/octet-stream"
        );
    }

    #[test]
    fn cloudfront_paths_are_encoded() {
        assert_eq!(encode_path("docs/a b+c.html"), "docs/a%20b%2Bc.html");
    }
}
