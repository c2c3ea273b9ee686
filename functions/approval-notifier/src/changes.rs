//! What changed since the pipeline last released: the source revisions of this execution
//! against those of the latest successful one (`ListPipelineExecutions`), with a compare link
//! where the repository is on GitHub, GitLab or Bitbucket, and every execution in between that
//! did not succeed (their changes are part of what this approval releases).

use pipeline_ext::slack::mrkdwn::{date, escape, join_within, link, truncate};
use pipeline_ext::source_revision::{commit_message, Repository};
use serde_json::{json, Value};
use tokio::time::Instant;

/// How far back the last successful execution is looked for (one page).
pub const HISTORY: i32 = 50;
/// Slack's limit for a section's text.
const MAX_SECTION_CHARS: usize = 3_000;

/// One source action's revision.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Revision {
    pub id: String,
    pub summary: String,
    pub url: Option<String>,
}

/// An execution in the pipeline's history.
#[derive(Clone, Debug, Default)]
pub struct PastExecution {
    pub id: String,
    pub status: String,
    pub started_secs: Option<i64>,
    /// `(source action, revision)`.
    pub sources: Vec<(String, Revision)>,
}

/// This execution against the last release.
#[derive(Debug, Default)]
pub struct Changes {
    pub current: PastExecution,
    /// The latest successful execution older than this one, if any within [`HISTORY`].
    pub last_success: Option<PastExecution>,
    /// Executions after the last success and before this one, newest first.
    pub between: Vec<PastExecution>,
    /// How many executions were looked at.
    pub searched: usize,
}

/// Reads the pipeline's latest executions; `None` when they cannot be read in time or this
/// execution is not among them (the message then goes without the section).
pub async fn read(
    codepipeline: &aws_sdk_codepipeline::Client,
    pipeline: &str,
    execution_id: &str,
    deadline: Instant,
) -> Option<Changes> {
    let answer = codepipeline
        .list_pipeline_executions()
        .pipeline_name(pipeline)
        .max_results(HISTORY)
        .send();
    let output = match tokio::time::timeout_at(deadline, answer).await {
        Ok(Ok(output)) => output,
        Ok(Err(err)) => {
            tracing::warn!(error = %pipeline_ext::sdk::SdkFailure::from_sdk("CodePipeline", "ListPipelineExecutions", &err), "changes since the last release left out of the approval message");
            return None;
        }
        Err(_) => {
            tracing::warn!("ListPipelineExecutions did not answer in time; changes left out of the approval message");
            return None;
        }
    };
    let history: Vec<PastExecution> = output
        .pipeline_execution_summaries()
        .iter()
        .map(|summary| PastExecution {
            id: summary
                .pipeline_execution_id()
                .unwrap_or_default()
                .to_string(),
            status: summary
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            started_secs: summary.start_time().map(|t| t.secs()),
            sources: summary
                .source_revisions()
                .iter()
                .map(|r| {
                    (
                        r.action_name().to_string(),
                        Revision {
                            id: r.revision_id().unwrap_or_default().to_string(),
                            summary: r.revision_summary().unwrap_or_default().to_string(),
                            url: r.revision_url().map(str::to_owned),
                        },
                    )
                })
                .collect(),
        })
        .collect();
    compare(history, execution_id)
}

/// Splits the history (newest first, as CodePipeline lists it) around this execution.
pub fn compare(mut history: Vec<PastExecution>, execution_id: &str) -> Option<Changes> {
    // CodePipeline lists newest first; sorting keeps that true of any answer.
    history.sort_by_key(|e| std::cmp::Reverse(e.started_secs));
    let searched = history.len();
    let position = history.iter().position(|e| e.id == execution_id)?;
    let mut older = history.split_off(position);
    let current = older.remove(0);
    let success = older.iter().position(|e| e.status == "Succeeded");
    let (between, last_success) = match success {
        Some(index) => {
            let last = older.swap_remove(index);
            older.truncate(index);
            (older, Some(last))
        }
        None => (older, None),
    };
    Some(Changes {
        current,
        last_success,
        between,
        searched,
    })
}

/// The section showing the changes, within Block Kit's limits.
pub fn block(changes: &Changes) -> Value {
    let mut lines = Vec::new();
    let heading = match &changes.last_success {
        Some(last) => format!(
            "*Since the last successful execution* `{}`{}:",
            escape(&short(&last.id, 8)),
            last.started_secs
                .map(|secs| format!(" (started {})", date(secs)))
                .unwrap_or_default()
        ),
        None => format!(
            "*No successful execution among the latest {}*: everything in this execution is new.",
            changes.searched
        ),
    };
    for (action, new) in &changes.current.sources {
        let old = changes
            .last_success
            .as_ref()
            .and_then(|last| last.sources.iter().find(|(a, _)| a == action))
            .map(|(_, revision)| revision);
        lines.push(source_line(action, old, new));
    }
    for execution in &changes.between {
        let mark = match execution.status.as_str() {
            "Failed" => ":x:",
            "Stopped" | "Stopping" | "Superseded" | "Cancelled" => ":no_entry_sign:",
            _ => ":hourglass_flowing_sand:",
        };
        let revisions: Vec<String> = execution
            .sources
            .iter()
            .map(|(_, r)| revision_label(r))
            .collect();
        lines.push(format!(
            "{mark} `{}` {}: {}",
            escape(&short(&execution.id, 8)),
            escape(&execution.status),
            revisions.join(", ")
        ));
    }
    if !changes.between.is_empty() {
        lines.insert(
            changes.current.sources.len(),
            format!("*Not released in between* ({}):", changes.between.len()),
        );
    }
    let body = join_within(
        &lines,
        "\n",
        MAX_SECTION_CHARS - heading.chars().count() - 1,
    );
    let text = if body.is_empty() {
        heading
    } else {
        format!("{heading}\n{body}")
    };
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn source_line(action: &str, old: Option<&Revision>, new: &Revision) -> String {
    let action = escape(&truncate(action, 100));
    match old {
        Some(old) if old.id == new.id => {
            format!(
                "• *{action}*: no change (`{}`)",
                escape(&short(&old.id, 12))
            )
        }
        Some(old) => {
            let compare = Repository::of_revision(new.url.as_deref(), Some(&new.summary))
                .filter(|repo| {
                    Repository::of_revision(old.url.as_deref(), Some(&old.summary)).as_ref()
                        == Some(repo)
                })
                .and_then(|repo| repo.compare_url(&old.id, &new.id))
                .map(|url| format!(" · {}", link(&url, "compare")))
                .unwrap_or_default();
            format!(
                "• *{action}*: `{}` → {}{compare}",
                escape(&short(&old.id, 12)),
                revision_label(new)
            )
        }
        None => format!("• *{action}*: {} (new source)", revision_label(new)),
    }
}

/// The revision's short id (linked when its URL is https) and the first line of its message.
fn revision_label(revision: &Revision) -> String {
    let id = short(&revision.id, 12);
    let shown = match revision.url.as_deref() {
        Some(url) if url.starts_with("https://") => link(url, &id),
        _ => format!("`{}`", escape(&id)),
    };
    let message = commit_message(&revision.summary);
    let first = message.lines().next().unwrap_or_default().trim();
    if first.is_empty() {
        shown
    } else {
        format!("{shown} {}", escape(&truncate(first, 120)))
    }
}

fn short(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn execution(id: &str, status: &str, secs: i64, revision: &str) -> PastExecution {
        PastExecution {
            id: id.into(),
            status: status.into(),
            started_secs: Some(secs),
            sources: vec![(
                "Source".into(),
                Revision {
                    id: revision.into(),
                    summary: format!(r#"{{"ProviderType":"GitHub","CommitMessage":"commit {revision}"}}"#),
                    url: Some(format!("https://us-east-1.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=x&FullRepositoryId=acme/web&Commit={revision}")),
                },
            )],
        }
    }

    #[test]
    fn finds_the_last_success_older_than_this_execution() {
        let history = vec![
            execution("newer", "InProgress", 50, "eeeeeee"),
            execution("this", "InProgress", 40, "ddddddd"),
            execution("stopped", "Stopped", 30, "ccccccc"),
            execution("failed", "Failed", 20, "bbbbbbb"),
            execution("released", "Succeeded", 10, "aaaaaaa"),
            execution("older", "Succeeded", 5, "9999999"),
        ];
        let changes = compare(history, "this").unwrap();
        assert_eq!(changes.last_success.as_ref().unwrap().id, "released");
        let between: Vec<&str> = changes.between.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(between, ["stopped", "failed"]);
        let text = block(&changes)["text"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.contains("<https://github.com/acme/web/compare/aaaaaaa...ddddddd|compare>"),
            "{text}"
        );
        assert!(text.contains("*Not released in between* (2):"), "{text}");
        assert!(text.contains(":x: `failed` Failed:"), "{text}");
        assert!(text.contains("commit bbbbbbb"), "{text}");
    }

    #[test]
    fn says_no_change_when_the_revision_is_the_same() {
        let history = vec![
            execution("this", "InProgress", 40, "aaaaaaa"),
            execution("released", "Succeeded", 10, "aaaaaaa"),
        ];
        let text = block(&compare(history, "this").unwrap())["text"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains("*Source*: no change (`aaaaaaa`)"), "{text}");
    }

    #[test]
    fn says_so_when_nothing_was_released_yet() {
        let history = vec![
            execution("this", "InProgress", 40, "aaaaaaa"),
            execution("failed", "Failed", 10, "bbbbbbb"),
        ];
        let changes = compare(history, "this").unwrap();
        let text = block(&changes)["text"]["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.starts_with("*No successful execution among the latest 2*"),
            "{text}"
        );
        assert!(text.contains("(new source)"), "{text}");
    }

    #[test]
    fn an_execution_not_in_the_history_shows_nothing() {
        assert!(compare(vec![execution("a", "Succeeded", 1, "aaaaaaa")], "b").is_none());
    }

    proptest! {
        #[test]
        fn stays_within_block_kit_limits_for_any_history(
            count in 1usize..60,
            message in ".{0,400}",
            id in ".{0,80}",
            statuses in proptest::collection::vec(0u8..4, 60),
        ) {
            let history: Vec<PastExecution> = (0..count)
                .map(|i| PastExecution {
                    id: format!("{id}{i}"),
                    status: ["Succeeded", "Failed", "Stopped", "InProgress"][statuses[i] as usize].into(),
                    started_secs: Some(i as i64),
                    sources: (0..3).map(|s| (format!("{message}{s}"), Revision {
                        id: format!("{id}{i}"), summary: message.clone(),
                        url: Some(format!("https://github.com/acme/web/commit/{message}")),
                    })).collect(),
                })
                .collect();
            let current = history[count - 1].id.clone();
            if let Some(changes) = compare(history, &current) {
                let section = block(&changes);
                let text = section["text"]["text"].as_str().unwrap();
                prop_assert!(text.chars().count() <= MAX_SECTION_CHARS);
                prop_assert!(!text.contains("<!channel"));
            }
        }
    }
}
