//! Serde model of the CodePipeline invoke-action event.
//!
//! Our own types rather than `aws_lambda_events`: that struct lacks `encryptionKey` and
//! `expirationTime`. Every struct tolerates unknown fields (AWS adds fields over time) and
//! missing optional ones. Credentials never appear in `Debug` output.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The whole Lambda event: `{"CodePipeline.job": {...}}`.
#[derive(Clone, Deserialize, Serialize)]
pub struct JobEvent {
    /// The job.
    #[serde(rename = "CodePipeline.job")]
    pub job: JobPayload,
}

/// A CodePipeline job: its id, account and data.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPayload {
    /// The job id, used in every report.
    pub id: String,
    /// The AWS account of the pipeline.
    #[serde(default)]
    pub account_id: String,
    /// The job's configuration, artifacts and credentials.
    pub data: JobData,
}

/// What the action gives the function.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobData {
    /// The action's configuration.
    #[serde(default)]
    pub action_configuration: ActionConfiguration,
    /// Input artifacts, in the action's order.
    #[serde(default)]
    pub input_artifacts: Vec<Artifact>,
    /// Output artifacts the function must write.
    #[serde(default)]
    pub output_artifacts: Vec<Artifact>,
    /// Temporary credentials for the artifact bucket (redacted from `Debug`).
    #[serde(default)]
    pub artifact_credentials: Option<ArtifactCredentials>,
    /// The KMS key artifacts are encrypted with, when the pipeline has one.
    #[serde(default)]
    pub encryption_key: Option<EncryptionKey>,
    /// Present when CodePipeline re-invokes with a token the function returned.
    #[serde(default)]
    pub continuation_token: Option<String>,
}

/// The action's configuration block.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ActionConfiguration {
    /// Its `configuration` map.
    #[serde(default)]
    pub configuration: Configuration,
}

/// The Lambda invoke action's configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Configuration {
    /// `FunctionName`.
    #[serde(default)]
    pub function_name: Option<String>,
    /// `UserParameters`, a string (our functions expect JSON).
    #[serde(default)]
    pub user_parameters: Option<String>,
}

/// An input or output artifact: a zip file at an S3 location.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// The artifact's name in the pipeline.
    pub name: String,
    /// The source revision, when CodePipeline gives one.
    #[serde(default)]
    pub revision: Option<String>,
    /// Where the artifact is stored.
    pub location: ArtifactLocation,
}

/// Where an artifact is stored.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLocation {
    /// `S3`.
    #[serde(rename = "type", default)]
    pub location_type: String,
    /// The bucket and key.
    pub s3_location: S3Location,
}

/// An S3 object.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    /// The bucket.
    pub bucket_name: String,
    /// The object key.
    pub object_key: String,
}

/// Temporary credentials CodePipeline issues for the job's artifact bucket.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: String,
    /// Epoch milliseconds in real events; tolerated as any JSON value.
    #[serde(default)]
    pub expiration_time: Option<serde_json::Value>,
}

impl fmt::Debug for ArtifactCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArtifactCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &"[redacted]")
            .finish()
    }
}

/// The key artifacts are encrypted with.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKey {
    /// Key id or ARN.
    pub id: String,
    /// `KMS`.
    #[serde(rename = "type", default)]
    pub key_type: String,
}

impl EncryptionKey {
    /// The KMS key id to put in `x-amz-server-side-encryption-aws-kms-key-id`, if this is a KMS key.
    pub fn kms_key_id(&self) -> Option<&str> {
        (self.key_type.eq_ignore_ascii_case("KMS") && !self.id.is_empty())
            .then_some(self.id.as_str())
    }
}

impl fmt::Debug for JobEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobEvent").field("job", &self.job).finish()
    }
}

impl fmt::Debug for JobPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobPayload")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("data", &self.data)
            .finish()
    }
}

impl fmt::Debug for JobData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // User parameters may embed values a user considers sensitive; the event as a whole is
        // never printed, so only the shape is shown here.
        f.debug_struct("JobData")
            .field("input_artifacts", &self.input_artifacts)
            .field("output_artifacts", &self.output_artifacts)
            .field("artifact_credentials", &self.artifact_credentials)
            .field("encryption_key", &self.encryption_key)
            .field("has_continuation_token", &self.continuation_token.is_some())
            .finish()
    }
}

/// Extracts the job id from an event that may not otherwise match the model, so that even a
/// malformed event gets its failure reported.
pub fn job_id_of(event: &serde_json::Value) -> Option<&str> {
    event.get("CodePipeline.job")?.get("id")?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../../../events/codepipeline-job.json");

    #[test]
    fn parses_sample_event_with_unknown_fields() {
        let mut value: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        value["CodePipeline.job"]["data"]["someNewField"] = serde_json::json!({"x": 1});
        value["CodePipeline.job"]["newTopLevel"] = serde_json::json!(true);
        let event: JobEvent = serde_json::from_value(value).unwrap();
        assert_eq!(event.job.data.input_artifacts.len(), 1);
        assert!(event.job.data.continuation_token.is_none());
    }

    #[test]
    fn debug_output_redacts_credentials() {
        let event: JobEvent = serde_json::from_str(SAMPLE).unwrap();
        let creds = event.job.data.artifact_credentials.clone().unwrap();
        let printed = format!("{event:?}");
        assert!(!printed.contains(&creds.secret_access_key));
        assert!(!printed.contains(&creds.session_token));
        assert!(printed.contains("[redacted]"));
    }

    #[test]
    fn kms_key_only_for_kms_type() {
        let key = EncryptionKey {
            id: "arn:aws:kms:k".into(),
            key_type: "KMS".into(),
        };
        assert_eq!(key.kms_key_id(), Some("arn:aws:kms:k"));
        let other = EncryptionKey {
            id: "x".into(),
            key_type: "OTHER".into(),
        };
        assert_eq!(other.kms_key_id(), None);
    }
}
