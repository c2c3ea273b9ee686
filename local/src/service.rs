//! One front end for the local JSON-shaped AWS services (CodePipeline, Secrets Manager,
//! DynamoDB, CloudWatch): the wire protocol, planned faults, the call log and the error shapes
//! live here once, and each service file holds only its operations.
//!
//! A service implements [`JsonService`]; [`router`] serves it over the protocols it declares:
//!
//! - awsJson 1.0 / 1.1 (`POST /`, `X-Amz-Target: <prefix>.<Operation>`, errors as
//!   `{"__type", "message"}` with `x-amzn-errortype`), and
//! - optionally Smithy RPC v2 CBOR (`POST /service/<Shape>/operation/<Operation>`, errors with
//!   the query-compatible `x-amzn-query-error`), which the Rust SDK speaks to CloudWatch, or
//! - instead of awsJson, awsQuery (`POST /` with a form `Action=<Operation>&…`, answers and
//!   errors in XML), which RDS speaks: the form's fields reach the service as one flat JSON
//!   object of strings (`Tags.Tag.1.Key`), and its JSON answer is written as XML, an array as
//!   the element repeated.
//!
//! For every request the router, in this order: reads the operation, parses the body
//! (`SerializationException` if it cannot), applies a planned [`Fault`](crate::faults::Fault)
//! if one matches, otherwise dispatches to the service, then records the call. A fault whose
//! code is [`HANG`] never answers: the call is recorded (status 0) and the connection is held
//! open until the client gives up.

use crate::calls::{access_key_of, ms_since_start, Call, CallLog};
use crate::faults::Faults;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ciborium::Value as Cbor;
use serde_json::{json, Value};

/// The fault code that makes an operation never answer (a hung connection).
pub const HANG: &str = "hang";

/// An error answered in the service's own shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    /// HTTP status of the answer.
    pub status: StatusCode,
    /// The service's error code (`ValidationException`, `ResourceNotFoundException`).
    pub code: String,
    /// The human-readable message.
    pub message: String,
}

impl ServiceError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A 400: the caller's request is wrong (the services' usual answer).
    pub fn client(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// An operation this endpoint does not serve.
    pub fn unknown_operation(operation: &str) -> Self {
        Self::client(
            "UnknownOperationException",
            format!("operation {operation} is not served by pipeline-local"),
        )
    }

    /// `ValidationException` for a required member that is missing, worded as AWS words it.
    pub fn missing_member(name: &str) -> Self {
        Self::client(
            "ValidationException",
            format!("1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must not be null"),
        )
    }
}

/// The awsJson version a service speaks (the content type differs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsJson {
    /// `application/x-amz-json-1.0` (DynamoDB, CloudWatch for the AWS CLI).
    V1_0,
    /// `application/x-amz-json-1.1` (CodePipeline, Secrets Manager).
    V1_1,
}

impl AwsJson {
    fn content_type(self) -> &'static str {
        match self {
            AwsJson::V1_0 => "application/x-amz-json-1.0",
            AwsJson::V1_1 => "application/x-amz-json-1.1",
        }
    }
}

/// How a service is also served over Smithy RPC v2 CBOR.
#[derive(Clone, Copy, Debug)]
pub struct RpcV2Cbor {
    /// The service shape in the path (`GraniteServiceVersion20100801`).
    pub service_shape: &'static str,
    /// Namespace of `__type` in error bodies (`com.amazonaws.cloudwatch`).
    pub error_namespace: &'static str,
    /// Members that are timestamps: epoch seconds in JSON, CBOR tag 1 on this protocol.
    pub timestamp_members: &'static [&'static str],
}

/// How a service is served over awsQuery instead of awsJson.
#[derive(Clone, Copy, Debug)]
pub struct AwsQuery {
    /// The XML namespace of answers (`http://rds.amazonaws.com/doc/2014-10-31/`).
    pub xmlns: &'static str,
}

/// A local AWS service whose operations take and return JSON documents.
pub trait JsonService: Clone + Send + Sync + 'static {
    /// The service's name in the call log and in fault plans (`codepipeline`).
    const NAME: &'static str;
    /// The `X-Amz-Target` prefix (`CodePipeline_20150709`).
    const TARGET_PREFIX: &'static str;
    /// The awsJson version served on `POST /`.
    const AWS_JSON: AwsJson;
    /// Prefix of `__type` in awsJson error bodies (DynamoDB's `com.amazonaws.dynamodb.v20120810#`).
    const ERROR_TYPE_PREFIX: &'static str = "";
    /// Set when the service is also served over RPC v2 CBOR.
    const RPC_V2_CBOR: Option<RpcV2Cbor> = None;
    /// Set when `POST /` speaks awsQuery rather than awsJson.
    const AWS_QUERY: Option<AwsQuery> = None;

    /// Answers one operation.
    fn dispatch(&self, operation: &str, request: &Value) -> Result<Value, ServiceError>;

    /// Answers one operation for the access key that signed it (`None`: unsigned). Services
    /// whose answer depends on who asks (STS's `GetCallerIdentity`) implement this.
    fn dispatch_as(
        &self,
        operation: &str,
        request: &Value,
        _caller: Option<&str>,
    ) -> Result<Value, ServiceError> {
        self.dispatch(operation, request)
    }

    /// The resource a fault plan's `key_contains` is matched against (a secret id, an alarm name).
    fn fault_key(&self, _request: &Value) -> Option<String> {
        None
    }

    /// What the call log keeps of a request. Never a secret's value.
    fn call_detail(&self, request: &Value) -> Value {
        request.clone()
    }
}

/// Serves `service` over its protocols, with `faults` applied and every call recorded in `calls`.
pub fn router<S: JsonService>(service: S, calls: CallLog, faults: Faults) -> Router {
    let front = Front {
        service,
        calls,
        faults,
    };
    let mut router = if S::AWS_QUERY.is_some() {
        Router::new().route("/", post(aws_query::<S>))
    } else {
        Router::new().route("/", post(aws_json::<S>))
    };
    if let Some(cbor) = S::RPC_V2_CBOR {
        router = router.route(
            &format!("/service/{}/operation/{{operation}}", cbor.service_shape),
            post(rpc_v2_cbor::<S>),
        );
    }
    router.with_state(front)
}

#[derive(Clone)]
struct Front<S> {
    service: S,
    calls: CallLog,
    faults: Faults,
}

impl<S: JsonService> Front<S> {
    /// The common request path: faults, dispatch, call log.
    async fn answer(
        &self,
        operation: &str,
        headers: &HeaderMap,
        request: Result<Value, ServiceError>,
    ) -> Result<Value, ServiceError> {
        let at_ms = ms_since_start();
        let (result, detail) = match request {
            Err(error) => (Err(error), Value::Null),
            Ok(request) => {
                let key = self.service.fault_key(&request);
                let result = match self.faults.take(S::NAME, operation, key.as_deref()) {
                    Some(fault) if fault.code == HANG => {
                        self.record(
                            operation,
                            at_ms,
                            0,
                            headers,
                            self.service.call_detail(&request),
                        );
                        return std::future::pending().await;
                    }
                    Some(fault) => Err(ServiceError::new(
                        StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST),
                        &fault.code,
                        fault.message,
                    )),
                    None if operation.is_empty() => Err(ServiceError::client(
                        "UnknownOperationException",
                        format!(
                            "missing or foreign X-Amz-Target (expected {}.<Operation>)",
                            S::TARGET_PREFIX
                        ),
                    )),
                    None => self.service.dispatch_as(
                        operation,
                        &request,
                        access_key_of(headers).as_deref(),
                    ),
                };
                (result, self.service.call_detail(&request))
            }
        };
        let status = result.as_ref().map_or_else(|e| e.status.as_u16(), |_| 200);
        self.record(operation, at_ms, status, headers, detail);
        result
    }

    fn record(&self, operation: &str, at_ms: f64, status: u16, headers: &HeaderMap, detail: Value) {
        self.calls.record(Call {
            service: S::NAME,
            operation: operation.to_string(),
            at_ms,
            status,
            access_key: access_key_of(headers),
            detail,
        });
    }
}

async fn aws_json<S: JsonService>(
    State(front): State<Front<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(S::TARGET_PREFIX))
        .and_then(|t| t.strip_prefix('.'))
        .unwrap_or("")
        .to_string();
    let request = if body.is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ServiceError::client(
                "SerializationException",
                format!("request body is not JSON: {e}"),
            )
        })
    };
    let (status, body, error_code) = match front.answer(&operation, &headers, request).await {
        Ok(body) => (StatusCode::OK, body, None),
        Err(error) => (
            error.status,
            json!({"__type": format!("{}{}", S::ERROR_TYPE_PREFIX, error.code), "message": error.message}),
            Some(error.code),
        ),
    };
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static(S::AWS_JSON.content_type()),
    );
    insert_request_id(headers);
    if let Some(code) = error_code.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert("x-amzn-errortype", code);
    }
    response
}

async fn rpc_v2_cbor<S: JsonService>(
    State(front): State<Front<S>>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(protocol) = S::RPC_V2_CBOR else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let request = if body.is_empty() {
        Ok(json!({}))
    } else {
        ciborium::from_reader::<Cbor, _>(body.as_ref())
            .map(|cbor| json_of(&cbor))
            .map_err(|e| {
                ServiceError::client(
                    "SerializationException",
                    format!("request body is not CBOR: {e}"),
                )
            })
    };
    let (status, body, query_error) = match front.answer(&operation, &headers, request).await {
        Ok(body) => (StatusCode::OK, cbor_of(&body, None, &protocol), None),
        Err(error) => {
            let body = json!({
                "__type": format!("{}#{}", protocol.error_namespace, error.code),
                "message": error.message,
            });
            let fault = if error.status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            (
                error.status,
                cbor_of(&body, None, &protocol),
                Some(format!("{};{fault}", error.code)),
            )
        }
    };
    let mut bytes = Vec::new();
    if ciborium::into_writer(&body, &mut bytes).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "CBOR encoding failed").into_response();
    }
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/cbor"));
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    insert_request_id(headers);
    if let Some(value) = query_error.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert("x-amzn-query-error", value);
    }
    response
}

async fn aws_query<S: JsonService>(
    State(front): State<Front<S>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(protocol) = S::AWS_QUERY else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut fields = serde_json::Map::new();
    for (key, value) in form_urlencoded::parse(&body) {
        fields.insert(key.into_owned(), Value::String(value.into_owned()));
    }
    let operation = fields
        .remove("Action")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    fields.remove("Version");
    let request_id = uuid::Uuid::new_v4().to_string();
    let answer = front
        .answer(&operation, &headers, Ok(Value::Object(fields)))
        .await;
    let (status, xml) = match answer {
        Ok(result) => {
            let mut xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{operation}Response xmlns=\"{}\"><{operation}Result>",
                protocol.xmlns
            );
            write_xml(&mut xml, &result);
            xml.push_str(&format!(
                "</{operation}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{operation}Response>"
            ));
            (StatusCode::OK, xml)
        }
        Err(error) => {
            let fault = if error.status.is_server_error() {
                "Receiver"
            } else {
                "Sender"
            };
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"{}\"><Error><Type>{fault}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
                protocol.xmlns,
                xml_escape(&error.code),
                xml_escape(&error.message)
            );
            (error.status, xml)
        }
    };
    let mut response = (status, xml).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

/// A JSON answer as awsQuery XML: members as elements, an array as its member repeated.
fn write_xml(xml: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                let items: &[Value] = match member {
                    Value::Array(items) => items,
                    Value::Null => &[],
                    single => std::slice::from_ref(single),
                };
                for item in items {
                    xml.push_str(&format!("<{key}>"));
                    write_xml(xml, item);
                    xml.push_str(&format!("</{key}>"));
                }
            }
        }
        Value::String(text) => xml.push_str(&xml_escape(text)),
        Value::Number(n) => xml.push_str(&n.to_string()),
        Value::Bool(b) => xml.push_str(if *b { "true" } else { "false" }),
        Value::Array(_) | Value::Null => {}
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn insert_request_id(headers: &mut HeaderMap) {
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
}

/// A CBOR request as JSON: timestamps (tag 1) become epoch seconds, byte strings are dropped.
fn json_of(value: &Cbor) -> Value {
    match value {
        Cbor::Tag(_, inner) => json_of(inner),
        Cbor::Map(entries) => Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_text()?.to_string(), json_of(v))))
                .collect(),
        ),
        Cbor::Array(items) => Value::Array(items.iter().map(json_of).collect()),
        Cbor::Text(text) => json!(text),
        Cbor::Float(f) => json!(f),
        Cbor::Bool(b) => json!(b),
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i).map_or_else(|_| json!(i as f64), |i| json!(i))
        }
        _ => Value::Null,
    }
}

/// A JSON answer as CBOR; numbers in the protocol's timestamp members become tag 1.
fn cbor_of(value: &Value, member: Option<&str>, protocol: &RpcV2Cbor) -> Cbor {
    match value {
        Value::Object(map) => Cbor::Map(
            map.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), cbor_of(v, Some(k), protocol)))
                .collect(),
        ),
        Value::Array(items) => {
            Cbor::Array(items.iter().map(|v| cbor_of(v, member, protocol)).collect())
        }
        Value::Number(n) if member.is_some_and(|m| protocol.timestamp_members.contains(&m)) => {
            Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or_default())))
        }
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cbor::Integer(i.into()),
            None => Cbor::Float(n.as_f64().unwrap_or_default()),
        },
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Null => Cbor::Null,
    }
}
