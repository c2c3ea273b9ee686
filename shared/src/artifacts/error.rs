//! Errors of artifact IO, each mapping to one CodePipeline failure type.

use crate::job::JobError;
use crate::sdk::SdkFailure;

/// What went wrong reading or writing an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// An S3 call failed.
    #[error("{0}")]
    S3(SdkFailure),

    /// The object is not a readable zip archive.
    #[error("artifact s3://{bucket}/{key} is not a valid zip archive: {reason}")]
    NotAZip {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// Why it cannot be read as a zip.
        reason: String,
    },

    /// An entry that must never be extracted (path traversal, absolute path, symlink...).
    #[error("refused unsafe zip entry `{name}`: {reason}")]
    UnsafeEntry {
        /// The entry's name as stored.
        name: String,
        /// Why it is refused.
        reason: String,
    },

    /// The archive is over a configured limit (entries, size, expansion ratio).
    #[error("refused zip archive: {0}")]
    OverLimit(String),

    /// An entry's data does not match its headers (CRC, size, compression stream).
    #[error("corrupt zip entry `{name}`: {reason}")]
    CorruptEntry {
        /// The entry's name.
        name: String,
        /// What does not match.
        reason: String,
    },

    /// A zip feature we do not read (encryption, an unknown compression method).
    #[error("unsupported zip entry `{name}`: {reason}")]
    Unsupported {
        /// The entry's name.
        name: String,
        /// The feature it uses.
        reason: String,
    },

    /// What the job holds per entry would pass the function's memory budget
    /// ([`super::MemoryBudget`]).
    #[error("{0}")]
    OverMemoryBudget(String),

    /// Misuse of the writer (an entry name that is not a safe relative path, a write with no
    /// open entry).
    #[error("cannot write zip entry: {0}")]
    InvalidWrite(String),
}

impl ArtifactError {
    /// True when S3 refused the job's credentials (denied, unknown or expired key, KMS denied).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, ArtifactError::S3(failure) if failure.is_permission())
    }

    /// An S3 failure without an answer from S3 (a broken stream, a failed task).
    pub(crate) fn s3_transport(
        operation: &'static str,
        bucket: &str,
        key: &str,
        message: String,
    ) -> Self {
        ArtifactError::S3(SdkFailure {
            service: "S3",
            operation,
            resource: Some(format!("s3://{bucket}/{key}")),
            code: None,
            status: None,
            message,
        })
    }
}

impl From<ArtifactError> for JobError {
    fn from(err: ArtifactError) -> Self {
        if err.is_access_denied() {
            JobError::permission(err.to_string())
        } else {
            JobError::failed(err.to_string())
        }
    }
}

/// Turns an SDK error into [`ArtifactError::S3`], keeping S3's code and message.
pub(crate) fn s3_error<E>(
    operation: &'static str,
    bucket: &str,
    key: &str,
    err: aws_sdk_s3::error::SdkError<E>,
) -> ArtifactError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    ArtifactError::S3(
        SdkFailure::from_sdk("S3", operation, &err).on(format!("s3://{bucket}/{key}")),
    )
}
