//! CodePipeline's EventBridge state-change events, delivered to the functions the template's
//! rules target, as the rule's pattern selects them (`source` and `detail-type`).

use super::ExecutionState;
use crate::runtime_api::{FunctionHost, Outcome};
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct EventTarget {
    pub function: String,
    pub host: FunctionHost,
    pub pattern: Value,
}

pub struct EventBus {
    pub targets: Vec<EventTarget>,
    pub pipeline: String,
    pub execution_id: String,
    /// `(trigger-type, trigger-detail)` of the execution's STARTED event.
    pub trigger: (String, String),
    /// `pipeline-execution-attempt`: 2 while a stage is retried.
    pub attempt: u32,
    /// Failed deliveries, for the report.
    pub failures: Vec<String>,
    /// The console, which folds every event in after its targets got it.
    pub console: Option<crate::console::Console>,
}

fn matches(pattern: &Value, event: &Value) -> bool {
    let field = |name: &str| -> bool {
        match pattern[name].as_array() {
            Some(allowed) => allowed.iter().any(|a| a == &event[name]),
            None => true,
        }
    };
    field("source") && field("detail-type")
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

impl EventBus {
    async fn deliver(&mut self, detail_type: &str, mut detail: Value) {
        detail["pipeline"] = json!(self.pipeline);
        detail["execution-id"] = json!(self.execution_id);
        detail["version"] = json!(1);
        detail["pipeline-execution-attempt"] = json!(self.attempt);
        let event = json!({
            "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": detail_type,
            "source": "aws.codepipeline", "account": super::template::ACCOUNT_ID, "time": now_rfc3339(),
            "region": crate::endpoints::REGION,
            "resources": [format!("arn:aws:codepipeline:{}:{}:{}", crate::endpoints::REGION, super::template::ACCOUNT_ID, self.pipeline)],
            "detail": detail
        });
        for target in &self.targets {
            if !matches(&target.pattern, &event) {
                continue;
            }
            let invocation = target.host.invoke(&event).await;
            if !matches!(invocation.outcome, Outcome::Response { .. }) {
                self.failures.push(format!(
                    "{} on {} {}: {:?}",
                    target.function, detail_type, detail["state"], invocation.outcome
                ));
            }
        }
        if let Some(console) = &self.console {
            console.event(&event);
        }
    }

    /// A pipeline execution state change.
    pub async fn pipeline(&mut self, state: ExecutionState) {
        let mut detail = json!({"state": state.event_name()});
        if state == ExecutionState::Started {
            detail["execution-trigger"] =
                json!({"trigger-type": self.trigger.0, "trigger-detail": self.trigger.1});
        }
        self.deliver("CodePipeline Pipeline Execution State Change", detail)
            .await;
    }

    /// A stage execution state change.
    pub async fn stage(&mut self, stage: &str, state: ExecutionState) {
        self.deliver(
            "CodePipeline Stage Execution State Change",
            json!({"stage": stage, "state": state.event_name()}),
        )
        .await;
    }

    /// An action execution state change.
    pub async fn action(
        &mut self,
        stage: &str,
        action: &super::model::ActionDef,
        state: ExecutionState,
        summary: Option<&str>,
    ) {
        let mut detail = json!({"stage": stage, "action": action.name, "state": state.event_name(),
            "region": crate::endpoints::REGION,
            "type": {"owner": action.owner, "provider": action.provider, "category": action.category, "version": "1"}});
        if let Some(summary) = summary {
            detail["execution-result"] = json!({"external-execution-summary": summary});
            if state == ExecutionState::Failed {
                detail["execution-result"]["error-code"] = json!("JobFailed");
            }
        }
        self.deliver("CodePipeline Action Execution State Change", detail)
            .await;
    }

    pub async fn shutdown(&self) {
        for target in &self.targets {
            target.host.shutdown().await;
        }
    }
}
