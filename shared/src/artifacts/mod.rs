//! Artifact IO: zip files in S3, read and written with the job's own credentials.

mod allocator;
mod budget;
mod central_directory;
mod entry_name;
mod entry_stream;
mod error;
mod limits;
mod reader;
mod s3_body;
mod upload;
mod writer;

#[cfg(test)]
mod properties;

pub use budget::{MemoryBudget, Reservation};
pub use central_directory::ZipEntry;
pub use entry_name::check_entry_name;
pub use entry_stream::EntryStream;
pub use error::ArtifactError;
pub use limits::{memory_budget_bytes, ZipLimits};
pub use reader::{ArtifactReader, EntryHasher, ReadTimings, Verified, PARALLEL_READS};
pub use upload::{Encryption, ObjectOptions, ObjectUpload, DEFAULT_PART_SIZE};
pub use writer::{ArtifactWriter, WrittenArtifact};

use crate::job::{Artifact, ArtifactCredentials, EncryptionKey};
use aws_config::SdkConfig;
use aws_credential_types::Credentials;

/// S3 access for one job: a client signed with the job's `artifactCredentials` (never the
/// function role) that keeps the function's endpoint settings, and the job's KMS key.
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    client: aws_sdk_s3::Client,
    kms_key_id: Option<String>,
    limits: ZipLimits,
    part_size: usize,
    budget: MemoryBudget,
}

impl ArtifactStore {
    /// A store for one job: S3 signed with the job's `artifactCredentials`, the function's endpoint settings kept.
    pub fn for_job(
        sdk_config: &SdkConfig,
        credentials: &ArtifactCredentials,
        encryption_key: Option<&EncryptionKey>,
    ) -> Self {
        allocator::pin_mmap_threshold();
        let credentials = Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.clone(),
            Some(credentials.session_token.clone()),
            None,
            "CodePipelineArtifactCredentials",
        );
        let config = aws_sdk_s3::config::Builder::from(sdk_config)
            .credentials_provider(credentials)
            .build();
        Self {
            client: aws_sdk_s3::Client::from_conf(config),
            kms_key_id: encryption_key
                .and_then(EncryptionKey::kms_key_id)
                .map(str::to_owned),
            limits: ZipLimits::from_env(),
            part_size: DEFAULT_PART_SIZE,
            budget: MemoryBudget::from_env(),
        }
    }

    /// Replaces the zip limits (default: [`ZipLimits::from_env`]).
    pub fn with_limits(mut self, limits: ZipLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Replaces the multipart part size (default 8 MiB).
    pub fn with_part_size(mut self, part_size: usize) -> Self {
        self.part_size = part_size;
        self
    }

    /// The S3 client signed with the job's credentials.
    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }

    /// The job's KMS key id, if CodePipeline gave one.
    pub fn kms_key_id(&self) -> Option<&str> {
        self.kms_key_id.as_deref()
    }

    /// The multipart part size in bytes.
    pub fn part_size(&self) -> usize {
        self.part_size
    }

    /// The memory the job's per-entry bookkeeping may hold, shared by every reader and writer
    /// of this store and by the steps' own lists.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// The zip limits in force.
    pub fn limits(&self) -> ZipLimits {
        self.limits
    }

    /// Opens an input artifact, checking its whole table of contents.
    pub async fn open(&self, artifact: &Artifact) -> Result<ArtifactReader, ArtifactError> {
        let location = &artifact.location.s3_location;
        ArtifactReader::open(
            &self.client,
            &location.bucket_name,
            &location.object_key,
            self.limits,
            &self.budget,
        )
        .await
    }

    /// Starts writing an output artifact; nothing is visible in S3 until it is finished.
    pub fn create(&self, artifact: &Artifact) -> ArtifactWriter {
        let location = &artifact.location.s3_location;
        self.create_at(&location.bucket_name, &location.object_key)
    }

    /// Starts writing a zip to any bucket and key the job's credentials may write.
    pub fn create_at(&self, bucket: &str, key: &str) -> ArtifactWriter {
        let options = ObjectOptions {
            content_type: Some("application/zip".into()),
            encryption: Encryption::Kms(self.kms_key_id.clone()),
            ..ObjectOptions::default()
        };
        let upload = ObjectUpload::new(self.client.clone(), bucket, key, options, self.part_size);
        ArtifactWriter::new(upload, bucket, key, self.budget.reservation())
    }
}
