//! The console's view of a run: the pipeline's shape once, then what each action and rule
//! did, in the record the console serves.

use super::observer::{ExecutionObserver, Progress};
use crate::console::model::{ActionShape, RuleRun, StageShape};
use crate::console::Console;
use crate::pipeline::model::{ConditionDef, PipelineDef};
use crate::pipeline::report::ActionState;

/// The console of a run (`--console`), as an observer.
pub struct ConsoleView {
    console: Console,
    execution_id: String,
}

/// The console keeps the last lines of a chatty action, not all of them: the record is
/// rewritten on every change.
const MAX_LOG_LINES: usize = 2_000;

impl ConsoleView {
    /// Shows `pipeline`'s stages and actions in `console`.
    pub fn new(console: Console, pipeline: &PipelineDef) -> Self {
        let stages: Vec<StageShape> = pipeline.stages.iter().map(stage_shape).collect();
        let name = pipeline.name.clone();
        let mode = pipeline.execution_mode.clone();
        console.update(|record| {
            record.pipeline = name;
            record.execution_mode = mode;
            record.stages = stages;
        });
        Self {
            console,
            execution_id: String::new(),
        }
    }
}

fn stage_shape(stage: &crate::pipeline::model::StageDef) -> StageShape {
    let mut notes = Vec::new();
    let rules =
        |conditions: &[ConditionDef]| conditions.iter().map(|c| c.rules.len()).sum::<usize>();
    if !stage.before_entry.is_empty() {
        notes.push(format!("BeforeEntry: {} rules", rules(&stage.before_entry)));
    }
    if !stage.on_success.is_empty() {
        notes.push(format!("OnSuccess: {} rules", rules(&stage.on_success)));
    }
    if let Some(result) = &stage.on_failure {
        notes.push(format!("OnFailure: {result}"));
    }
    StageShape {
        name: stage.name.clone(),
        notes,
        actions: stage
            .actions
            .iter()
            .map(|a| ActionShape {
                name: a.name.clone(),
                category: a.category.clone(),
                provider: a.provider.clone(),
                run_order: a.run_order,
            })
            .collect(),
    }
}

#[async_trait::async_trait]
impl ExecutionObserver for ConsoleView {
    async fn observe(&mut self, progress: &Progress<'_>) {
        match progress {
            Progress::ExecutionStarted { execution_id, .. } => {
                self.execution_id = execution_id.to_string();
            }
            Progress::Superseded { stage, .. } => {
                let id = &self.execution_id;
                self.console
                    .update(|record| record.execution_mut(id).superseded_at(stage));
            }
            Progress::RulesChecked { stage, checked } => {
                let rules: Vec<RuleRun> = checked
                    .iter()
                    .map(|c| RuleRun {
                        stage: stage.to_string(),
                        kind: c.kind.to_string(),
                        rule: c.rule.name.clone(),
                        provider: c.rule.provider.clone(),
                        state: c.state().to_string(),
                        summary: c.summary(),
                    })
                    .collect();
                let id = &self.execution_id;
                self.console
                    .update(|record| record.execution_mut(id).rules.extend(rules));
            }
            Progress::ActionFinished {
                stage,
                action,
                result,
                details,
                ..
            } => {
                let mut logs = details.logs.clone();
                if logs.len() > MAX_LOG_LINES {
                    let dropped = logs.len() - MAX_LOG_LINES;
                    logs.drain(..dropped);
                    logs.insert(0, format!("({dropped} earlier lines not kept)"));
                }
                let id = &self.execution_id;
                self.console.update(|record| {
                    let run = record.execution_mut(id).action_mut(stage, &action.name);
                    run.notes = result.notes.clone();
                    run.shown_as = match result.state {
                        ActionState::Skipped => Some("SKIPPED".to_string()),
                        _ => result.shown_as.map(str::to_owned),
                    };
                    run.logs = logs;
                    run.variables = details.variables.clone();
                    run.inputs = details.inputs.clone();
                    run.outputs = details.outputs.clone();
                });
            }
            _ => {}
        }
    }
}
