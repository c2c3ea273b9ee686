//! A local Secrets Manager endpoint serving `GetSecretValue` from a JSON file.
//!
//! The file maps secret ids (names or ARNs, as the functions are configured) to values: a
//! string is served as is, anything else as its JSON text.

use crate::calls::{access_key_of, now_ms, Call, CallLog};
use crate::faults::Faults;
use crate::json_rpc;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::sync::{Arc, RwLock};

const TARGET_PREFIX: &str = "secretsmanager";

#[derive(Clone)]
pub struct LocalSecrets {
    secrets: Arc<RwLock<Map<String, Value>>>,
    calls: CallLog,
    faults: Faults,
}

impl LocalSecrets {
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

    pub fn put(&self, secret_id: &str, value: Value) {
        if let Ok(mut secrets) = self.secrets.write() {
            secrets.insert(secret_id.into(), value);
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(handle))
            .with_state(self.clone())
    }
}

async fn handle(State(local): State<LocalSecrets>, headers: HeaderMap, body: Bytes) -> Response {
    let at_ms = now_ms();
    let operation = json_rpc::operation(&headers, TARGET_PREFIX)
        .unwrap_or("")
        .to_string();
    let request = match json_rpc::parse_body(&body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let secret_id = request
        .get("SecretId")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let response = if let Some(fault) =
        local
            .faults
            .take("secretsmanager", &operation, Some(&secret_id))
    {
        json_rpc::error(
            StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST),
            &fault.code,
            &fault.message,
        )
    } else if operation != "GetSecretValue" {
        json_rpc::error(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            &format!("operation {operation} is not served by pipeline-local"),
        )
    } else {
        get_secret_value(&local, &secret_id)
    };
    // The secret's value is never recorded, only which secret was asked for.
    local.calls.record(Call {
        service: "secretsmanager",
        operation,
        at_ms,
        status: response.status().as_u16(),
        access_key: access_key_of(&headers),
        detail: json!({"SecretId": secret_id}),
    });
    response
}

fn get_secret_value(local: &LocalSecrets, secret_id: &str) -> Response {
    if secret_id.is_empty() {
        return json_rpc::error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            "SecretId is required",
        );
    }
    let secrets = match local.secrets.read() {
        Ok(secrets) => secrets,
        Err(_) => {
            return json_rpc::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                "state poisoned",
            )
        }
    };
    let Some(value) = secrets.get(secret_id) else {
        return json_rpc::error(
            StatusCode::BAD_REQUEST,
            "ResourceNotFoundException",
            "Secrets Manager can't find the specified secret.",
        );
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
    json_rpc::ok(json!({
        "ARN": arn,
        "Name": name,
        "SecretString": text,
        "VersionId": "00000000-0000-0000-0000-000000000001",
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_700_000_000.0,
    }))
}
