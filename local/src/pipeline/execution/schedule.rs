//! Stages in order, each as CodePipeline V2 runs it (conditions, one automatic retry), and a
//! stage's actions by `RunOrder`, side by side where CodePipeline runs them side by side.

use super::observer::{ActionDetails, Progress};
use super::{Execution, TRIGGER};
use crate::job_invocation::run_job;
use crate::pipeline::model::{ActionDef, StageDef};
use crate::pipeline::report::{ActionResult, ActionState};
use crate::pipeline::ExecutionState;
use serde_json::{json, Value};
use std::time::Instant;

impl Execution<'_> {
    /// For a pipeline whose source is git: the commit it builds, and which of its `Triggers`
    /// would start this execution after a push of it (`pipeline/triggers.rs`).
    fn print_git_trigger(&self) {
        let Some(source) = self
            .pipeline
            .stages
            .iter()
            .flat_map(|s| &s.actions)
            .find(|a| super::actions::is_git_source(a))
        else {
            return;
        };
        let Ok((repo, revision)) = self.git_revision(source) else {
            return;
        };
        let branch = super::actions::branch_of(source).unwrap_or_default();
        let reference = self.context.options.git_ref.clone();
        let (pushed_branch, tag) = match reference
            .as_deref()
            .map(|r| crate::pipeline::git::ref_kind(&repo, r))
        {
            None => (Some(branch.clone()), None),
            Some(crate::pipeline::git::RefKind::Tag(tag)) => (None, Some(tag)),
            Some(crate::pipeline::git::RefKind::Branch(name)) => (Some(name), None),
            Some(crate::pipeline::git::RefKind::Other) => (Some(branch.clone()), None),
        };
        let push = crate::pipeline::triggers::Push {
            branch: pushed_branch,
            tag,
            changed: crate::pipeline::git::changed_files(&repo, &revision.commit)
                .unwrap_or_default(),
        };
        say!(
            "  git {} at {} ({})\n  trigger: {}\n",
            repo.display(),
            reference.as_deref().unwrap_or(&branch),
            &revision.commit[..revision.commit.len().min(12)],
            crate::pipeline::triggers::verdict(
                &self.pipeline.triggers,
                &source.name,
                &branch,
                &push
            )
        );
    }

    /// Runs stage after stage, stopping at the first that fails, each entered as the
    /// pipeline's execution mode lets it ([`super::stage_gate`]); the execution's end state. A
    /// failed stage whose `OnFailure` is `ROLLBACK` (or whose `OnSuccess` condition says
    /// `ROLLBACK`) is then rolled back in an execution of its own, as CodePipeline does, except
    /// in `PARALLEL` mode, where CodePipeline has no rollback.
    pub(super) async fn run_stages(&mut self) -> ExecutionState {
        self.observers.report.header(
            &self.context.options.template,
            &self.context.options.source,
            &self.context.database.label,
            &self.pipeline.execution_mode,
        );
        self.print_git_trigger();
        let execution_id = self.execution_id.clone();
        self.observers
            .tell(Progress::ExecutionStarted {
                execution_id: &execution_id,
                trigger: TRIGGER,
                rollback: None,
            })
            .await;
        let stages = self.pipeline.stages.clone();
        let mut failed = None;
        for stage in &stages {
            if let Some(by) = self.enter_stage(&stage.name).await {
                self.observers
                    .tell(Progress::Superseded {
                        stage: &stage.name,
                        by: &by,
                    })
                    .await;
                self.finish_execution(ExecutionState::Superseded, false)
                    .await;
                return ExecutionState::Superseded;
            }
            let inputs = self.stage_inputs();
            let outcome = self.run_stage_with_conditions(stage, true).await;
            self.leave_stage(&stage.name);
            match outcome {
                None => self.context.aws.codepipeline.record_stage_success(
                    &self.pipeline.name,
                    &self.execution_id,
                    &stage.name,
                    inputs,
                ),
                Some(roll_back) => {
                    failed = Some((stage, roll_back));
                    break;
                }
            }
        }
        let state = if failed.is_some() {
            ExecutionState::Failed
        } else {
            ExecutionState::Succeeded
        };
        self.finish_execution(state, false).await;
        if let Some((stage, true)) = failed {
            if self.pipeline.execution_mode == "PARALLEL" {
                say!(
                    "  {} is not rolled back: CodePipeline has no rollback in PARALLEL mode",
                    stage.name
                );
            } else {
                self.rollback(stage).await;
            }
        }
        state
    }

    /// Waits at the entrance of `stage` until the execution mode lets this execution in;
    /// `Some(newer)` when a newer execution superseded it there.
    pub(super) async fn enter_stage(&mut self, stage: &str) -> Option<String> {
        let gates = self.context.gates.clone();
        let (pipeline, mode) = (&self.pipeline.name, &self.pipeline.execution_mode);
        if let Some(inside) = gates.occupant(pipeline, stage) {
            if inside != self.execution_id && mode != "PARALLEL" {
                say!("  ⏸ waiting to enter {stage}: execution {inside} is in it ({mode})");
            }
        }
        match gates.enter(pipeline, mode, stage, &self.execution_id).await {
            super::stage_gate::Entry::Entered => None,
            super::stage_gate::Entry::Superseded { by } => Some(by),
        }
    }

    /// Lets the next execution into `stage`.
    pub(super) fn leave_stage(&self, stage: &str) {
        self.context
            .gates
            .leave(&self.pipeline.name, stage, &self.execution_id);
    }

    /// One stage as CodePipeline V2 runs it: `BeforeEntry` conditions, the actions, one
    /// automatic retry when `OnFailure` says `RETRY`, then `OnSuccess` conditions. `None` when
    /// the stage succeeded, else whether it is to be rolled back.
    pub(super) async fn run_stage_with_conditions(
        &mut self,
        stage: &StageDef,
        checked: bool,
    ) -> Option<bool> {
        self.observers
            .tell(Progress::StageEntering { stage: &stage.name })
            .await;
        let no_conditions = Vec::new();
        let (before_entry, on_success) = if checked {
            (&stage.before_entry, &stage.on_success)
        } else {
            (&no_conditions, &no_conditions)
        };
        if let Some((result, why)) = self
            .check_conditions("BeforeEntry", stage, before_entry)
            .await
        {
            say!("  the stage is not entered ({result}): {why}");
            self.observers
                .tell(Progress::StageFinished {
                    stage: &stage.name,
                    state: ExecutionState::Failed,
                })
                .await;
            return Some(false);
        }
        self.observers
            .tell(Progress::StageStarted {
                stage: &stage.name,
                attempt: 1,
            })
            .await;
        let mut succeeded = Vec::new();
        let mut ok = self.run_actions(stage, &mut succeeded).await;
        if !ok && stage.on_failure.as_deref() == Some("RETRY") {
            if stage.retry_mode == "ALL_ACTIONS" {
                succeeded.clear();
            }
            say!(
                "  ↻ OnFailure: RETRY ({}): attempt 2 of {}",
                stage.retry_mode,
                stage.name
            );
            self.observers
                .tell(Progress::StageStarted {
                    stage: &stage.name,
                    attempt: 2,
                })
                .await;
            ok = self.run_actions(stage, &mut succeeded).await;
        }
        let mut roll_back = stage.on_failure.as_deref() == Some("ROLLBACK");
        if ok {
            if let Some((result, why)) = self.check_conditions("OnSuccess", stage, on_success).await
            {
                say!("  the stage fails on its OnSuccess condition ({result}): {why}");
                ok = false;
                roll_back = result == "ROLLBACK";
            }
        }
        let state = if ok {
            ExecutionState::Succeeded
        } else {
            ExecutionState::Failed
        };
        self.observers
            .tell(Progress::StageFinished {
                stage: &stage.name,
                state,
            })
            .await;
        (!ok).then_some(roll_back)
    }

    /// Checks a stage's conditions of one kind, telling the observers each rule's outcome;
    /// the result and why of the first condition not met.
    pub(super) async fn check_conditions(
        &mut self,
        kind: &str,
        stage: &StageDef,
        conditions: &[crate::pipeline::model::ConditionDef],
    ) -> Option<(String, String)> {
        let mut checked = Vec::new();
        let unmet = crate::pipeline::conditions::first_unmet(
            kind,
            &stage.name,
            conditions,
            &self.variables,
            self.context.aws,
            &mut checked,
        );
        self.observers
            .tell(Progress::RulesChecked {
                stage: &stage.name,
                checked: &checked,
            })
            .await;
        unmet
    }

    /// Runs a stage's actions in `RunOrder`, skipping those in `succeeded` (a retry of failed
    /// actions) and adding the ones that succeed; actions of the same `RunOrder` run side by
    /// side, as CodePipeline runs them. Stops after the first group with a failure. True when
    /// none failed (skipped actions do not fail a stage).
    pub(super) async fn run_actions(
        &mut self,
        stage: &StageDef,
        succeeded: &mut Vec<String>,
    ) -> bool {
        let pending: Vec<&ActionDef> = stage
            .actions
            .iter()
            .filter(|a| !succeeded.contains(&a.name))
            .collect();
        let mut groups: Vec<Vec<&ActionDef>> = Vec::new();
        for action in pending {
            match groups.last_mut() {
                Some(group) if group[0].run_order == action.run_order => group.push(action),
                _ => groups.push(vec![action]),
            }
        }
        for group in groups {
            let mut started = Vec::new();
            let log_marks: Vec<usize> = group
                .iter()
                .map(|a| self.action_host(a).map_or(0, |h| h.logs().len()))
                .collect();
            for action in &group {
                self.observers
                    .tell(Progress::ActionStarted {
                        stage: &stage.name,
                        action,
                    })
                    .await;
                started.push(Instant::now());
            }
            let results = self.run_group(&stage.name, &group).await;
            let mut group_failed = false;
            for (((action, result), began), log_mark) in
                group.iter().zip(results).zip(started).zip(log_marks)
            {
                let failed = result.state == ActionState::Failed;
                let details = self.action_details(action, log_mark);
                self.observers
                    .tell(Progress::ActionFinished {
                        stage: &stage.name,
                        action,
                        result: &result,
                        began,
                        details: &details,
                    })
                    .await;
                if failed {
                    group_failed = true;
                } else {
                    succeeded.push(action.name.clone());
                }
            }
            if group_failed {
                return false;
            }
        }
        true
    }

    /// Runs the actions of one `RunOrder`: Lambda invoke actions of different functions at
    /// the same time (one local instance per function, so two actions of one function take
    /// turns), every other kind one after another. Results in the group's order.
    pub(super) async fn run_group(
        &mut self,
        stage: &str,
        group: &[&ActionDef],
    ) -> Vec<ActionResult> {
        if group.len() == 1 {
            return vec![self.action(stage, group[0]).await];
        }
        let mut results: Vec<Option<ActionResult>> = (0..group.len()).map(|_| None).collect();
        let mut prepared = Vec::new();
        let mut functions_taken = Vec::new();
        for (i, action) in group.iter().enumerate() {
            let parallel = matches!(
                (
                    action.category.as_str(),
                    action.owner.as_str(),
                    action.provider.as_str()
                ),
                ("Invoke", "AWS", "Lambda")
            ) && self.forced_failure(stage, action).is_none()
                && self.skip_flag(stage, action).is_none();
            if !parallel {
                continue;
            }
            match self.prepare_invoke(stage, action).await {
                Ok(job) if !functions_taken.contains(&job.function) => {
                    functions_taken.push(job.function.clone());
                    prepared.push((i, job));
                }
                // Same function as another action of the group: it runs after them.
                Ok(_) => {}
                Err(result) => results[i] = Some(result),
            }
        }
        let aws = self.context.aws;
        let hosts = &self.hosts;
        let jobs = prepared.iter().map(|(_, job)| {
            let host = &hosts[&job.function];
            let snapshots_before: Vec<String> =
                aws.rds.snapshots().into_iter().map(|s| s.id).collect();
            async move {
                (
                    run_job(aws, host, job.event.clone(), 1000).await,
                    snapshots_before,
                )
            }
        });
        let finished = futures_util::future::join_all(jobs).await;
        for ((i, job), (outcome, snapshots_before)) in prepared.into_iter().zip(finished) {
            results[i] = Some(self.finish_invoke(group[i], job, outcome, snapshots_before));
        }
        for (i, action) in group.iter().enumerate() {
            if results[i].is_none() {
                results[i] = Some(self.action(stage, action).await);
            }
        }
        results.into_iter().flatten().collect()
    }

    /// The execution's (or its rollback's) end.
    pub(super) async fn finish_execution(&mut self, state: ExecutionState, rollback: bool) {
        let execution_id = self.execution_id.clone();
        self.observers
            .tell(Progress::ExecutionFinished {
                execution_id: &execution_id,
                state,
                rollback,
            })
            .await;
    }

    /// What only the local run knows of a finished action: the function's log lines since
    /// `log_mark`, output variables, artifacts.
    pub(super) fn action_details(&self, action: &ActionDef, log_mark: usize) -> ActionDetails {
        let logs = match self.action_host(action) {
            Some(host) => host.logs().into_iter().skip(log_mark).collect(),
            None => self
                .build_logs
                .get(&action.name)
                .cloned()
                .unwrap_or_default(),
        };
        let variables = action
            .namespace
            .as_ref()
            .and_then(|ns| self.variables.namespaces.get(ns))
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let artifact = |name: &String| {
            self.artifacts
                .get(name)
                .map(|at| crate::console::model::ArtifactRef {
                    name: name.clone(),
                    bucket: at.bucket.clone(),
                    key: at.key.clone(),
                })
        };
        ActionDetails {
            logs,
            variables,
            inputs: action.inputs.iter().filter_map(artifact).collect(),
            outputs: action.outputs.iter().filter_map(artifact).collect(),
        }
    }

    /// The host of the function a Lambda invoke action runs, once started.
    pub(super) fn action_host(
        &self,
        action: &ActionDef,
    ) -> Option<&crate::runtime_api::FunctionHost> {
        let function = self.function(&action.config("FunctionName")?)?;
        self.hosts.get(&function.logical_id)
    }

    /// What a stage runs with: the artifacts and variables so far.
    pub(super) fn stage_inputs(&self) -> Value {
        let artifacts: serde_json::Map<String, Value> = self
            .artifacts
            .iter()
            .map(|(name, at)| (name.clone(), json!({"bucket": at.bucket, "key": at.key})))
            .collect();
        json!({"artifacts": artifacts, "variables": self.variables.namespaces})
    }
}
