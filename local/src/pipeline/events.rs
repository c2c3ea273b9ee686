//! CodePipeline's EventBridge state-change events, delivered to the functions the template's
//! rules target, as the rule's pattern selects them (`source` and `detail-type`).

use super::execution::{ExecutionObserver, Progress};
use super::report::ActionState;
use super::ExecutionState;
use crate::runtime_api::{FunctionHost, Outcome};
use pipeline_ext::pipeline_events::{
    ActionType, DetailType, EventDetail, ExecutionResult, ExecutionTrigger, PipelineEvent, SOURCE,
};
use serde_json::Value;
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
    async fn deliver(&mut self, kind: DetailType, mut detail: EventDetail) {
        detail.pipeline = Some(self.pipeline.clone());
        detail.execution_id = Some(self.execution_id.clone());
        detail.version = Some(1);
        detail.attempt = Some(self.attempt);
        let event = PipelineEvent {
            version: "0".into(),
            id: uuid::Uuid::new_v4().to_string(),
            detail_type: kind.as_str().into(),
            source: SOURCE.into(),
            account: super::template::ACCOUNT_ID.into(),
            time: now_rfc3339(),
            region: crate::endpoints::REGION.into(),
            resources: vec![format!(
                "arn:aws:codepipeline:{}:{}:{}",
                crate::endpoints::REGION,
                super::template::ACCOUNT_ID,
                self.pipeline
            )],
            detail,
        };
        let event = match serde_json::to_value(&event) {
            Ok(event) => event,
            Err(err) => {
                self.failures
                    .push(format!("{}: not serialisable: {err}", kind.as_str()));
                return;
            }
        };
        for target in &self.targets {
            if !matches(&target.pattern, &event) {
                continue;
            }
            let invocation = target.host.invoke(&event).await;
            if !matches!(invocation.outcome, Outcome::Response { .. }) {
                self.failures.push(format!(
                    "{} on {} {}: {:?}",
                    target.function,
                    kind.as_str(),
                    event["detail"]["state"],
                    invocation.outcome
                ));
            }
        }
        if let Some(console) = &self.console {
            console.event(&event);
        }
    }

    /// A pipeline execution state change.
    pub async fn pipeline(&mut self, state: ExecutionState) {
        let trigger = (state == ExecutionState::Started).then(|| ExecutionTrigger {
            kind: self.trigger.0.clone(),
            detail: self.trigger.1.clone(),
        });
        let detail = EventDetail {
            state: Some(state.event_name().into()),
            trigger,
            ..Default::default()
        };
        self.deliver(DetailType::Pipeline, detail).await;
    }

    /// A stage execution state change.
    pub async fn stage(&mut self, stage: &str, state: ExecutionState) {
        let detail = EventDetail {
            stage: Some(stage.into()),
            state: Some(state.event_name().into()),
            ..Default::default()
        };
        self.deliver(DetailType::Stage, detail).await;
    }

    /// An action execution state change.
    pub async fn action(
        &mut self,
        stage: &str,
        action: &super::model::ActionDef,
        state: ExecutionState,
        summary: Option<&str>,
    ) {
        let result = summary.map(|summary| ExecutionResult {
            summary: Some(summary.into()),
            error_code: (state == ExecutionState::Failed).then(|| "JobFailed".into()),
            ..Default::default()
        });
        let detail = EventDetail {
            stage: Some(stage.into()),
            action: Some(action.name.clone()),
            state: Some(state.event_name().into()),
            region: Some(crate::endpoints::REGION.into()),
            action_type: Some(ActionType {
                owner: action.owner.clone(),
                provider: action.provider.clone(),
                category: action.category.clone(),
                version: "1".into(),
            }),
            result,
            ..Default::default()
        };
        self.deliver(DetailType::Action, detail).await;
    }

    pub async fn shutdown(&self) {
        for target in &self.targets {
            target.host.shutdown().await;
        }
    }
}

#[async_trait::async_trait]
impl ExecutionObserver for EventBus {
    async fn observe(&mut self, progress: &Progress<'_>) {
        match progress {
            Progress::ExecutionStarted {
                execution_id,
                trigger,
                ..
            } => {
                self.execution_id = execution_id.to_string();
                self.trigger = (trigger.0.to_string(), trigger.1.to_string());
                self.pipeline(ExecutionState::Started).await;
            }
            Progress::StageStarted { stage, attempt } => {
                self.attempt = *attempt;
                self.stage(stage, ExecutionState::Started).await;
            }
            Progress::ActionStarted { stage, action } => {
                self.action(stage, action, ExecutionState::Started, None)
                    .await
            }
            Progress::ActionFinished {
                stage,
                action,
                result,
                ..
            } => {
                let state = match result.state {
                    ActionState::Succeeded => ExecutionState::Succeeded,
                    ActionState::Failed => ExecutionState::Failed,
                    ActionState::Skipped => ExecutionState::Abandoned,
                };
                self.action(stage, action, state, Some(&result.summary))
                    .await
            }
            Progress::StageFinished { stage, state } => {
                self.stage(stage, *state).await;
                self.attempt = 1;
            }
            Progress::ExecutionFinished { state, .. } => self.pipeline(*state).await,
            _ => {}
        }
    }
}
