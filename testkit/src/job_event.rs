//! `CodePipeline.job` events for tests.

use pipeline_local::job_invocation::new_job_id;
use serde_json::{json, Value};

/// Builds `CodePipeline.job` events.
#[derive(Clone, Debug)]
pub struct JobEventBuilder {
    event: Value,
}

impl JobEventBuilder {
    /// A job for `function` with a fresh job id and the given `UserParameters`.
    pub fn new(function: &str, user_parameters: &Value) -> Self {
        let event = json!({
            "CodePipeline.job": {
                "id": new_job_id(),
                "accountId": "111111111111",
                "data": {
                    "actionConfiguration": {"configuration": {"FunctionName": function, "UserParameters": user_parameters.to_string()}},
                    "inputArtifacts": [],
                    "outputArtifacts": []
                }
            }
        });
        Self { event }
    }

    /// The event's job id.
    pub fn job_id(&self) -> String {
        self.event["CodePipeline.job"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn artifact(list: &mut Value, name: &str, bucket: &str, key: &str) {
        if let Some(items) = list.as_array_mut() {
            items.push(json!({"name": name, "revision": "local", "location": {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}}));
        }
    }

    /// Adds an input artifact at `bucket/key`.
    pub fn input(mut self, name: &str, bucket: &str, key: &str) -> Self {
        Self::artifact(
            &mut self.event["CodePipeline.job"]["data"]["inputArtifacts"],
            name,
            bucket,
            key,
        );
        self
    }

    /// Adds an output artifact at `bucket/key`.
    pub fn output(mut self, name: &str, bucket: &str, key: &str) -> Self {
        Self::artifact(
            &mut self.event["CodePipeline.job"]["data"]["outputArtifacts"],
            name,
            bucket,
            key,
        );
        self
    }

    /// Sets the job's KMS `encryptionKey`.
    pub fn kms_key(mut self, key_id: &str) -> Self {
        self.event["CodePipeline.job"]["data"]["encryptionKey"] =
            json!({"id": key_id, "type": "KMS"});
        self
    }

    /// The event.
    pub fn build(self) -> Value {
        self.event
    }
}
