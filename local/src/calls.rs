//! The record of every call the local endpoints answered, for tests and for people.

use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// One process-wide clock, so call times and process spawn times compare.
pub fn clock_start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Milliseconds since [`clock_start`].
pub fn ms_since_start() -> f64 {
    clock_start().elapsed().as_secs_f64() * 1000.0
}

/// One call an endpoint answered.
#[derive(Clone, Debug, Serialize)]
pub struct Call {
    /// `S3`, `CodePipeline`…
    pub service: &'static str,
    /// `GetObject`, `PutJobSuccessResult`…
    pub operation: String,
    /// Milliseconds since [`clock_start`] when the call arrived.
    pub at_ms: f64,
    /// The HTTP status answered.
    pub status: u16,
    /// The access key id that signed the request, if it was signed.
    pub access_key: Option<String>,
    /// The request's relevant fields (bucket, key, headers, the JSON body of API calls).
    pub detail: Value,
}

/// Every call the endpoints answered, shared by them.
#[derive(Clone, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl CallLog {
    /// Adds a call.
    pub fn record(&self, call: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    /// Every call so far.
    pub fn all(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Calls of one operation, oldest first.
    pub fn of(&self, service: &str, operation: &str) -> Vec<Call> {
        self.all()
            .into_iter()
            .filter(|c| c.service == service && c.operation == operation)
            .collect()
    }

    /// How many calls of this operation.
    pub fn count(&self, service: &str, operation: &str) -> usize {
        self.of(service, operation).len()
    }

    /// Forgets every call.
    pub fn clear(&self) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.clear();
        }
    }
}

/// The access key id in a SigV4 `Authorization` header.
pub fn access_key_of(headers: &http::HeaderMap) -> Option<String> {
    let auth = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    Some(credential.split('/').next()?.to_string())
}
