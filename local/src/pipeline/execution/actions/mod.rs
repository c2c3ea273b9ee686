//! The action providers pipeline-local runs, one module each, and what they share: where a
//! new artifact goes, and `--fail`.

mod lambda_invoke;
mod manual_approval;
mod s3_source;

use super::super::model::ActionDef;
use super::super::report::ActionResult;
use super::{names_action, Execution};

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

    /// Runs one action with the provider it names.
    pub(super) async fn action(&mut self, stage: &str, action: &ActionDef) -> ActionResult {
        if let Some(flag) = self.forced_failure(stage, action) {
            return ActionResult::failed(format!(
                "forced to fail by `--fail {flag}`; the action did not run"
            ));
        }
        match (
            action.category.as_str(),
            action.owner.as_str(),
            action.provider.as_str(),
        ) {
            ("Source", "AWS", "S3") => self.s3_source(action),
            ("Invoke", "AWS", "Lambda") => self.invoke(action).await,
            ("Approval", "AWS", "Manual") => self.approval(stage, action).await,
            _ => ActionResult::skipped(format!(
                "{} actions are not emulated by pipeline-local (they run on AWS only)",
                action.kind()
            )),
        }
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
