//! The Lambda Function URL event (payload format 2.0) and its response.

use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

/// A Lambda Function URL request (payload format 2.0), as far as the responder reads it.
#[derive(Debug, Default, Deserialize)]
pub struct FunctionUrlRequest {
    /// Lower-cased by Lambda.
    #[serde(default)]
    pub headers: HashMap<String, String>,
    /// The body, as sent or base64-encoded.
    #[serde(default)]
    pub body: Option<String>,
    /// Whether `body` is base64.
    #[serde(rename = "isBase64Encoded", default)]
    pub is_base64_encoded: bool,
}

impl FunctionUrlRequest {
    /// A header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The raw body bytes the signature covers.
    pub fn raw_body(&self) -> Result<Vec<u8>, NotBase64> {
        let body = self.body.as_deref().unwrap_or("");
        if self.is_base64_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .map_err(|_| NotBase64)
        } else {
            Ok(body.as_bytes().to_vec())
        }
    }
}

/// A body marked base64 that is not.
#[derive(Debug, thiserror::Error)]
#[error("the body is marked base64 but is not")]
pub struct NotBase64;

/// A Function URL response.
pub fn respond(status: u16, body: Value) -> Value {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    json!({"statusCode": status, "headers": {"content-type": "application/json"}, "body": text})
}

/// A plain-text Function URL response with this status.
pub fn respond_text(status: u16, text: &str) -> Value {
    json!({"statusCode": status, "headers": {"content-type": "text/plain; charset=utf-8"}, "body": text})
}
