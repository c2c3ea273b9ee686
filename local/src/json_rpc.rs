//! The `awsJson1_1` protocol shared by the CodePipeline and Secrets Manager endpoints:
//! `POST /` with `X-Amz-Target: <Service>.<Operation>` and errors as `{"__type", "message"}`.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The operation named by `X-Amz-Target`, if it belongs to `prefix` (e.g. `CodePipeline_20150709`).
pub fn operation<'a>(headers: &'a HeaderMap, prefix: &str) -> Option<&'a str> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    target.strip_prefix(prefix)?.strip_prefix('.')
}

pub fn ok(body: Value) -> Response {
    with_headers(StatusCode::OK, body.to_string(), None)
}

/// An error in the service's own shape.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    with_headers(
        status,
        json!({"__type": code, "message": message}).to_string(),
        Some(code),
    )
}

fn with_headers(status: StatusCode, body: String, error_type: Option<&str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(code) = error_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

/// Parses a request body, answering `SerializationException` like the real services.
pub fn parse_body(body: &[u8]) -> Result<Value, Response> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            &format!("request body is not JSON: {e}"),
        )
    })
}
