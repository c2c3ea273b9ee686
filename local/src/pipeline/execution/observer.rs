//! What watches an execution: the terminal report, the EventBridge bus, the console and the
//! CodePipeline API's history each implement [`ExecutionObserver`] and are told the same
//! [`Progress`], in order. The scheduler and the action providers only say what happened;
//! how it is shown, delivered or recorded lives with each observer.

use super::console_view::ConsoleView;
use crate::endpoints::LocalAws;
use crate::pipeline::conditions::{CheckedRule, RuleOutcome};
use crate::pipeline::events::EventBus;
use crate::pipeline::model::ActionDef;
use crate::pipeline::report::{ActionResult, ActionState, Report};
use crate::pipeline::ExecutionState;
use serde_json::json;
use std::time::Instant;

/// One thing that happened in an execution.
pub enum Progress<'a> {
    /// An execution began: the run's own, or the rollback of a failed stage (`rollback`).
    ExecutionStarted {
        /// Its id.
        execution_id: &'a str,
        /// `trigger-type` and `trigger-detail`.
        trigger: (&'a str, &'a str),
        /// The stage rolled back and the execution whose inputs it runs again.
        rollback: Option<(&'a str, &'a str)>,
    },
    /// A stage with `OnFailure: ROLLBACK` failed and no earlier execution succeeded in it.
    RollbackImpossible {
        /// The stage.
        stage: &'a str,
    },
    /// A stage is about to be entered (its `BeforeEntry` conditions come next).
    /// A newer execution superseded this one at the entrance of `stage` (`SUPERSEDED` mode).
    Superseded {
        /// The stage it waited to enter.
        stage: &'a str,
        /// The newer execution.
        by: &'a str,
    },
    StageEntering {
        /// The stage.
        stage: &'a str,
    },
    /// A stage's rules of one kind were checked.
    RulesChecked {
        /// The stage.
        stage: &'a str,
        /// Each rule and how it came out.
        checked: &'a [CheckedRule<'a>],
    },
    /// A stage's actions start (again, on attempt 2).
    StageStarted {
        /// The stage.
        stage: &'a str,
        /// 1, or 2 on an automatic retry.
        attempt: u32,
    },
    /// An action starts.
    ActionStarted {
        /// Its stage.
        stage: &'a str,
        /// The action.
        action: &'a ActionDef,
    },
    /// An action ended.
    ActionFinished {
        /// Its stage.
        stage: &'a str,
        /// The action.
        action: &'a ActionDef,
        /// How it ended.
        result: &'a ActionResult,
        /// When it began.
        began: Instant,
        /// What only the local run knows of it.
        details: &'a ActionDetails,
    },
    /// A stage ended.
    StageFinished {
        /// The stage.
        stage: &'a str,
        /// How.
        state: ExecutionState,
    },
    /// The execution (or its rollback) ended.
    ExecutionFinished {
        /// Its id.
        execution_id: &'a str,
        /// How.
        state: ExecutionState,
        /// It was a rollback.
        rollback: bool,
    },
}

impl Progress<'_> {
    /// Beginnings are printed before they are delivered, ends after: the terminal reads in
    /// the order things happened even when a function's logs are echoed in between.
    fn is_beginning(&self) -> bool {
        matches!(
            self,
            Self::ExecutionStarted { .. } | Self::StageEntering { .. } | Self::ActionStarted { .. }
        )
    }
}

/// What only the local run knows of a finished action, for the console.
#[derive(Debug, Default)]
pub struct ActionDetails {
    /// The function's log lines during the action.
    pub logs: Vec<String>,
    /// Its output variables.
    pub variables: Vec<(String, String)>,
    /// Its input artifacts.
    pub inputs: Vec<crate::console::model::ArtifactRef>,
    /// Its output artifacts.
    pub outputs: Vec<crate::console::model::ArtifactRef>,
}

/// Told everything that happens in an execution, in order.
#[async_trait::async_trait]
pub trait ExecutionObserver: Send {
    /// Takes note of `progress`.
    async fn observe(&mut self, progress: &Progress<'_>);
}

/// Every observer of a run, told in a fixed order.
pub struct Observers<'a> {
    /// The terminal.
    pub report: Report,
    /// The functions the template's EventBridge rules target.
    pub events: EventBus,
    /// The console, with `--console`.
    pub console: Option<ConsoleView>,
    /// `ListActionExecutions`, `ListRuleExecutions`, `GetPipelineExecution`.
    pub history: ApiHistory<'a>,
}

impl Observers<'_> {
    /// Tells every observer.
    pub async fn tell(&mut self, progress: Progress<'_>) {
        let beginning = progress.is_beginning();
        if beginning {
            self.report.observe(&progress).await;
        }
        self.history.observe(&progress).await;
        self.events.observe(&progress).await;
        if let Some(console) = &mut self.console {
            console.observe(&progress).await;
        }
        if !beginning {
            self.report.observe(&progress).await;
        }
    }
}

/// The local CodePipeline API's record of the execution, as CodePipeline keeps it.
pub struct ApiHistory<'a> {
    /// The local endpoints.
    pub aws: &'a LocalAws,
    /// The pipeline.
    pub pipeline: String,
    /// The execution being recorded.
    pub execution_id: String,
}

#[async_trait::async_trait]
impl ExecutionObserver for ApiHistory<'_> {
    async fn observe(&mut self, progress: &Progress<'_>) {
        match progress {
            Progress::ExecutionStarted { execution_id, .. } => {
                self.execution_id = execution_id.to_string();
            }
            Progress::RulesChecked { stage, checked } => self.rules(stage, checked),
            Progress::ActionFinished {
                stage,
                action,
                result,
                ..
            } if result.state != ActionState::Skipped => self.action(stage, action, result),
            Progress::ExecutionFinished {
                execution_id,
                state,
                ..
            } => self.aws.codepipeline.set_execution_status(
                &self.pipeline,
                execution_id,
                state.api_name(),
            ),
            _ => {}
        }
    }
}

impl ApiHistory<'_> {
    /// Makes an action's result visible to `ListActionExecutions`.
    fn action(&self, stage: &str, action: &ActionDef, result: &ActionResult) {
        let now = epoch_seconds();
        let failed = result.state == ActionState::Failed;
        let message = &result.summary;
        self.aws.codepipeline.register_action_executions(
            &self.pipeline,
            &self.execution_id,
            vec![json!({"pipelineExecutionId": self.execution_id, "actionExecutionId": uuid::Uuid::new_v4().to_string(),
                "stageName": stage, "actionName": action.name, "startTime": now, "lastUpdateTime": now,
                "status": if failed { "Failed" } else { "Succeeded" },
                "input": {"actionTypeId": {"category": action.category, "owner": action.owner, "provider": action.provider, "version": "1"}},
                "output": {"executionResult": if failed {
                    json!({"externalExecutionSummary": message, "errorDetails": {"code": "JobFailed", "message": message}})
                } else {
                    json!({"externalExecutionSummary": message})
                }}})],
        );
    }

    /// Makes the rules checked visible to `ListRuleExecutions`. A rule pipeline-local cannot
    /// check is `Abandoned` (its run never happened), with why.
    fn rules(&self, stage: &str, checked: &[CheckedRule]) {
        let now = epoch_seconds();
        let details = checked
            .iter()
            .map(|c| {
                let status = match c.outcome {
                    RuleOutcome::Met(_) => "Succeeded",
                    RuleOutcome::NotMet(_) => "Failed",
                    RuleOutcome::NotEmulated(_) => "Abandoned",
                };
                let mut result = json!({"externalExecutionSummary": c.summary()});
                if status == "Failed" {
                    result["errorDetails"] = json!({"code": "RuleFailed", "message": c.summary()});
                }
                json!({"pipelineExecutionId": self.execution_id, "ruleExecutionId": uuid::Uuid::new_v4().to_string(),
                    "pipelineVersion": 1, "stageName": stage, "ruleName": c.rule.name,
                    "startTime": now, "lastUpdateTime": now, "status": status,
                    "input": {"ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": c.rule.provider, "version": "1"},
                        "configuration": c.rule.configuration},
                    "output": {"executionResult": result}})
            })
            .collect();
        self.aws
            .codepipeline
            .register_rule_executions(&self.pipeline, &self.execution_id, details);
    }
}

/// Now, as the CodePipeline API's timestamps are: seconds since the epoch.
fn epoch_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
