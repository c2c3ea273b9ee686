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
    #[serde(rename = "CodePipeline.job")]
    pub job: JobPayload,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobPayload {
    pub id: String,
    #[serde(default)]
    pub account_id: String,
    pub data: JobData,
}

#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobData {
    #[serde(default)]
    pub action_configuration: ActionConfiguration,
    #[serde(default)]
    pub input_artifacts: Vec<Artifact>,
    #[serde(default)]
    pub output_artifacts: Vec<Artifact>,
    #[serde(default)]
    pub artifact_credentials: Option<ArtifactCredentials>,
    #[serde(default)]
    pub encryption_key: Option<EncryptionKey>,
    #[serde(default)]
    pub continuation_token: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ActionConfiguration {
    #[serde(default)]
    pub configuration: Configuration,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Configuration {
    #[serde(default)]
    pub function_name: Option<String>,
    #[serde(default)]
    pub user_parameters: Option<String>,
}

/// An input or output artifact: a zip file at an S3 location.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub name: String,
    #[serde(default)]
    pub revision: Option<String>,
    pub location: ArtifactLocation,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactLocation {
    #[serde(rename = "type", default)]
    pub location_type: String,
    pub s3_location: S3Location,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct S3Location {
    pub bucket_name: String,
    pub object_key: String,
}

/// Temporary credentials CodePipeline issues for the job's artifact bucket.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
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

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionKey {
    pub id: String,
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
