//! An S3 object written as a stream: one `PutObject` when small, multipart above the part
//! size. At most one part is buffered and one is in flight.

use super::error::{s3_error, ArtifactError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use tokio::task::JoinHandle;

/// S3's smallest part size is 5 MiB; 8 MiB keeps memory low and calls few.
pub const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;
/// Room for one more write past the part size before the part is cut.
const SLACK: usize = 128 * 1024;

/// Server-side encryption of an uploaded object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Encryption {
    /// No header: the bucket's default encryption applies.
    #[default]
    BucketDefault,
    /// `AES256` (SSE-S3).
    S3Managed,
    /// `aws:kms`, with a key id or the account's default `aws/s3` key.
    Kms(Option<String>),
}

/// Headers of an uploaded object.
#[derive(Clone, Debug, Default)]
pub struct ObjectOptions {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Content-Encoding` (`br`, `gzip`) of a file stored compressed.
    pub content_encoding: Option<String>,
    /// User metadata (`x-amz-meta-*`).
    pub metadata: Vec<(String, String)>,
    /// Server-side encryption of the object.
    pub encryption: Encryption,
}

/// Writes one object as a stream. Call [`ObjectUpload::finish`] to make it visible; on error
/// or [`ObjectUpload::abort`] nothing is left behind.
pub struct ObjectUpload {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    options: ObjectOptions,
    part_size: usize,
    buffer: Vec<u8>,
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    in_flight: Option<JoinHandle<Result<CompletedPart, ArtifactError>>>,
    written: u64,
}

impl ObjectUpload {
    /// Starts an upload to `bucket/key`; nothing is visible until [`Self::finish`].
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        options: ObjectOptions,
        part_size: usize,
    ) -> Self {
        let part_size = part_size.max(MIN_PART_SIZE);
        Self {
            client,
            bucket: bucket.into(),
            key: key.into(),
            options,
            part_size,
            buffer: Vec::with_capacity(part_size + SLACK),
            upload_id: None,
            parts: Vec::new(),
            in_flight: None,
            written: 0,
        }
    }

    /// Appends bytes; a full part is sent while the next one fills.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ArtifactError> {
        self.buffer.extend_from_slice(data);
        self.written += data.len() as u64;
        while self.buffer.len() >= self.part_size {
            // A fresh buffer of exact capacity: letting one Vec grow by doubling would reach
            // twice the part size, for the buffered part and again for the one in flight.
            let mut next = Vec::with_capacity(self.part_size + SLACK);
            next.extend_from_slice(&self.buffer[self.part_size..]);
            self.buffer.truncate(self.part_size);
            let part = std::mem::replace(&mut self.buffer, next);
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn send_part(&mut self, part: Vec<u8>) -> Result<(), ArtifactError> {
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let (sse, kms_key) = sse_headers(&self.options.encryption);
                let created = self
                    .client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&self.key)
                    .set_server_side_encryption(sse)
                    .set_ssekms_key_id(kms_key)
                    .set_content_type(self.options.content_type.clone())
                    .set_cache_control(self.options.cache_control.clone())
                    .set_content_encoding(self.options.content_encoding.clone())
                    .set_metadata(metadata_map(&self.options.metadata))
                    .send()
                    .await
                    .map_err(|e| s3_error("CreateMultipartUpload", &self.bucket, &self.key, e))?;
                let id = created.upload_id().unwrap_or_default().to_string();
                self.upload_id = Some(id.clone());
                id
            }
        };
        self.wait_in_flight().await?;
        let number = self.parts.len() as i32 + 1 + i32::from(self.in_flight.is_some());
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        self.in_flight = Some(tokio::spawn(async move {
            let out = client
                .upload_part()
                .bucket(&bucket)
                .key(&key)
                .upload_id(upload_id)
                .part_number(number)
                .body(ByteStream::from(part))
                // The SDK's CRC-32 of the part is a signed header that S3 checks; hashing the
                // payload again with SHA-256 to sign it would add nothing but CPU time.
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| s3_error("UploadPart", &bucket, &key, e))?;
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag)
                .build())
        }));
        Ok(())
    }

    async fn wait_in_flight(&mut self) -> Result<(), ArtifactError> {
        if let Some(task) = self.in_flight.take() {
            let part = task.await.map_err(|e| {
                ArtifactError::s3_transport(
                    "UploadPart",
                    &self.bucket,
                    &self.key,
                    format!("upload task failed: {e}"),
                )
            })??;
            self.parts.push(part);
        }
        Ok(())
    }

    /// Completes the upload (one `PutObject` when small, multipart otherwise) and returns the size written.
    pub async fn finish(mut self) -> Result<u64, ArtifactError> {
        let result = self.complete().await;
        if result.is_err() {
            self.abort().await;
        }
        result.map(|_| self.written)
    }

    async fn complete(&mut self) -> Result<(), ArtifactError> {
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.buffer);
            let (sse, kms_key) = sse_headers(&self.options.encryption);
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .set_server_side_encryption(sse)
                .set_ssekms_key_id(kms_key)
                .set_content_type(self.options.content_type.clone())
                .set_cache_control(self.options.cache_control.clone())
                .set_content_encoding(self.options.content_encoding.clone())
                .set_metadata(metadata_map(&self.options.metadata))
                .body(ByteStream::from(body))
                .customize()
                .disable_payload_signing()
                .send()
                .await
                .map_err(|e| s3_error("PutObject", &self.bucket, &self.key, e))?;
            return Ok(());
        }
        if !self.buffer.is_empty() {
            let last = std::mem::take(&mut self.buffer);
            self.send_part(last).await?;
        }
        self.wait_in_flight().await?;
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(std::mem::take(&mut self.parts)))
            .build();
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(self.upload_id.clone().unwrap_or_default())
            .multipart_upload(upload)
            .send()
            .await
            .map_err(|e| s3_error("CompleteMultipartUpload", &self.bucket, &self.key, e))?;
        self.upload_id = None;
        Ok(())
    }

    /// Drops what was uploaded so far: no partial object is left behind.
    pub async fn abort(&mut self) {
        if let Some(task) = self.in_flight.take() {
            let _ = task.await;
        }
        if let Some(upload_id) = self.upload_id.take() {
            let result = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
            if let Err(err) = result {
                tracing::warn!(bucket = %self.bucket, key = %self.key, error = %crate::sdk::SdkFailure::from_sdk("S3", "AbortMultipartUpload", &err), "could not abort multipart upload; an S3 lifecycle rule will clean it up");
            }
        }
        self.buffer = Vec::new();
    }
}

impl Drop for ObjectUpload {
    /// An upload dropped unfinished (its step failed, or the runner stopped the job at its
    /// deadline) leaves nothing running and nothing behind: the part in flight is cancelled,
    /// so it cannot land after the job's result was reported, and the multipart upload is
    /// aborted.
    fn drop(&mut self) {
        if let Some(task) = self.in_flight.take() {
            task.abort();
        }
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        runtime.spawn(async move {
            let result = client
                .abort_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(upload_id)
                .send()
                .await;
            match result {
                Ok(_) => tracing::info!(bucket = %bucket, key = %key, "unfinished multipart upload aborted"),
                Err(err) => tracing::warn!(bucket = %bucket, key = %key, error = %crate::sdk::SdkFailure::from_sdk("S3", "AbortMultipartUpload", &err), "could not abort multipart upload; an S3 lifecycle rule will clean it up"),
            }
        });
    }
}

fn sse_headers(encryption: &Encryption) -> (Option<ServerSideEncryption>, Option<String>) {
    match encryption {
        Encryption::BucketDefault => (None, None),
        Encryption::S3Managed => (Some(ServerSideEncryption::Aes256), None),
        Encryption::Kms(key) => (Some(ServerSideEncryption::AwsKms), key.clone()),
    }
}

fn metadata_map(
    metadata: &[(String, String)],
) -> Option<std::collections::HashMap<String, String>> {
    (!metadata.is_empty()).then(|| metadata.iter().cloned().collect())
}
