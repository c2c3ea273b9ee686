//! CloudWatch alarms on loopback, over both protocols the current AWS clients use for it:
//! Smithy RPC v2 CBOR, the Rust SDK's (`POST /service/GraniteServiceVersion20100801/operation/<Op>`,
//! CBOR bodies, errors as `{"__type", "message"}` plus the query-compatible
//! `x-amzn-query-error`), and awsJson 1.0, the AWS CLI's (`POST /` with
//! `X-Amz-Target: GraniteServiceVersion20100801.<Op>`).
//!
//! Served: `PutMetricAlarm`, `PutCompositeAlarm`, `SetAlarmState`, `DescribeAlarms`,
//! `DeleteAlarms`. Alarms keep only what those operations read back.

use crate::calls::{access_key_of, now_ms, Call, CallLog};
use crate::faults::Faults;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use ciborium::Value as Cbor;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

const SERVICE: &str = "GraniteServiceVersion20100801";
const STATES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

#[derive(Clone, Debug)]
pub struct Alarm {
    pub name: String,
    pub composite: bool,
    pub state: String,
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub updated: f64,
}

#[derive(Clone)]
pub struct LocalCloudWatch {
    alarms: Arc<RwLock<BTreeMap<String, Alarm>>>,
    calls: CallLog,
    faults: Faults,
}

impl LocalCloudWatch {
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            alarms: Arc::default(),
            calls,
            faults,
        }
    }

    /// Creates or changes an alarm directly (what `PutMetricAlarm` + `SetAlarmState` do).
    pub fn set_alarm(&self, name: &str, state: &str, reason: &str) {
        if let Ok(mut alarms) = self.alarms.write() {
            let alarm = alarms.entry(name.to_string()).or_insert_with(|| Alarm {
                name: name.to_string(),
                composite: false,
                state: String::new(),
                reason: String::new(),
                updated: 0.0,
            });
            alarm.state = state.to_string();
            alarm.reason = reason.to_string();
            alarm.updated = epoch_seconds();
        }
    }

    pub fn alarm(&self, name: &str) -> Option<Alarm> {
        self.alarms.read().ok()?.get(name).cloned()
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                &format!("/service/{SERVICE}/operation/{{operation}}"),
                post(handle),
            )
            .route("/", post(handle_json))
            .with_state(self.clone())
    }
}

/// What an operation answers: a body, or an error as (status, code, message).
type Answer = Result<Cbor, (StatusCode, String, String)>;

async fn handle(
    State(local): State<LocalCloudWatch>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = if body.is_empty() {
        Ok(Cbor::Map(Vec::new()))
    } else {
        ciborium::from_reader::<Cbor, _>(body.as_ref()).map_err(|e| {
            bad_request(
                "SerializationException",
                format!("request body is not CBOR: {e}"),
            )
        })
    };
    match answer(&local, &operation, &headers, request) {
        Ok(body) => cbor_response(StatusCode::OK, &body, None),
        Err((status, code, message)) => cbor_error(status, &code, &message),
    }
}

async fn handle_json(
    State(local): State<LocalCloudWatch>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(SERVICE))
        .and_then(|t| t.strip_prefix('.'))
        .unwrap_or("")
        .to_string();
    let request = crate::json_rpc::parse_body(&body)
        .map_err(|_| bad_request("SerializationException", "request body is not JSON".into()))
        .and_then(|json| {
            Cbor::serialized(&json)
                .map_err(|e| bad_request("SerializationException", e.to_string()))
        });
    let (status, body) = match answer(&local, &operation, &headers, request) {
        Ok(body) => (StatusCode::OK, json_of(&body)),
        Err((status, code, message)) => (status, json!({"__type": code, "message": message})),
    };
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// Timestamps travel as CBOR tag 1; in JSON they are epoch seconds.
fn json_of(value: &Cbor) -> serde_json::Value {
    match value {
        Cbor::Tag(_, inner) => json_of(inner),
        Cbor::Map(entries) => serde_json::Value::Object(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_text()?.to_string(), json_of(v))))
                .collect(),
        ),
        Cbor::Array(items) => serde_json::Value::Array(items.iter().map(json_of).collect()),
        Cbor::Text(text) => json!(text),
        Cbor::Float(f) => json!(f),
        Cbor::Bool(b) => json!(b),
        Cbor::Integer(i) => json!(i128::from(*i) as f64),
        _ => serde_json::Value::Null,
    }
}

fn bad_request(code: &str, message: String) -> (StatusCode, String, String) {
    (StatusCode::BAD_REQUEST, code.to_string(), message)
}

fn answer(
    local: &LocalCloudWatch,
    operation: &str,
    headers: &HeaderMap,
    request: Answer,
) -> Answer {
    let at_ms = now_ms();
    let names = request.as_ref().map(alarm_names).unwrap_or_default();
    let result = request.and_then(|request| {
        match local
            .faults
            .take("cloudwatch", operation, names.first().map(String::as_str))
        {
            Some(fault) => Err((
                StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST),
                fault.code,
                fault.message,
            )),
            None => dispatch(local, operation, &request),
        }
    });
    let status = match &result {
        Ok(_) => 200,
        Err((status, _, _)) => status.as_u16(),
    };
    local.calls.record(Call {
        service: "cloudwatch",
        operation: operation.to_string(),
        at_ms,
        status,
        access_key: access_key_of(headers),
        detail: json!({"AlarmNames": names}),
    });
    result
}

fn dispatch(local: &LocalCloudWatch, operation: &str, request: &Cbor) -> Answer {
    let Ok(mut alarms) = local.alarms.write() else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServiceError".into(),
            "state poisoned".into(),
        ));
    };
    match operation {
        "PutMetricAlarm" | "PutCompositeAlarm" => {
            let Some(name) = text(request, "AlarmName").filter(|n| !n.is_empty()) else {
                return Err(bad_request(
                    "MissingParameter",
                    "AlarmName is required".into(),
                ));
            };
            // New alarms start without data, as on AWS; updates keep the state.
            alarms.entry(name.clone()).or_insert(Alarm {
                name,
                composite: operation == "PutCompositeAlarm",
                state: "INSUFFICIENT_DATA".into(),
                reason: "Unchecked: Initial alarm creation".into(),
                updated: epoch_seconds(),
            });
            Ok(Cbor::Map(Vec::new()))
        }
        "SetAlarmState" => {
            let (Some(name), Some(state), Some(reason)) = (
                text(request, "AlarmName"),
                text(request, "StateValue"),
                text(request, "StateReason"),
            ) else {
                return Err(bad_request(
                    "MissingParameter",
                    "AlarmName, StateValue and StateReason are required".into(),
                ));
            };
            if !STATES.contains(&state.as_str()) {
                return Err(bad_request(
                    "InvalidParameterValue",
                    format!("StateValue {state} is not one of OK, ALARM, INSUFFICIENT_DATA"),
                ));
            }
            let Some(alarm) = alarms.get_mut(&name) else {
                return Err((
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound".into(),
                    format!("Alarm {name} not found"),
                ));
            };
            alarm.state = state;
            alarm.reason = reason;
            alarm.updated = epoch_seconds();
            Ok(Cbor::Map(Vec::new()))
        }
        "DeleteAlarms" => {
            for name in alarm_names(request) {
                alarms.remove(&name);
            }
            Ok(Cbor::Map(Vec::new()))
        }
        "DescribeAlarms" => Ok(describe(&alarms, request)),
        other => Err(bad_request(
            "UnknownOperationException",
            format!("operation {other} is not served by pipeline-local"),
        )),
    }
}

fn describe(alarms: &BTreeMap<String, Alarm>, request: &Cbor) -> Cbor {
    let names = alarm_names(request);
    let prefix = text(request, "AlarmNamePrefix");
    let state = text(request, "StateValue");
    // Like AWS: metric alarms only unless AlarmTypes says otherwise.
    let types: Vec<String> = list(request, "AlarmTypes");
    let want_metric = types.is_empty() || types.iter().any(|t| t == "MetricAlarm");
    let want_composite = types.iter().any(|t| t == "CompositeAlarm");
    let selected = alarms.values().filter(|a| {
        (names.is_empty() || names.contains(&a.name))
            && prefix
                .as_ref()
                .is_none_or(|p| a.name.starts_with(p.as_str()))
            && state.as_ref().is_none_or(|s| &a.state == s)
    });
    let (mut metric, mut composite) = (Vec::new(), Vec::new());
    for alarm in selected {
        let entry = Cbor::Map(vec![
            (key("AlarmName"), Cbor::Text(alarm.name.clone())),
            (
                key("AlarmArn"),
                Cbor::Text(format!(
                    "arn:aws:cloudwatch:us-east-1:000000000000:alarm:{}",
                    alarm.name
                )),
            ),
            (key("StateValue"), Cbor::Text(alarm.state.clone())),
            (key("StateReason"), Cbor::Text(alarm.reason.clone())),
            (
                key("StateUpdatedTimestamp"),
                Cbor::Tag(1, Box::new(Cbor::Float(alarm.updated))),
            ),
        ]);
        match (alarm.composite, want_metric, want_composite) {
            (false, true, _) => metric.push(entry),
            (true, _, true) => composite.push(entry),
            _ => {}
        }
    }
    Cbor::Map(vec![
        (key("MetricAlarms"), Cbor::Array(metric)),
        (key("CompositeAlarms"), Cbor::Array(composite)),
    ])
}

fn key(name: &str) -> Cbor {
    Cbor::Text(name.to_string())
}

fn field<'a>(request: &'a Cbor, name: &str) -> Option<&'a Cbor> {
    request
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(name))
        .map(|(_, v)| v)
}

fn text(request: &Cbor, name: &str) -> Option<String> {
    field(request, name)?.as_text().map(str::to_owned)
}

fn list(request: &Cbor, name: &str) -> Vec<String> {
    field(request, name)
        .and_then(Cbor::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_text().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn alarm_names(request: &Cbor) -> Vec<String> {
    let mut names = list(request, "AlarmNames");
    if let Some(name) = text(request, "AlarmName") {
        names.push(name);
    }
    names
}

fn epoch_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn cbor_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = Cbor::Map(vec![
        (
            key("__type"),
            Cbor::Text(format!("com.amazonaws.cloudwatch#{code}")),
        ),
        (key("message"), Cbor::Text(message.to_string())),
    ]);
    let fault = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    cbor_response(status, &body, Some(format!("{code};{fault}")))
}

fn cbor_response(status: StatusCode, body: &Cbor, query_error: Option<String>) -> Response {
    let mut bytes = Vec::new();
    if ciborium::into_writer(body, &mut bytes).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "CBOR encoding failed").into_response();
    }
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/cbor"));
    headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    if let Ok(id) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-amzn-requestid", id);
    }
    if let Some(value) = query_error.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert("x-amzn-query-error", value);
    }
    response
}
