//! A V2 pipeline's `Triggers` evaluated for the commit a local run builds: which trigger
//! would start this execution on AWS after a push of that branch or tag, or why none would.
//! pipeline-local runs the execution either way (the person asked for it, as
//! StartPipelineExecution does); the verdict is printed so a filter mistake shows before the
//! push, not after.
//!
//! Filters as CodePipeline applies them: `Branches`, `Tags` and `FilePaths`, each with
//! `Includes` and `Excludes` (globs; an exclude wins), all given filters of one push entry must
//! match, and a file filter matches when one changed file is included and not excluded. Pull
//! request filters are named, not evaluated: a local run is a push.

use pipeline_ext::glob::Glob;
use serde_json::Value;

/// What a push would carry: the branch or tag pushed, and the files the commit changed.
#[derive(Debug, Default)]
pub struct Push {
    /// The branch pushed, if a branch.
    pub branch: Option<String>,
    /// The tag pushed, if a tag.
    pub tag: Option<String>,
    /// The files the commit changed.
    pub changed: Vec<String>,
}

/// Whether `value` passes an `{Includes, Excludes}` filter; the reason when it does not.
fn passes(filter: &Value, value: &str, what: &str) -> Result<(), String> {
    let globs = |key: &str| -> Vec<String> {
        filter[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let matches = |patterns: &[String]| {
        patterns
            .iter()
            .any(|p| Glob::new(p).is_ok_and(|g| g.is_match(value)))
    };
    let (includes, excludes) = (globs("Includes"), globs("Excludes"));
    if matches(&excludes) {
        return Err(format!("{what} {value} is in Excludes {excludes:?}"));
    }
    if !includes.is_empty() && !matches(&includes) {
        return Err(format!("{what} {value} is not in Includes {includes:?}"));
    }
    Ok(())
}

/// Whether one `Push` entry of a trigger matches `push`; the reason when it does not.
fn push_matches(entry: &Value, push: &Push) -> Result<(), String> {
    if entry.get("Branches").is_some() {
        let branch = push
            .branch
            .as_deref()
            .ok_or("it filters branches and a tag is pushed")?;
        passes(&entry["Branches"], branch, "branch")?;
    }
    if entry.get("Tags").is_some() {
        let tag = push
            .tag
            .as_deref()
            .ok_or("it filters tags and a branch is pushed")?;
        passes(&entry["Tags"], tag, "tag")?;
    }
    if entry.get("FilePaths").is_some() {
        let hit = push
            .changed
            .iter()
            .any(|file| passes(&entry["FilePaths"], file, "file").is_ok());
        if !hit {
            return Err(format!(
                "none of the {} files the commit changed passes its FilePaths",
                push.changed.len()
            ));
        }
    }
    Ok(())
}

/// The verdict, one line: which trigger would start the execution, or why none would.
/// `source_action` is the git source action's name, `branch` the one it follows.
pub fn verdict(triggers: &Value, source_action: &str, branch: &str, push: &Push) -> String {
    let pushed = match (&push.branch, &push.tag) {
        (_, Some(tag)) => format!("tag {tag}"),
        (Some(branch), None) => format!("branch {branch}"),
        (None, None) => "a commit on no branch".to_string(),
    };
    let mine: Vec<(usize, &Value)> = triggers
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, t)| t["GitConfiguration"]["SourceActionName"].as_str() == Some(source_action))
        .map(|(i, t)| (i + 1, t))
        .collect();
    if mine.is_empty() {
        return if push.branch.as_deref() == Some(branch) {
            format!("no Triggers name {source_action}: a push of {pushed} starts the pipeline (change detection on {branch})")
        } else {
            format!("no Triggers name {source_action}: only a push of branch {branch} starts the pipeline, not {pushed}")
        };
    }
    let mut reasons = Vec::new();
    for (number, trigger) in &mine {
        let git = &trigger["GitConfiguration"];
        let pushes = git["Push"].as_array().cloned().unwrap_or_default();
        for (index, entry) in pushes.iter().enumerate() {
            match push_matches(entry, push) {
                Ok(()) => {
                    return format!(
                        "a push of {pushed} ({} files changed) matches trigger {number}, push filter {}: it would start this execution",
                        push.changed.len(),
                        index + 1
                    )
                }
                Err(why) => reasons.push(format!("trigger {number}, push filter {}: {why}", index + 1)),
            }
        }
        if git.get("PullRequest").is_some() {
            reasons.push(format!(
                "trigger {number}: its pull request filters are not evaluated (a local run is a push)"
            ));
        }
    }
    format!(
        "no trigger would start this execution after a push of {pushed}: {}",
        reasons.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn push(branch: &str, changed: &[&str]) -> Push {
        Push {
            branch: Some(branch.into()),
            tag: None,
            changed: changed.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn triggers() -> Value {
        json!([{"ProviderType": "CodeStarSourceConnection", "GitConfiguration": {
            "SourceActionName": "Source",
            "Push": [{"Branches": {"Includes": ["main", "release/**"], "Excludes": ["release/old-*"]},
                      "FilePaths": {"Includes": ["site/**"], "Excludes": ["site/drafts/**"]}}],
            "PullRequest": [{"Events": ["OPEN"]}]}}])
    }

    #[test]
    fn a_push_that_passes_every_filter_starts_the_execution() {
        let line = verdict(
            &triggers(),
            "Source",
            "main",
            &push("main", &["site/index.html"]),
        );
        assert!(line.contains("matches trigger 1, push filter 1"), "{line}");
    }

    #[test]
    fn each_refusal_says_which_filter_refused() {
        let line = verdict(
            &triggers(),
            "Source",
            "main",
            &push("feature/x", &["site/a.html"]),
        );
        assert!(
            line.contains("branch feature/x is not in Includes"),
            "{line}"
        );
        let line = verdict(
            &triggers(),
            "Source",
            "main",
            &push("release/old-1", &["site/a"]),
        );
        assert!(line.contains("is in Excludes"), "{line}");
        let line = verdict(
            &triggers(),
            "Source",
            "main",
            &push("main", &["site/drafts/a", "README.md"]),
        );
        assert!(line.contains("none of the 2 files"), "{line}");
        assert!(
            line.contains("pull request filters are not evaluated"),
            "{line}"
        );
        let tag = Push {
            branch: None,
            tag: Some("v1".into()),
            changed: vec![],
        };
        assert!(verdict(&triggers(), "Source", "main", &tag).contains("a tag is pushed"));
    }

    #[test]
    fn without_triggers_the_followed_branch_starts_it() {
        let line = verdict(&Value::Null, "Source", "main", &push("main", &[]));
        assert!(line.contains("change detection on main"), "{line}");
        let line = verdict(&Value::Null, "Source", "main", &push("dev", &[]));
        assert!(line.contains("only a push of branch main"), "{line}");
    }

    proptest! {
        #[test]
        fn any_triggers_document_gets_a_verdict(doc in "\\PC{0,200}", branch in "[a-z/*]{0,12}") {
            let triggers = serde_json::from_str::<Value>(&doc).unwrap_or(Value::Null);
            let line = verdict(&triggers, "Source", "main", &push(&branch, &["a"]));
            prop_assert!(!line.is_empty());
        }
    }
}
