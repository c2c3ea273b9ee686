//! A local Secrets Manager endpoint serving `GetSecretValue` from a JSON file.
//!
//! The file maps secret ids (names or ARNs, as the functions are configured) to values: a
//! string is served as is, anything else as its JSON text.

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, JsonService, ServiceError};
use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The local Secrets Manager: secrets by id.
#[derive(Clone)]
pub struct LocalSecrets {
    secrets: Arc<RwLock<Map<String, Value>>>,
    calls: CallLog,
    faults: Faults,
}

impl LocalSecrets {
    /// An empty Secrets Manager recording into `calls`, answering `faults` first.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            secrets: Arc::default(),
            calls,
            faults,
        }
    }

    /// Loads (and adds to what is there) the secrets of a JSON file.
    pub fn load_file(&self, path: &Path) -> Result<usize, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read secrets file {}: {e}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("secrets file {} is not JSON: {e}", path.display()))?;
        let Value::Object(map) = value else {
            return Err(format!(
                "secrets file {} must hold a JSON object of secret id to value",
                path.display()
            ));
        };
        let count = map.len();
        for (id, value) in map {
            self.put(&id, value);
        }
        Ok(count)
    }

    /// Stores a JSON secret.
    pub fn put(&self, secret_id: &str, value: Value) {
        if let Ok(mut secrets) = self.secrets.write() {
            secrets.insert(secret_id.into(), value);
        }
    }

    /// A secret's value, read without going through the endpoint (for what pipeline-local does
    /// itself, such as a build's `secrets-manager` variables).
    pub fn get(&self, secret_id: &str) -> Option<Value> {
        self.secrets.read().ok()?.get(secret_id).cloned()
    }

    /// The endpoint's routes (awsJson 1.1).
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }
}

impl JsonService for LocalSecrets {
    const NAME: &'static str = "secretsmanager";
    const TARGET_PREFIX: &'static str = "secretsmanager";
    const AWS_JSON: AwsJson = AwsJson::V1_1;

    fn dispatch(&self, operation: &str, request: &Value) -> Result<Value, ServiceError> {
        match operation {
            "GetSecretValue" => get_secret_value(self, &secret_id(request)),
            other => Err(ServiceError::unknown_operation(other)),
        }
    }

    fn fault_key(&self, request: &Value) -> Option<String> {
        Some(secret_id(request))
    }

    /// Only which secret was asked for: the value is never recorded.
    fn call_detail(&self, request: &Value) -> Value {
        json!({"SecretId": secret_id(request)})
    }
}

fn secret_id(request: &Value) -> String {
    request
        .get("SecretId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn get_secret_value(local: &LocalSecrets, secret_id: &str) -> Result<Value, ServiceError> {
    if secret_id.is_empty() {
        return Err(ServiceError::client(
            "InvalidParameterException",
            "SecretId is required",
        ));
    }
    let secrets = local.secrets.read().map_err(|_| {
        ServiceError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServiceError",
            "state poisoned",
        )
    })?;
    let Some(value) = secrets.get(secret_id) else {
        return Err(ServiceError::client(
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        ));
    };
    let text = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let name = secret_id.rsplit(":secret:").next().unwrap_or(secret_id);
    let arn = if secret_id.starts_with("arn:") {
        secret_id.to_string()
    } else {
        format!("arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}")
    };
    Ok(json!({
        "ARN": arn,
        "Name": name,
        "SecretString": text,
        "VersionId": "00000000-0000-0000-0000-000000000001",
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_700_000_000.0,
    }))
}
