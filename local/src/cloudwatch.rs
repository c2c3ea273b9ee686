//! CloudWatch alarms on loopback, over both protocols the current AWS clients use for it
//! (served by [`crate::service`]): Smithy RPC v2 CBOR, the Rust SDK's, and awsJson 1.0, the
//! AWS CLI's.
//!
//! Served: `PutMetricAlarm`, `PutCompositeAlarm`, `SetAlarmState`, `DescribeAlarms`,
//! `DeleteAlarms`. Alarms keep only what those operations read back.

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, JsonService, RpcV2Cbor, ServiceError};
use crate::sts::LOCAL_ACCOUNT;
use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

const STATES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

/// One alarm as the local endpoint keeps it.
#[derive(Clone, Debug)]
pub struct Alarm {
    /// `AlarmName`.
    pub name: String,
    /// Created by `PutCompositeAlarm`.
    pub composite: bool,
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
    /// `StateReason`.
    pub reason: String,
    /// Seconds since the Unix epoch.
    pub updated: f64,
}

/// Shared state of the local CloudWatch endpoint.
#[derive(Clone)]
pub struct LocalCloudWatch {
    /// Alarms by account, then by name: each account has its own alarms, as on AWS.
    alarms: Arc<RwLock<BTreeMap<String, BTreeMap<String, Alarm>>>>,
    calls: CallLog,
    faults: Faults,
    /// Which account a caller's credentials act in.
    accounts: crate::sts::Accounts,
}

impl LocalCloudWatch {
    /// An endpoint with no alarms, recording into `calls` and applying `faults`.
    pub fn new(calls: CallLog, faults: Faults) -> Self {
        Self {
            alarms: Arc::default(),
            calls,
            faults,
            accounts: crate::sts::Accounts::default(),
        }
    }

    /// Answers each call with the alarms of the account its signer acts in (`sts` knows the
    /// assumed roles' sessions), so an alarm of another account is read only as its role.
    pub fn with_accounts(mut self, sts: crate::sts::LocalSts) -> Self {
        self.accounts = crate::sts::Accounts::from_sts(sts);
        self
    }

    /// Creates or changes an alarm of this process's account directly (what
    /// `PutMetricAlarm` + `SetAlarmState` do).
    pub fn set_alarm(&self, name: &str, state: &str, reason: &str) {
        self.set_alarm_in(LOCAL_ACCOUNT, name, state, reason);
    }

    /// As [`LocalCloudWatch::set_alarm`], in `account`.
    pub fn set_alarm_in(&self, account: &str, name: &str, state: &str, reason: &str) {
        if let Ok(mut accounts) = self.alarms.write() {
            let alarms = accounts.entry(account.to_string()).or_default();
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

    /// The alarm of that name in this process's account, if it exists.
    pub fn alarm(&self, name: &str) -> Option<Alarm> {
        self.alarm_in(LOCAL_ACCOUNT, name)
    }

    /// The alarm of that name in `account`, if it exists.
    pub fn alarm_in(&self, account: &str, name: &str) -> Option<Alarm> {
        self.alarms.read().ok()?.get(account)?.get(name).cloned()
    }

    /// The endpoint's routes (RPC v2 CBOR and awsJson 1.0).
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }
}

impl JsonService for LocalCloudWatch {
    const NAME: &'static str = "cloudwatch";
    const TARGET_PREFIX: &'static str = "GraniteServiceVersion20100801";
    const AWS_JSON: AwsJson = AwsJson::V1_0;
    const RPC_V2_CBOR: Option<RpcV2Cbor> = Some(RpcV2Cbor {
        service_shape: "GraniteServiceVersion20100801",
        error_namespace: "com.amazonaws.cloudwatch",
        timestamp_members: &["StateUpdatedTimestamp"],
    });

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
        let mut accounts = self.alarms.write().map_err(|_| {
            ServiceError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                "state poisoned",
            )
        })?;
        let alarms = accounts.entry(account).or_default();
        match operation {
            "PutMetricAlarm" | "PutCompositeAlarm" => {
                let Some(name) = text(request, "AlarmName").filter(|n| !n.is_empty()) else {
                    return Err(ServiceError::client(
                        "MissingParameter",
                        "AlarmName is required",
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
                Ok(json!({}))
            }
            "SetAlarmState" => {
                let (Some(name), Some(state), Some(reason)) = (
                    text(request, "AlarmName"),
                    text(request, "StateValue"),
                    text(request, "StateReason"),
                ) else {
                    return Err(ServiceError::client(
                        "MissingParameter",
                        "AlarmName, StateValue and StateReason are required",
                    ));
                };
                if !STATES.contains(&state.as_str()) {
                    return Err(ServiceError::client(
                        "InvalidParameterValue",
                        format!("StateValue {state} is not one of OK, ALARM, INSUFFICIENT_DATA"),
                    ));
                }
                let Some(alarm) = alarms.get_mut(&name) else {
                    return Err(ServiceError::new(
                        StatusCode::NOT_FOUND,
                        "ResourceNotFound",
                        format!("Alarm {name} not found"),
                    ));
                };
                alarm.state = state;
                alarm.reason = reason;
                alarm.updated = epoch_seconds();
                Ok(json!({}))
            }
            "DeleteAlarms" => {
                for name in alarm_names(request) {
                    alarms.remove(&name);
                }
                Ok(json!({}))
            }
            "DescribeAlarms" => Ok(describe(alarms, request)),
            other => Err(ServiceError::unknown_operation(other)),
        }
    }

    fn fault_key(&self, request: &Value) -> Option<String> {
        alarm_names(request).into_iter().next()
    }

    fn call_detail(&self, request: &Value) -> Value {
        json!({"AlarmNames": alarm_names(request)})
    }
}

fn describe(alarms: &BTreeMap<String, Alarm>, request: &Value) -> Value {
    let names = alarm_names(request);
    let prefix = text(request, "AlarmNamePrefix");
    let state = text(request, "StateValue");
    // Like AWS: metric alarms only unless AlarmTypes says otherwise.
    let types = list(request, "AlarmTypes");
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
        let entry = json!({
            "AlarmName": alarm.name,
            "AlarmArn": format!("arn:aws:cloudwatch:us-east-1:000000000000:alarm:{}", alarm.name),
            "StateValue": alarm.state,
            "StateReason": alarm.reason,
            "StateUpdatedTimestamp": alarm.updated,
        });
        match (alarm.composite, want_metric, want_composite) {
            (false, true, _) => metric.push(entry),
            (true, _, true) => composite.push(entry),
            _ => {}
        }
    }
    json!({"MetricAlarms": metric, "CompositeAlarms": composite})
}

fn text(request: &Value, name: &str) -> Option<String> {
    request.get(name)?.as_str().map(str::to_owned)
}

fn list(request: &Value, name: &str) -> Vec<String> {
    request
        .get(name)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn alarm_names(request: &Value) -> Vec<String> {
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
