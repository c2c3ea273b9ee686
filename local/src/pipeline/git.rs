//! A local git repository as a pipeline's source, read with the `git` command: the commit a
//! reference names, its message and dates, and the tree at that commit as a zip (what
//! CodePipeline's source actions deliver), or a clone (`CODEBUILD_CLONE_REF`).
//!
//! The `git` CLI rather than `gix`: every machine that has a repository has git, it reads
//! every repository format and configuration git itself writes (worktrees, packed refs,
//! partial clones, `safe.directory`), and `git archive` gives CodePipeline's exact artifact
//! (the committed tree, `.git` left out) without adding a second git implementation's
//! dependencies to pipeline-local's build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One commit, as the source actions report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitRevision {
    /// The full commit id.
    pub commit: String,
    /// The commit message, whole.
    pub message: String,
    /// ISO 8601 author date.
    pub author_date: String,
    /// ISO 8601 committer date.
    pub committer_date: String,
}

/// Runs `git -C repo args…`; its standard output, or an error naming the command. Arguments
/// are passed as a list, never through a shell, and references are checked not to look like
/// options, so a `--ref` cannot smuggle a git option in.
fn git(repo: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git (is it installed?): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} in {} failed: {}",
            args.join(" "),
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(out.stdout)
}

/// The repository to read: `given`, else the current directory when it is a git work tree.
pub fn repository(given: Option<&Path>) -> Result<PathBuf, String> {
    let candidate = given.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    match git(&candidate, &["rev-parse", "--show-toplevel"]) {
        Ok(top) => Ok(PathBuf::from(String::from_utf8_lossy(&top).trim())),
        Err(_) if given.is_none() => Err(
            "the pipeline's source is a git repository and the current directory is not a git work tree: pass --repo PATH".into(),
        ),
        Err(e) => Err(format!("--repo {}: not a git repository ({e})", candidate.display())),
    }
}

/// The commit `reference` (a branch, tag or commit) names in `repo`.
pub fn resolve(repo: &Path, reference: &str) -> Result<GitRevision, String> {
    if reference.starts_with('-') || reference.is_empty() {
        return Err(format!("`{reference}` is not a git reference"));
    }
    let commit = git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ],
    )
    .map_err(|_| {
        format!(
            "the repository {} has no branch, tag or commit `{reference}` (choose one with --ref)",
            repo.display()
        )
    })?;
    let commit = String::from_utf8_lossy(&commit).trim().to_string();
    let fields = git(repo, &["show", "-s", "--format=%aI%x00%cI%x00%B", &commit])?;
    let fields = String::from_utf8_lossy(&fields);
    let mut parts = fields.splitn(3, '\0');
    let author_date = parts.next().unwrap_or_default().to_string();
    let committer_date = parts.next().unwrap_or_default().to_string();
    let message = parts.next().unwrap_or_default().trim_end().to_string();
    Ok(GitRevision {
        commit,
        message,
        author_date,
        committer_date,
    })
}

/// What a reference names: a tag, a branch, or neither (a commit id, `HEAD~1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefKind {
    /// `refs/tags/<name>`.
    Tag(String),
    /// `refs/heads/<name>`.
    Branch(String),
    /// Anything else.
    Other,
}

/// Whether `reference` is one of `repo`'s tags or branches.
pub fn ref_kind(repo: &Path, reference: &str) -> RefKind {
    let exists = |full: &str| git(repo, &["show-ref", "--verify", "--quiet", full]).is_ok();
    if exists(&format!("refs/tags/{reference}")) {
        RefKind::Tag(reference.to_string())
    } else if exists(&format!("refs/heads/{reference}")) {
        RefKind::Branch(reference.to_string())
    } else {
        RefKind::Other
    }
}

/// The files `commit` changed against its first parent (all of them for a root commit).
pub fn changed_files(repo: &Path, commit: &str) -> Result<Vec<String>, String> {
    let out = git(
        repo,
        &[
            "diff-tree",
            "--no-commit-id",
            "--name-only",
            "-r",
            "--root",
            commit,
        ],
    )?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// The tree at `commit` as a zip, `.git` left out (`git archive`).
pub fn archive(repo: &Path, commit: &str) -> Result<Vec<u8>, String> {
    git(repo, &["archive", "--format=zip", commit])
}

/// A clone of `repo` checked out at `commit`, `.git` included, as a zip (`CODEBUILD_CLONE_REF`).
pub fn clone_archive(repo: &Path, commit: &str) -> Result<Vec<u8>, String> {
    let dir =
        tempfile::tempdir().map_err(|e| format!("cannot make a folder for the clone: {e}"))?;
    let clone = dir.path().join("clone");
    let out = Command::new("git")
        .args(["clone", "--quiet", "--no-checkout"])
        .arg(repo)
        .arg(&clone)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git clone of {} failed: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    git(&clone, &["checkout", "--quiet", "--detach", commit])?;
    crate::zips::zip_folder(&clone).map_err(|e| format!("cannot zip the clone: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_that_look_like_options_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["--output=/tmp/x", "-h", ""] {
            assert!(resolve(dir.path(), bad)
                .unwrap_err()
                .contains("not a git reference"));
        }
    }
}
