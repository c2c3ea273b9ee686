//! What `run` prints: a live line per stage and action, then the timeline, the Slack channel as
//! a person would read it, the output variables and where the artifacts went. Also the local
//! health endpoint the example deploy gate checks.

use super::execution::{ArtifactLocation, ExecutionObserver, Progress};
use super::model::{ActionDef, Variables};
use super::ExecutionState;
use crate::endpoints::LocalAws;
use crate::slack::LocalSlack;
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// How an action ended, as the report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionState {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed, or was made to fail.
    Failed,
    /// It did not run.
    Skipped,
}

/// An action's result.
pub struct ActionResult {
    /// How it ended.
    pub state: ActionState,
    /// One line: what the action said, or why it did not run.
    pub summary: String,
    /// More lines: each invocation, each artifact written.
    pub notes: Vec<String>,
    /// What the timeline and the console show instead of the state, when the state alone
    /// would mislead: `NOT DEPLOYED` for a deploy that was only checked.
    pub shown_as: Option<&'static str>,
}

impl ActionResult {
    /// Shown as `label` in the timeline and the console (its state unchanged).
    pub fn shown_as(mut self, label: &'static str) -> Self {
        self.shown_as = Some(label);
        self
    }

    /// A success.
    pub fn succeeded(summary: String, notes: Vec<String>) -> Self {
        Self {
            state: ActionState::Succeeded,
            summary,
            notes,
            shown_as: None,
        }
    }
    /// A failure.
    pub fn failed(summary: String) -> Self {
        Self {
            state: ActionState::Failed,
            summary,
            notes: Vec::new(),
            shown_as: None,
        }
    }
    /// An action not run.
    pub fn skipped(reason: String) -> Self {
        Self {
            state: ActionState::Skipped,
            summary: reason,
            notes: Vec::new(),
            shown_as: None,
        }
    }
}

/// One row of the timeline.
struct TimelineEntry {
    /// The stage (marked in a rollback).
    stage: String,
    /// The action or rule.
    action: String,
    /// How it ended.
    state: &'static str,
    /// When it started, from the run's start.
    start: Duration,
    /// How long it took.
    took: Duration,
}

/// What `run` prints as the execution goes, and the summary at its end.
pub struct Report {
    /// The pipeline.
    pipeline: String,
    /// The execution.
    execution_id: String,
    /// When the run started.
    started: Instant,
    /// Every action and rule, in order.
    timeline: Vec<TimelineEntry>,
    /// How the execution ended.
    state: ExecutionState,
    /// The stage's attempt: 2 while an `OnFailure: RETRY` retry runs.
    pub attempt: u32,
    /// Set while a rollback execution runs: its timeline entries are marked.
    rollback: Option<(String, Option<ExecutionState>)>,
}

/// A duration as `1.2 s`.
fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

impl Report {
    /// The report of one execution.
    pub fn new(pipeline: &str, execution_id: &str) -> Self {
        Self {
            pipeline: pipeline.to_string(),
            execution_id: execution_id.to_string(),
            started: Instant::now(),
            timeline: Vec::new(),
            state: ExecutionState::Started,
            attempt: 1,
            rollback: None,
        }
    }

    /// What runs, on what: the first lines.
    pub fn header(&mut self, template: &Path, source: &Path, database: &str, mode: &str) {
        self.started = Instant::now();
        say!(
            "pipeline-local run: {} from {}\n  execution {}\n  source {}, database {}\n  \
             execution mode {mode}: other runs on the same --state-dir are executions beside \
             this one\n",
            self.pipeline,
            template.display(),
            self.execution_id,
            source.display(),
            database
        );
    }

    /// A stage begins.
    pub fn stage(&self, name: &str) {
        say!("▶ {name}");
    }

    /// An action begins.
    pub fn action_started(&mut self, _stage: &str, action: &ActionDef) {
        say!("  … {} ({})", action.name, action.kind());
    }

    /// An action's end; `started` is when it began, so actions that ran side by side show
    /// their overlap in the timeline.
    pub fn action_finished(
        &mut self,
        stage: &str,
        action: &ActionDef,
        result: &ActionResult,
        started: Instant,
    ) {
        let took = started.elapsed();
        let start = started.saturating_duration_since(self.started);
        let (mark, state) = match result.state {
            ActionState::Succeeded => ("✓", "SUCCEEDED"),
            ActionState::Failed => ("✗", "FAILED"),
            ActionState::Skipped => ("–", "SKIPPED"),
        };
        let state = result.shown_as.unwrap_or(state);
        say!(
            "  {mark} {} {state} in {}: {}",
            action.name,
            seconds(took),
            one_line(&result.summary)
        );
        for note in &result.notes {
            say!("      {note}");
        }
        let stage = self.timeline_stage(stage);
        let action = match self.attempt {
            1 => action.name.clone(),
            n => format!("{} (attempt {n})", action.name),
        };
        self.timeline.push(TimelineEntry {
            stage,
            action,
            state,
            start,
            took,
        });
    }

    /// The stage column of the timeline: rollback entries are marked.
    fn timeline_stage(&self, stage: &str) -> String {
        match &self.rollback {
            Some(_) => format!("↺ {stage}"),
            None => stage.to_string(),
        }
    }

    /// The execution ended at the entrance of `stage`, superseded by `by`.
    fn superseded(&mut self, stage: &str, by: &str) {
        say!("  ⤳ SUPERSEDED at the entrance of {stage} by the newer execution {by}");
        self.timeline.push(TimelineEntry {
            stage: self.timeline_stage(stage),
            action: format!("(entrance; superseded by {})", &by[..by.len().min(8)]),
            state: "SUPERSEDED",
            start: self.started.elapsed(),
            took: Duration::ZERO,
        });
    }

    /// The rules of a stage's conditions as checked, in the timeline.
    pub fn conditions(&mut self, stage: &str, checked: Vec<(String, &'static str)>) {
        let start = self.started.elapsed();
        for (rule, state) in checked {
            self.timeline.push(TimelineEntry {
                stage: self.timeline_stage(stage),
                action: rule,
                state,
                start,
                took: Duration::ZERO,
            });
        }
    }

    /// A stage ended.
    pub fn stage_finished(&self, name: &str, state: ExecutionState) {
        say!("  {name}: {state}\n");
    }

    /// The execution ended.
    pub fn pipeline_finished(&mut self, state: ExecutionState) {
        self.state = state;
    }

    /// A rollback execution begins.
    pub fn rollback_started(&mut self, stage: &str, execution_id: &str, target: &str) {
        say!(
            "↺ Rollback of stage {stage} (OnFailure: ROLLBACK): execution {execution_id}, type ROLLBACK, \
             trigger AutomatedRollback, with the artifacts and variables of execution {target}\n"
        );
        self.rollback = Some((execution_id.to_string(), None));
    }

    /// The rollback ended.
    pub fn rollback_finished(&mut self, state: ExecutionState) {
        if let Some((_, outcome)) = &mut self.rollback {
            *outcome = Some(state);
        }
    }

    /// A stage could not be rolled back: no earlier success to return to.
    pub fn rollback_impossible(&self, stage: &str) {
        say!(
            "↺ Stage {stage} has OnFailure: ROLLBACK, but it never succeeded in an earlier \
             execution kept in the state folder: nothing to roll back to (CodePipeline cannot \
             either). Keep executions across runs with --state-dir DIR.\n"
        );
    }

    /// The summary: timeline, Slack channel, variables, artifacts, failed deliveries.
    pub fn finish(
        &self,
        aws: &LocalAws,
        slack: &LocalSlack,
        artifacts: &HashMap<String, ArtifactLocation>,
        variables: &Variables,
        event_failures: &[String],
    ) {
        say!("Timeline");
        for entry in &self.timeline {
            say!(
                "  +{:>8}  {:>9}  {:<10} {:<14} {}",
                seconds(entry.start),
                seconds(entry.took),
                entry.state,
                entry.stage,
                entry.action
            );
        }
        say!("\nSlack (recorded)");
        let messages = slack.messages();
        if messages.is_empty() {
            say!("  (no messages)");
        }
        for message in messages.iter().filter(|m| m.thread_ts.is_none()) {
            say!(
                "  #{} [{}]{}",
                message.channel,
                message.ts,
                edited(message.updates)
            );
            print_blocks(&message.blocks, &message.text, "    ");
            for reply in messages
                .iter()
                .filter(|m| m.thread_ts.as_deref() == Some(message.ts.as_str()))
            {
                say!("    ↳ reply [{}]", reply.ts);
                print_blocks(&reply.blocks, &reply.text, "      ");
            }
        }
        say!("\nOutput variables");
        for (namespace, values) in &variables.namespaces {
            for (key, value) in values {
                say!("  {namespace}.{key} = {value}");
            }
        }
        say!("\nArtifacts (local S3 under {})", aws.s3.root().display());
        let mut names: Vec<&String> = artifacts.keys().collect();
        names.sort();
        for name in names {
            let location = &artifacts[name];
            say!("  {name}: s3://{}/{}", location.bucket, location.key);
        }
        for failure in event_failures {
            say!("\nwarning: an EventBridge delivery failed: {failure}");
        }
        say!(
            "\nPipeline {} {} in {}",
            self.pipeline,
            self.state,
            seconds(self.started.elapsed())
        );
        if let Some((execution, Some(state))) = &self.rollback {
            say!("Rollback execution {execution} {state}");
        }
    }
}

/// `(edited)` or `(edited N times)` after an updated message.
fn edited(updates: u32) -> String {
    if updates > 0 {
        format!(" (edited {updates}×)")
    } else {
        String::new()
    }
}

/// Text on one line, for the live report.
fn one_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    if text.lines().count() > 1 {
        format!("{line} …")
    } else {
        line.to_string()
    }
}

/// Block Kit as text: each section and context on its own lines, buttons by label.
fn print_blocks(blocks: &serde_json::Value, fallback: &str, indent: &str) {
    let Some(blocks) = blocks.as_array().filter(|b| !b.is_empty()) else {
        say!("{indent}{fallback}");
        return;
    };
    for block in blocks {
        let texts: Vec<String> = match block["type"].as_str() {
            Some("section" | "header") => vec![block["text"]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string()],
            Some("context") => block["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["text"].as_str().map(str::to_owned))
                .collect(),
            Some("actions") => vec![block["elements"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| format!("[{}]", e["text"]["text"].as_str().unwrap_or("button")))
                .collect::<Vec<_>>()
                .join(" ")],
            _ => Vec::new(),
        };
        for text in texts {
            for line in text.lines() {
                say!("{indent}{line}");
            }
        }
    }
}

#[async_trait::async_trait]
impl ExecutionObserver for Report {
    async fn observe(&mut self, progress: &Progress<'_>) {
        match progress {
            Progress::ExecutionStarted {
                execution_id,
                rollback: Some((stage, target)),
                ..
            } => self.rollback_started(stage, execution_id, target),
            Progress::RollbackImpossible { stage } => self.rollback_impossible(stage),
            Progress::StageEntering { stage } => self.stage(stage),
            Progress::Superseded { stage, by } => self.superseded(stage, by),
            Progress::RulesChecked { stage, checked } => self.conditions(
                stage,
                checked
                    .iter()
                    .map(|c| (format!("{} rule {}", c.kind, c.rule.name), c.state()))
                    .collect(),
            ),
            Progress::StageStarted { attempt, .. } => self.attempt = *attempt,
            Progress::ActionStarted { stage, action } => self.action_started(stage, action),
            Progress::ActionFinished {
                stage,
                action,
                result,
                began,
                ..
            } => self.action_finished(stage, action, result, *began),
            Progress::StageFinished { stage, state } => {
                self.attempt = 1;
                self.stage_finished(stage, *state);
            }
            Progress::ExecutionFinished {
                state,
                rollback: true,
                ..
            } => self.rollback_finished(*state),
            Progress::ExecutionFinished { state, .. } => self.pipeline_finished(*state),
            _ => {}
        }
    }
}
