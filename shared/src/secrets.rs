//! Secrets Manager JSON secrets, cached across warm invocations.

use crate::sdk::SdkFailure;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a secret is reused before it is fetched again (rotation takes effect within this).
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);

/// Why a secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// `GetSecretValue` failed (the failure names the secret).
    #[error("could not read the secret: {0}")]
    Fetch(SdkFailure),
    /// The secret holds binary data, not a string.
    #[error("secret {secret_id} has no SecretString (binary secrets are not supported)")]
    NotAString {
        /// The secret id or ARN.
        secret_id: String,
    },
    /// The secret's JSON is not of the expected shape. The message never quotes the
    /// secret's content.
    #[error("secret {secret_id} is not the expected JSON: {problem}")]
    Shape {
        /// The secret id or ARN.
        secret_id: String,
        /// What is wrong with its JSON (never its value).
        problem: String,
    },
}

impl SecretError {
    /// True when the function's role may not read the secret.
    pub fn is_access_denied(&self) -> bool {
        matches!(self, SecretError::Fetch(failure) if failure.is_permission())
    }
}

impl From<SecretError> for crate::job::JobError {
    fn from(err: SecretError) -> Self {
        match &err {
            _ if err.is_access_denied() => crate::job::JobError::permission(err.to_string()),
            // Secrets Manager was busy or unreachable: not the configuration's fault.
            SecretError::Fetch(failure) if failure.is_transient() => {
                crate::job::JobError::failed(err.to_string())
            }
            _ => crate::job::JobError::config(err.to_string()),
        }
    }
}

/// Secret values by id, with the time each was fetched.
type CachedSecrets = HashMap<String, (Instant, Arc<String>)>;

/// Fetches secrets by id or ARN and keeps them for a TTL.
#[derive(Clone)]
pub struct SecretCache {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    entries: Arc<Mutex<CachedSecrets>>,
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretCache {
    /// A cache keeping values for five minutes.
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self::with_ttl(client, DEFAULT_SECRET_TTL)
    }

    /// A cache keeping values for `ttl`.
    pub fn with_ttl(client: aws_sdk_secretsmanager::Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            entries: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The secret's string, from the cache while fresh.
    pub async fn get_string(&self, secret_id: &str) -> Result<Arc<String>, SecretError> {
        if let Some(value) = self.cached(secret_id) {
            return Ok(value);
        }
        let output = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|err| {
                SecretError::Fetch(
                    SdkFailure::from_sdk("SecretsManager", "GetSecretValue", &err).on(secret_id),
                )
            })?;
        let value = Arc::new(
            output
                .secret_string()
                .ok_or_else(|| SecretError::NotAString {
                    secret_id: secret_id.to_string(),
                })?
                .to_string(),
        );
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(secret_id.to_string(), (Instant::now(), value.clone()));
        }
        Ok(value)
    }

    /// The secret parsed as JSON into `T`.
    pub async fn get_json<T: DeserializeOwned>(&self, secret_id: &str) -> Result<T, SecretError> {
        let raw = self.get_string(secret_id).await?;
        serde_json::from_str(&raw).map_err(|err| SecretError::Shape {
            secret_id: secret_id.to_string(),
            problem: describe_without_values(&err),
        })
    }

    /// Forgets the cached value, so the next read fetches the current one (after a rotation).
    pub fn invalidate(&self, secret_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(secret_id);
        }
    }

    fn cached(&self, secret_id: &str) -> Option<Arc<String>> {
        let entries = self.entries.lock().ok()?;
        let (at, value) = entries.get(secret_id)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }
}

/// serde_json messages quote offending values ("invalid type: string \"hunter2\""); for a
/// secret only the kind of problem and the position are safe to show.
fn describe_without_values(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let text = err.to_string();
    let kind = match err.classify() {
        Category::Syntax | Category::Eof => "not valid JSON",
        Category::Io => "could not be read",
        Category::Data => {
            if let Some(field) = text
                .strip_prefix("missing field ")
                .and_then(|rest| rest.split(' ').next())
            {
                return format!("missing field {field}");
            }
            if let Some(field) = text
                .strip_prefix("unknown field ")
                .and_then(|rest| rest.split(',').next())
            {
                return format!("unknown field {field}");
            }
            "a field has the wrong type or value"
        }
    };
    format!("{kind} (line {}, column {})", err.line(), err.column())
}

#[cfg(test)]
mod tests {
    use super::describe_without_values;

    #[test]
    fn shape_errors_never_quote_the_secret() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Db {
            port: u16,
        }
        let err = serde_json::from_str::<Db>(r#"{"port": "hunter2-secret"}"#).unwrap_err();
        let text = describe_without_values(&err);
        assert!(!text.contains("hunter2"), "{text}");
        let missing = serde_json::from_str::<Db>(r#"{"password": "hunter2"}"#).unwrap_err();
        assert_eq!(
            describe_without_values(&missing)
                .split(' ')
                .take(3)
                .collect::<Vec<_>>(),
            ["missing", "field", "`port`"]
        );
    }
}
