//! `Approval`/`AWS`/`Manual`: the approval published to the topic it names, so the Slack
//! functions post it and take the click, decided automatically or by a person in the console.

use crate::pipeline::approval::{self, ApprovalRequest};
use crate::pipeline::execution::Execution;
use crate::pipeline::model::ActionDef;
use crate::pipeline::report::{ActionResult, ActionState};
use crate::pipeline::template::FunctionDef;
use crate::runtime_api::FunctionHost;

impl Execution<'_> {
    pub(in super::super) async fn approval(
        &mut self,
        stage: &str,
        action: &ActionDef,
    ) -> ActionResult {
        let custom_data = match action
            .config("CustomData")
            .map(|d| self.variables.substitute(&d))
            .transpose()
        {
            Ok(d) => d,
            Err(e) => return ActionResult::failed(e),
        };
        let topic = action.config("NotificationArn").unwrap_or_default();
        let subscribed: Vec<FunctionDef> = self
            .functions
            .iter()
            .filter(|f| {
                f.events.values().any(|e| {
                    e["Type"] == "SNS" && e["Properties"]["Topic"].as_str() == Some(topic.as_str())
                })
            })
            .cloned()
            .collect();
        let responder_def = self
            .template
            .resources_of_type("AWS::Serverless::Function")
            .find(|(_, r)| !r["Properties"]["FunctionUrlConfig"].is_null())
            .and_then(|(id, _)| self.functions.iter().find(|f| &f.logical_id == id).cloned());
        for function in subscribed.iter().chain(responder_def.iter()) {
            if let Err(e) = self.host(function).await {
                return ActionResult::failed(e);
            }
        }
        let notifiers: Vec<(String, &FunctionHost)> = subscribed
            .iter()
            .map(|f| (f.binary.clone(), &self.hosts[&f.logical_id]))
            .collect();
        let responder = responder_def.as_ref().map(|f| &self.hosts[&f.logical_id]);
        let request = ApprovalRequest {
            pipeline: &self.pipeline.name,
            stage,
            action: &action.name,
            execution_id: &self.execution_id,
            custom_data,
            external_link: action.config("ExternalEntityLink"),
        };
        let decider = match (self.context.options.approve, &self.context.console) {
            (Some(crate::pipeline::ApproveMode::Console), Some(console)) => {
                approval::Decider::Console(console)
            }
            _ => approval::Decider::Auto {
                reject: self.context.options.reject,
            },
        };
        match approval::decide(
            self.context.aws,
            self.context.slack,
            &notifiers,
            responder,
            &request,
            decider,
        )
        .await
        {
            Ok(outcome) if outcome.approved => {
                ActionResult::succeeded(outcome.summary, outcome.steps)
            }
            Ok(outcome) => ActionResult {
                state: ActionState::Failed,
                summary: outcome.summary,
                notes: outcome.steps,
                shown_as: None,
            },
            Err(e) => ActionResult::failed(e),
        }
    }
}
