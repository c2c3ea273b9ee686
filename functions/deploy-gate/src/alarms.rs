//! The alarm gate: the named CloudWatch alarms, judged by their state.

use crate::params::InsufficientData;
use crate::round::CheckResult;
use aws_sdk_cloudwatch::error::ProvideErrorMetadata;
use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use pipeline_ext::job::JobError;
use std::collections::BTreeMap;

/// DescribeAlarms takes at most 100 names per call.
const NAMES_PER_CALL: usize = 100;

struct AlarmState {
    value: StateValue,
    reason: String,
}

/// One result per alarm, in the order given. An alarm that does not exist is a configuration
/// error: a typo must not turn into a gate that never looks at anything.
pub async fn check(
    client: &aws_sdk_cloudwatch::Client,
    names: &[String],
    insufficient_data: InsufficientData,
) -> Result<Vec<CheckResult>, JobError> {
    let mut found: BTreeMap<String, AlarmState> = BTreeMap::new();
    for chunk in names.chunks(NAMES_PER_CALL) {
        let mut next_token = None;
        loop {
            let output = client
                .describe_alarms()
                .set_alarm_names(Some(chunk.to_vec()))
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(describe_error)?;
            for alarm in output.metric_alarms() {
                remember(
                    &mut found,
                    alarm.alarm_name(),
                    alarm.state_value(),
                    alarm.state_reason(),
                );
            }
            for alarm in output.composite_alarms() {
                remember(
                    &mut found,
                    alarm.alarm_name(),
                    alarm.state_value(),
                    alarm.state_reason(),
                );
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_string()),
                _ => break,
            }
        }
    }
    let missing: Vec<&str> = names
        .iter()
        .filter(|name| !found.contains_key(name.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(JobError::config(format!(
            "no CloudWatch alarm named {} in this account and region",
            missing
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(names
        .iter()
        .map(|name| judge(name, &found[name.as_str()], insufficient_data))
        .collect())
}

fn remember(
    found: &mut BTreeMap<String, AlarmState>,
    name: Option<&str>,
    value: Option<&StateValue>,
    reason: Option<&str>,
) {
    if let (Some(name), Some(value)) = (name, value) {
        found.insert(
            name.to_string(),
            AlarmState {
                value: value.clone(),
                reason: reason.unwrap_or_default().to_string(),
            },
        );
    }
}

fn judge(name: &str, state: &AlarmState, insufficient_data: InsufficientData) -> CheckResult {
    let label = format!("alarm {name}");
    let with_reason = |state_name: &str| {
        if state.reason.is_empty() {
            state_name.to_string()
        } else {
            format!("{state_name}: {}", state.reason)
        }
    };
    match (&state.value, insufficient_data) {
        (StateValue::Ok, _) => CheckResult::passed(label, "OK"),
        (StateValue::InsufficientData, InsufficientData::Ok) => {
            CheckResult::passed(label, "INSUFFICIENT_DATA (accepted)")
        }
        (StateValue::InsufficientData, InsufficientData::Fail) => {
            CheckResult::failed(label, with_reason("INSUFFICIENT_DATA"))
        }
        (StateValue::Alarm, _) => CheckResult::failed(label, with_reason("in ALARM")),
        (other, _) => CheckResult::failed(label, format!("unknown state {}", other.as_str())),
    }
}

fn describe_error<E>(err: aws_sdk_cloudwatch::error::SdkError<E>) -> JobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    pipeline_ext::sdk::SdkFailure::from_sdk("CloudWatch", "DescribeAlarms", &err).into()
}
