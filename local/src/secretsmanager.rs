//! A local Secrets Manager endpoint serving `GetSecretValue` from a JSON file.
//!
//! The file maps secret ids (names or ARNs, as the functions are configured) to values: a
//! string is served as is, anything else as its JSON text.

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, JsonService, ServiceError};
use crate::sts::LOCAL_ACCOUNT;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The local Secrets Manager: secrets by account, then id.
#[derive(Clone)]
pub struct LocalSecrets {
    /// By (account, id); the account is empty for secrets [`LocalSecrets::put`] without one,
    /// which the process's own role reads whatever account an ARN names (tests and runs that
    /// name secrets by any ARN).
    secrets: Arc<RwLock<HashMap<(String, String), Value>>>,
    calls: CallLog,
    faults: Faults,
    /// Which account a caller's credentials act in.
    accounts: crate::sts::Accounts,
}

impl LocalSecrets {
    /// An empty Secrets Manager recording into `calls`, answering `faults` first.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            secrets: Arc::default(),
            calls,
            faults,
            accounts: crate::sts::Accounts::default(),
        }
    }

    /// Answers each call from the secrets of the account its signer acts in; a secret ARN of
    /// another account is refused, as without a resource policy on AWS.
    pub fn with_accounts(mut self, sts: crate::sts::LocalSts) -> Self {
        self.accounts = crate::sts::Accounts::from_sts(sts);
        self
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

    /// Stores a JSON secret the process's own role reads.
    pub fn put(&self, secret_id: &str, value: Value) {
        self.put_in("", secret_id, value);
    }

    /// Stores a JSON secret in `account`.
    pub fn put_in(&self, account: &str, secret_id: &str, value: Value) {
        if let Ok(mut secrets) = self.secrets.write() {
            secrets.insert((account.into(), secret_id.into()), value);
        }
    }

    /// A secret's value in this process's account, read without going through the endpoint
    /// (for what pipeline-local does itself, such as a build's `secrets-manager` variables).
    pub fn get(&self, secret_id: &str) -> Option<Value> {
        self.get_in(LOCAL_ACCOUNT, secret_id)
    }

    /// The secret as a caller acting in `account` sees it.
    fn get_in(&self, account: &str, secret_id: &str) -> Option<Value> {
        let secrets = self.secrets.read().ok()?;
        let found = secrets.get(&(account.to_string(), secret_id.to_string()));
        let own = (account == LOCAL_ACCOUNT)
            .then(|| secrets.get(&(String::new(), secret_id.to_string())))
            .flatten();
        found.or(own).cloned()
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
        self.dispatch_as(operation, request, None)
    }

    fn dispatch_as(
        &self,
        operation: &str,
        request: &Value,
        caller: Option<&str>,
    ) -> Result<Value, ServiceError> {
        let account = self.accounts.of(caller)?;
        match operation {
            "GetSecretValue" => get_secret_value(self, &account, &secret_id(request)),
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

fn get_secret_value(
    local: &LocalSecrets,
    account: &str,
    secret_id: &str,
) -> Result<Value, ServiceError> {
    if secret_id.is_empty() {
        return Err(ServiceError::client(
            "InvalidParameterException",
            "SecretId is required",
        ));
    }
    let found = local.get_in(account, secret_id);
    // An ARN names its account: another account's secret needs a resource policy we do not
    // model, so it is refused as AWS refuses it without one.
    let owner = secret_id
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3));
    if found.is_none() && owner.is_some_and(|owner| owner != account) {
        return Err(ServiceError::client(
            "AccessDeniedException",
            format!("User: arn:aws:sts::{account}:assumed-role/caller is not authorized to perform: secretsmanager:GetSecretValue on resource: {secret_id} because no resource-based policy allows the secretsmanager:GetSecretValue action"),
        ));
    }
    let Some(value) = found else {
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
        format!("arn:aws:secretsmanager:us-east-1:{account}:secret:{name}")
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
