//! The site bucket a publish writes to: what is there, what is unchanged, and the writes.

use super::headers::HEADER_RULES_METADATA;
use super::invalidation::encode_path;
use super::releases::{RecordState, ReleaseRecord, MAX_RECORD_BYTES};
use crate::digest::FileDigest;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_smithy_types::base64;
use pipeline_ext::artifacts::{MemoryBudget, ObjectOptions, Reservation};
use pipeline_ext::job::JobError;
use pipeline_ext::sdk::SdkFailure;
use std::collections::HashMap;

/// What one listed object holds beside its key: the map's slot, its size and ETag.
const LISTED_OBJECT_BYTES: usize = 96;

/// The metadata key holding the content's SHA-256.
pub const SHA256_METADATA: &str = "sha256";
/// `DeleteObjects` takes at most this many keys.
const DELETE_BATCH: usize = 1000;

/// An object found under the prefix before the publish.
#[derive(Clone, Debug)]
pub(super) struct Existing {
    pub size: i64,
    pub etag: Option<String>,
}

/// What became of a file whose content is already there.
pub(super) enum Fate {
    /// Same content, new headers.
    HeadersOnly(String),
    Unchanged,
}

pub(super) struct Target {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    /// Digest of the header rules of this publish.
    pub header_rules: String,
    /// The objects already there were published with other header rules: unchanged files get
    /// their headers replaced (a `CopyObject` onto themselves) instead of being skipped.
    pub refresh_headers: bool,
}

impl Target {
    pub fn failed(&self, operation: &str, key: &str, err: impl std::fmt::Display) -> JobError {
        JobError::failed(format!(
            "{operation} s3://{}/{key} failed: {err}",
            self.bucket
        ))
    }

    pub fn sdk_failed<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
        &self,
        operation: &'static str,
        key: &str,
        err: aws_sdk_s3::error::SdkError<E>,
    ) -> JobError {
        SdkFailure::from_sdk("S3", operation, &err)
            .on(format!("s3://{}/{key}", self.bucket))
            .into()
    }

    /// Every object under `prefix`, held against `budget` (a bucket's listing is as
    /// unbounded as an archive's table of contents).
    pub async fn list(
        &self,
        prefix: &str,
        budget: &MemoryBudget,
    ) -> Result<(HashMap<String, Existing>, Reservation), JobError> {
        let mut held = budget.reservation();
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
                    held.grow(
                        (key.len() + LISTED_OBJECT_BYTES) as u64,
                        "the listing of the site bucket",
                    )?;
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
        Ok((found, held))
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
    pub async fn published_header_rules(&self, key: &str) -> Result<Option<String>, JobError> {
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
            .set_content_encoding(options.content_encoding)
            .set_metadata(Some(options.metadata.into_iter().collect()))
            .send()
            .await
            .map_err(|e| self.sdk_failed("CopyObject", key, e))?;
        Ok(Fate::HeadersOnly(key.to_string()))
    }

    /// What becomes of a file whose content is already there.
    pub async fn keep(&self, key: &str, options: ObjectOptions) -> Result<Fate, JobError> {
        if self.refresh_headers {
            self.refresh(key, options).await
        } else {
            Ok(Fate::Unchanged)
        }
    }

    /// True when the object at `key`, of the same size but with a listed ETag that is not the
    /// content's MD5 (SSE-KMS, multipart), holds this content: its `HeadObject` says so by
    /// the SHA-256 in its metadata, or by an ETag that is the MD5 after all.
    pub async fn holds_content(&self, key: &str, digest: &FileDigest) -> Result<bool, JobError> {
        let head = self.head(key).await?;
        let etag = head.e_tag().map(|e| e.trim_matches('"'));
        let stored = head
            .metadata()
            .and_then(|m| m.get(SHA256_METADATA))
            .map(String::as_str);
        Ok(stored == Some(digest.sha256_hex().as_str()) || etag == Some(digest.md5_hex().as_str()))
    }

    /// One `PutObject` of content whose digests are known: S3 checks the bytes against them
    /// (`Content-MD5`, `x-amz-checksum-sha256`, both signed headers), so the SDK does not hash
    /// the payload again to sign it.
    pub async fn put_small(
        &self,
        key: &str,
        data: Vec<u8>,
        digest: &FileDigest,
        options: ObjectOptions,
    ) -> Result<(), JobError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(options.content_type)
            .set_cache_control(options.cache_control)
            .set_content_encoding(options.content_encoding)
            .set_metadata(Some(options.metadata.into_iter().collect()))
            .content_md5(base64::encode(digest.md5))
            .checksum_sha256(base64::encode(digest.sha256))
            .body(ByteStream::from(data))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.sdk_failed("PutObject", key, e))?;
        Ok(())
    }

    /// The release record at `key`: missing, damaged (too large or unreadable), or found.
    pub async fn read_record(
        &self,
        key: &str,
        budget: &MemoryBudget,
    ) -> Result<(RecordState, Reservation), JobError> {
        let mut held = budget.reservation();
        let answer = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let object = match answer {
            Ok(object) => object,
            Err(e) => {
                let failure = SdkFailure::from_sdk("S3", "GetObject", &e)
                    .on(format!("s3://{}/{key}", self.bucket));
                return match failure.code() {
                    "NoSuchKey" | "NotFound" => Ok((RecordState::Missing, held)),
                    _ => Err(failure.into()),
                };
            }
        };
        let size = object.content_length().unwrap_or(0).max(0) as u64;
        if size > MAX_RECORD_BYTES {
            return Ok((
                RecordState::Damaged(format!("it is {size} bytes, over {MAX_RECORD_BYTES}")),
                held,
            ));
        }
        held.grow(size, "the release record")?;
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| self.failed("reading", key, e))?
            .into_bytes();
        Ok((RecordState::parse(&bytes), held))
    }

    /// Writes the release record in one `PutObject`: visible whole or not at all.
    pub async fn write_record(&self, key: &str, record: &ReleaseRecord) -> Result<(), JobError> {
        let body = serde_json::to_vec(record)
            .map_err(|e| JobError::failed(format!("cannot write the release record: {e}")))?;
        let md5 = <md5::Md5 as md5::Digest>::digest(&body);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .cache_control("no-store")
            .content_md5(base64::encode(md5))
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.sdk_failed("PutObject", key, e))?;
        Ok(())
    }

    pub async fn delete_keys(&self, keys: &[String]) -> Result<(), JobError> {
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
            let output = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| self.sdk_failed("DeleteObjects", first, e))?;
            if let Some(error) = output.errors().first() {
                return Err(self.failed(
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
}
