//! The action providers pipeline-local runs, one module each, and what they share: where a
//! new artifact goes, and `--fail`.

mod build_container;
mod codebuild;
mod deploy_check;
mod git_source;
mod lambda_invoke;
mod manual_approval;
mod s3_deploy;
mod s3_source;

use super::super::model::ActionDef;
use super::super::report::ActionResult;
use super::{names_action, Execution};
pub use build_container::ContainerEngine;
pub(super) use git_source::{branch_of, is_git_source};

/// Where a built artifact is.
#[derive(Clone, Debug)]
pub struct ArtifactLocation {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
}

impl Execution<'_> {
    /// The `--fail` flag naming this action, if any.
    pub(super) fn forced_failure(&self, stage: &str, action: &ActionDef) -> Option<&String> {
        self.context
            .options
            .fail
            .iter()
            .find(|flag| names_action(flag, stage, action))
    }

    /// The `--skip` flag naming this action, if any.
    pub(super) fn skip_flag(&self, stage: &str, action: &ActionDef) -> Option<&String> {
        self.context
            .options
            .skip
            .iter()
            .find(|flag| names_action(flag, stage, action))
    }

    /// What becomes of an action that cannot run here, `why`: skipped when the person named it
    /// with `--skip`, else a failure saying how to skip it. Never a silent pass.
    pub(super) fn cannot_run(&self, stage: &str, action: &ActionDef, why: String) -> ActionResult {
        match self.skip_flag(stage, action) {
            Some(flag) => ActionResult::skipped(format!("skipped by `--skip {flag}`: {why}")),
            None => ActionResult::failed(format!(
                "{why}; the execution stops here rather than count it as done (pass `--skip {stage}.{}` to run the rest without it)",
                action.name
            )),
        }
    }

    /// Runs one action with the provider it names.
    pub(super) async fn action(&mut self, stage: &str, action: &ActionDef) -> ActionResult {
        if let Some(flag) = self.forced_failure(stage, action) {
            return ActionResult::failed(format!(
                "forced to fail by `--fail {flag}`; the action did not run"
            ));
        }
        if let Some(flag) = self.skip_flag(stage, action) {
            return ActionResult::skipped(format!(
                "skipped by `--skip {flag}`; the action did not run"
            ));
        }
        match (
            action.category.as_str(),
            action.owner.as_str(),
            action.provider.as_str(),
        ) {
            ("Source", "AWS", "S3") => self.s3_source(action),
            _ if git_source::is_git_source(action) => self.git_source(action),
            _ if codebuild::is_build(action) => self.build(stage, action).await,
            _ if deploy_check::is_checked_deploy(action) => self.checked_deploy(stage, action),
            ("Invoke", "AWS", "Lambda") => self.invoke(stage, action).await,
            ("Approval", "AWS", "Manual") => self.approval(stage, action).await,
            ("Deploy", "AWS", "S3") => self.s3_deploy(action),
            _ => self.cannot_run(
                stage,
                action,
                format!(
                    "{} actions are not emulated by pipeline-local",
                    action.kind()
                ),
            ),
        }
    }

    /// Writes a source action's archive as each of its output artifacts, noting where each went.
    fn deliver_source(
        &mut self,
        action: &ActionDef,
        zipped: &[u8],
        notes: &mut Vec<String>,
    ) -> Result<(), ActionResult> {
        let aws = self.context.aws;
        for output in &action.outputs {
            let location = self.new_artifact(output);
            if let Err(e) = aws.s3.put_file(&location.bucket, &location.key, zipped) {
                return Err(ActionResult::failed(format!(
                    "cannot write the artifact {output}: {e}"
                )));
            }
            notes.push(format!(
                "artifact {output} → s3://{}/{}",
                location.bucket, location.key
            ));
            self.artifacts.insert(output.clone(), location);
        }
        Ok(())
    }

    fn new_artifact(&self, name: &str) -> ArtifactLocation {
        let short: String = uuid::Uuid::new_v4().simple().to_string()[..7].to_string();
        let pipeline: String = self.pipeline.name.chars().take(20).collect();
        let folder: String = name.chars().take(20).collect();
        ArtifactLocation {
            bucket: self.pipeline.artifact_bucket.clone(),
            key: format!("{pipeline}/{folder}/{short}"),
        }
    }
}
