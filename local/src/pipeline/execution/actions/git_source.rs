//! Source actions backed by git — `CodeStarSourceConnection` (GitHub, GitLab, Bitbucket through
//! CodeConnections), `CodeCommit` and `GitHub` (version 1) — read from a local repository
//! (`--repo`, at `--ref` or the action's branch): the tree at that commit as the output
//! artifact, and the output variables each provider documents.

use super::super::super::git;
use super::super::super::model::ActionDef;
use super::super::super::report::ActionResult;
use super::super::Execution;

/// True for the source providers this module reads.
pub(in super::super) fn is_git_source(action: &ActionDef) -> bool {
    matches!(
        (
            action.category.as_str(),
            action.owner.as_str(),
            action.provider.as_str()
        ),
        ("Source", "AWS", "CodeStarSourceConnection")
            | ("Source", "AWS", "CodeCommit")
            | ("Source", "ThirdParty", "GitHub")
    )
}

/// The branch an action follows: `BranchName`, or `Branch` for GitHub version 1.
pub(in super::super) fn branch_of(action: &ActionDef) -> Option<String> {
    action
        .config("BranchName")
        .or_else(|| action.config("Branch"))
}

impl Execution<'_> {
    /// The repository and the commit this execution builds.
    pub(in super::super) fn git_revision(
        &self,
        action: &ActionDef,
    ) -> Result<(std::path::PathBuf, git::GitRevision), String> {
        let options = &self.context.options;
        let repo = git::repository(options.repo.as_deref())?;
        let reference = options
            .git_ref
            .clone()
            .or_else(|| branch_of(action))
            .unwrap_or_else(|| "HEAD".to_string());
        let revision = git::resolve(&repo, &reference)?;
        Ok((repo, revision))
    }

    pub(in super::super) fn git_source(&mut self, action: &ActionDef) -> ActionResult {
        let (repo, revision) = match self.git_revision(action) {
            Ok(found) => found,
            Err(e) => return ActionResult::failed(e),
        };
        let clone = action.config("OutputArtifactFormat").as_deref() == Some("CODEBUILD_CLONE_REF");
        let zipped = if clone {
            git::clone_archive(&repo, &revision.commit)
        } else {
            git::archive(&repo, &revision.commit)
        };
        let zipped = match zipped {
            Ok(bytes) => bytes,
            Err(e) => return ActionResult::failed(e),
        };
        let short = &revision.commit[..revision.commit.len().min(12)];
        let first_line = revision.message.lines().next().unwrap_or_default();
        let mut notes = vec![format!(
            "{} at {short} \"{first_line}\" ({}, {} bytes)",
            repo.display(),
            if clone {
                "a clone, .git included"
            } else {
                "the committed tree"
            },
            zipped.len()
        )];
        if let Err(failed) = self.deliver_source(action, &zipped, &mut notes) {
            return failed;
        }
        if let Some(namespace) = &action.namespace {
            self.variables
                .set(namespace, source_variables(action, &revision));
        }
        let summary = notes.remove(0);
        ActionResult::succeeded(summary, notes)
    }
}

/// The output variables AWS documents for each git source provider.
fn source_variables(action: &ActionDef, revision: &git::GitRevision) -> Vec<(String, String)> {
    let mut variables = vec![
        ("CommitId", revision.commit.clone()),
        ("CommitMessage", revision.message.clone()),
        ("AuthorDate", revision.author_date.clone()),
        ("BranchName", branch_of(action).unwrap_or_default()),
    ];
    match action.provider.as_str() {
        "CodeStarSourceConnection" => {
            variables.push((
                "ConnectionArn",
                action.config("ConnectionArn").unwrap_or_default(),
            ));
            variables.push((
                "FullRepositoryName",
                action.config("FullRepositoryId").unwrap_or_default(),
            ));
        }
        "CodeCommit" => {
            variables.push(("CommitterDate", revision.committer_date.clone()));
            variables.push((
                "RepositoryName",
                action.config("RepositoryName").unwrap_or_default(),
            ));
        }
        _ => {
            let (owner, repo) = (
                action.config("Owner").unwrap_or_default(),
                action.config("Repo").unwrap_or_default(),
            );
            variables.push(("CommitterDate", revision.committer_date.clone()));
            variables.push((
                "CommitUrl",
                format!(
                    "https://github.com/{owner}/{repo}/commit/{}",
                    revision.commit
                ),
            ));
            variables.push(("RepositoryName", repo));
        }
    }
    variables
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
