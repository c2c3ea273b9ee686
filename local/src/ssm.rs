//! A local SSM Parameter Store: `GetParameter`, `GetParameters`, `GetParametersByPath` and
//! `PutParameter` over awsJson 1.1, as the SDKs and the AWS CLI speak it.
//!
//! Builds read it for `env.parameter-store` and `PARAMETER_STORE` variables, functions through
//! `AWS_ENDPOINT_URL_SSM`. `run --ssm-parameters FILE` loads a JSON object of parameter name to
//! value: a string is a `String` parameter, `{"Value": …, "Type": "SecureString"}` chooses the
//! type. Values are never written to the call log, as a `SecureString` must not leak there.

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, JsonService, ServiceError};
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The ARN prefix of this account's parameters.
const ARN_PREFIX: &str = "arn:aws:ssm:us-east-1:000000000000:parameter";

/// One stored parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parameter {
    /// The value, as given.
    pub value: String,
    /// `String`, `StringList` or `SecureString`.
    pub kind: String,
    /// 1 on creation, one more on each overwrite.
    pub version: u64,
}

/// The local Parameter Store: parameters by name (a leading `/` kept as given).
#[derive(Clone)]
pub struct LocalParameterStore {
    parameters: Arc<RwLock<BTreeMap<String, Parameter>>>,
    calls: CallLog,
    faults: Faults,
}

impl LocalParameterStore {
    /// An empty store recording into `calls`, answering `faults` first.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            parameters: Arc::default(),
            calls,
            faults,
        }
    }

    /// Loads (and adds to what is there) the parameters of a JSON file.
    pub fn load_file(&self, path: &Path) -> Result<usize, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read parameters file {}: {e}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("parameters file {} is not JSON: {e}", path.display()))?;
        let Value::Object(map) = value else {
            return Err(format!(
                "parameters file {} must hold a JSON object of parameter name to value",
                path.display()
            ));
        };
        let count = map.len();
        for (name, value) in map {
            let (value, kind) = match value {
                Value::String(text) => (text, "String".to_string()),
                Value::Object(fields) => {
                    let text = fields.get("Value").and_then(Value::as_str).ok_or_else(|| {
                        format!(
                            "parameter {name} in {}: an object needs a string \"Value\"",
                            path.display()
                        )
                    })?;
                    let kind = fields
                        .get("Type")
                        .and_then(Value::as_str)
                        .unwrap_or("String");
                    (text.to_string(), kind.to_string())
                }
                other => (other.to_string(), "String".to_string()),
            };
            check_kind(&kind).map_err(|e| format!("parameter {name}: {}", e.message))?;
            self.put(&name, &value, &kind);
        }
        Ok(count)
    }

    /// Stores a parameter (a new version when it exists).
    pub fn put(&self, name: &str, value: &str, kind: &str) -> u64 {
        let Ok(mut parameters) = self.parameters.write() else {
            return 0;
        };
        let version = parameters.get(name).map_or(1, |p| p.version + 1);
        parameters.insert(
            name.to_string(),
            Parameter {
                value: value.to_string(),
                kind: kind.to_string(),
                version,
            },
        );
        version
    }

    /// A parameter's value, read without going through the endpoint (for what pipeline-local
    /// does itself, such as a build's `parameter-store` variables).
    pub fn get(&self, name: &str) -> Option<Parameter> {
        self.parameters.read().ok()?.get(name).cloned()
    }

    /// The endpoint's routes (awsJson 1.1).
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }
}

impl JsonService for LocalParameterStore {
    const NAME: &'static str = "ssm";
    const TARGET_PREFIX: &'static str = "AmazonSSM";
    const AWS_JSON: AwsJson = AwsJson::V1_1;

    fn dispatch(&self, operation: &str, request: &Value) -> Result<Value, ServiceError> {
        match operation {
            "GetParameter" => {
                let name = required(request, "Name")?;
                let parameters = self.parameters.read().map_err(|_| poisoned())?;
                let parameter = parameters.get(name).ok_or_else(|| {
                    ServiceError::client(
                        "ParameterNotFound",
                        format!("Parameter {name} not found."),
                    )
                })?;
                Ok(json!({"Parameter": shape(name, parameter, decrypt(request))}))
            }
            "GetParameters" => {
                let names = request["Names"]
                    .as_array()
                    .ok_or_else(|| ServiceError::missing_member("names"))?;
                if names.is_empty() || names.len() > 10 {
                    return Err(ServiceError::client(
                        "ValidationException",
                        "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10",
                    ));
                }
                let parameters = self.parameters.read().map_err(|_| poisoned())?;
                let (mut found, mut invalid) = (Vec::new(), Vec::new());
                for name in names.iter().filter_map(Value::as_str) {
                    match parameters.get(name) {
                        Some(p) => found.push(shape(name, p, decrypt(request))),
                        None => invalid.push(json!(name)),
                    }
                }
                Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
            }
            "GetParametersByPath" => {
                let path = required(request, "Path")?;
                if !path.starts_with('/') {
                    return Err(ServiceError::client(
                        "ValidationException",
                        "The parameter path must begin with a forward slash (/).",
                    ));
                }
                let prefix = if path.ends_with('/') {
                    path.to_string()
                } else {
                    format!("{path}/")
                };
                let recursive = request["Recursive"].as_bool().unwrap_or(false);
                let parameters = self.parameters.read().map_err(|_| poisoned())?;
                let found: Vec<Value> = parameters
                    .iter()
                    .filter(|(name, _)| {
                        name.strip_prefix(&prefix)
                            .is_some_and(|rest| recursive || !rest.contains('/'))
                    })
                    .map(|(name, p)| shape(name, p, decrypt(request)))
                    .collect();
                Ok(json!({"Parameters": found}))
            }
            "PutParameter" => {
                let name = required(request, "Name")?;
                let value = required(request, "Value")?;
                let kind = request["Type"].as_str().unwrap_or("String");
                check_kind(kind)?;
                let exists = self.get(name).is_some();
                if exists && !request["Overwrite"].as_bool().unwrap_or(false) {
                    return Err(ServiceError::client(
                        "ParameterAlreadyExists",
                        "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
                    ));
                }
                let version = self.put(name, value, kind);
                Ok(json!({"Version": version, "Tier": "Standard"}))
            }
            other => Err(ServiceError::unknown_operation(other)),
        }
    }

    fn fault_key(&self, request: &Value) -> Option<String> {
        request["Name"].as_str().map(str::to_owned)
    }

    /// Only which parameters were asked for: values are never recorded.
    fn call_detail(&self, request: &Value) -> Value {
        json!({
            "Name": request.get("Name"),
            "Names": request.get("Names"),
            "Path": request.get("Path"),
        })
    }
}

/// A parameter as the API answers it; a `SecureString` without `WithDecryption` answers its
/// value encrypted, here a marker that cannot be mistaken for the value.
fn shape(name: &str, parameter: &Parameter, decrypt: bool) -> Value {
    let value = if parameter.kind == "SecureString" && !decrypt {
        "(encrypted: ask WithDecryption)".to_string()
    } else {
        parameter.value.clone()
    };
    let arn_name = if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    };
    json!({
        "Name": name,
        "Type": parameter.kind,
        "Value": value,
        "Version": parameter.version,
        "ARN": format!("{ARN_PREFIX}{arn_name}"),
        "DataType": "text",
        "LastModifiedDate": 1_700_000_000.0,
    })
}

fn decrypt(request: &Value) -> bool {
    request["WithDecryption"].as_bool().unwrap_or(false)
}

fn required<'r>(request: &'r Value, member: &str) -> Result<&'r str, ServiceError> {
    request[member]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ServiceError::missing_member(&member.to_ascii_lowercase()))
}

fn check_kind(kind: &str) -> Result<(), ServiceError> {
    match kind {
        "String" | "StringList" | "SecureString" => Ok(()),
        other => Err(ServiceError::client(
            "ValidationException",
            format!("1 validation error detected: Value '{other}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"),
        )),
    }
}

fn poisoned() -> ServiceError {
    ServiceError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "state poisoned",
    )
}
