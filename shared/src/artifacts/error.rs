//! Errors of artifact IO, each mapping to one CodePipeline failure type.

use crate::job::JobError;

/// What went wrong reading or writing an artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// An S3 call failed. `code` is S3's error code when it sent one.
    #[error("S3 {operation} on s3://{bucket}/{key} failed: {}", .code.as_deref().map(|c| format!("{c}: {}", .message)).unwrap_or_else(|| .message.clone()))]
    S3 {
        /// The S3 operation (`GetObject`, `PutObject`…).
        operation: &'static str,
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// S3's error code, when it sent one.
        code: Option<String>,
        /// S3's message, or the transport error.
        message: String,
    },

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

    /// Misuse of the writer (an entry name that is not a safe relative path, a write with no
    /// open entry).
    #[error("cannot write zip entry: {0}")]
    InvalidWrite(String),
}

impl ArtifactError {
    /// True when S3 refused the job's credentials (denied, unknown or expired key, KMS denied).
    pub fn is_access_denied(&self) -> bool {
        matches!(self, ArtifactError::S3 { code: Some(code), .. } if code == "AccessDenied" || code == "Forbidden" || code == "InvalidAccessKeyId" || code == "ExpiredToken" || code == "KMS.AccessDeniedException")
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
    use aws_sdk_s3::error::ProvideErrorMetadata;
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned).or_else(|| match status {
        // HEAD answers carry no body, so no code: the status tells.
        Some(403) => Some("AccessDenied".to_string()),
        Some(404) => Some("NoSuchKey".to_string()),
        _ => None,
    });
    let message = err
        .message()
        .map(str::to_owned)
        .unwrap_or_else(|| aws_smithy_types::error::display::DisplayErrorContext(&err).to_string());
    ArtifactError::S3 {
        operation,
        bucket: bucket.to_string(),
        key: key.to_string(),
        code,
        message,
    }
}
