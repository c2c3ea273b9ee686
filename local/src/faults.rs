//! Errors injected into the local endpoints, to test how functions handle failing AWS calls.

use std::sync::{Arc, Mutex};

/// One planned failure: the next `times` calls of `operation` (on keys containing
/// `key_contains`, for S3) answer with `code` and `status`.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The service it applies to (`S3`, `CodePipeline`…).
    pub service: &'static str,
    /// Operation name as recorded (`PutObject`, `PutJobSuccessResult`), or `*` for any.
    pub operation: String,
    /// Only requests whose key or body contains this.
    pub key_contains: Option<String>,
    /// The error code answered.
    pub code: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The error message answered.
    pub message: String,
    /// How many requests it answers before it is used up.
    pub times: u32,
}

impl Fault {
    /// A fault answering every call of `operation` once.
    pub fn new(service: &'static str, operation: &str, code: &str, status: u16) -> Self {
        Self {
            service,
            operation: operation.into(),
            key_contains: None,
            code: code.into(),
            status,
            message: format!("injected {code}"),
            times: u32::MAX,
        }
    }

    /// Only for requests about a key containing `fragment`.
    pub fn on_key(mut self, fragment: &str) -> Self {
        self.key_contains = Some(fragment.into());
        self
    }

    /// For this many requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
}

/// The planned faults, shared by every endpoint.
#[derive(Clone, Default)]
pub struct Faults {
    planned: Arc<Mutex<Vec<Fault>>>,
}

impl Faults {
    /// Plans a fault.
    pub fn add(&self, fault: Fault) {
        if let Ok(mut planned) = self.planned.lock() {
            planned.push(fault);
        }
    }

    /// Forgets every planned fault.
    pub fn clear(&self) {
        if let Ok(mut planned) = self.planned.lock() {
            planned.clear();
        }
    }

    /// The fault that applies to this call, if any, counting it down.
    pub fn take(&self, service: &str, operation: &str, key: Option<&str>) -> Option<Fault> {
        let mut planned = self.planned.lock().ok()?;
        let index = planned.iter().position(|f| {
            f.times > 0
                && f.service == service
                && (f.operation == "*" || f.operation == operation)
                && match (&f.key_contains, key) {
                    (None, _) => true,
                    (Some(fragment), Some(key)) => key.contains(fragment.as_str()),
                    (Some(_), None) => false,
                }
        })?;
        let fault = &mut planned[index];
        fault.times -= 1;
        Some(fault.clone())
    }
}
