//! What a source revision says about its repository: the commit message CodeConnections wraps
//! in JSON, and where a revision lives on GitHub, GitLab or Bitbucket so that two revisions can
//! be compared with one link.
//!
//! CodePipeline gives a revision as an id, a summary and a URL. A CodeConnections source
//! (`CodeStarSourceConnection`) puts `{"ProviderType": …, "CommitMessage": …}` in the summary and
//! a console redirect in the URL whose query holds `FullRepositoryId=owner/repo`; the GitHub
//! (version 1) action links `https://github.com/owner/repo/commit/<sha>`. Anything else
//! (S3 object versions, CodeCommit, self-managed hosts whose address is not in the revision)
//! has no repository we can link to, and gets none: a wrong compare link is worse than none.

/// A public Git host whose compare page we know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitHost {
    /// github.com
    GitHub,
    /// gitlab.com
    GitLab,
    /// bitbucket.org
    Bitbucket,
}

/// A repository on a [`GitHost`]: `owner/name` (GitLab: `group/subgroup/…/name`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// Where it is hosted.
    pub host: GitHost,
    /// `owner/name` as the host spells it in URLs.
    pub full_id: String,
}

impl Repository {
    /// The repository a revision belongs to, from its URL and summary, when it is on a host we
    /// can link to.
    pub fn of_revision(url: Option<&str>, summary: Option<&str>) -> Option<Self> {
        let url = url?;
        if let Some(repository) = Self::from_commit_url(url) {
            return Some(repository);
        }
        let host = match provider_type(summary?)?.as_str() {
            "GitHub" => GitHost::GitHub,
            "GitLab" => GitHost::GitLab,
            "Bitbucket" => GitHost::Bitbucket,
            _ => return None,
        };
        let query = url.split_once('?')?.1;
        let full_id = form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "FullRepositoryId")?
            .1
            .into_owned();
        Self::new(host, full_id)
    }

    /// A commit page URL of a known host (`https://github.com/o/r/commit/<sha>`).
    fn from_commit_url(url: &str) -> Option<Self> {
        let (host, rest) = [
            ("https://github.com/", GitHost::GitHub),
            ("https://gitlab.com/", GitHost::GitLab),
            ("https://bitbucket.org/", GitHost::Bitbucket),
        ]
        .into_iter()
        .find_map(|(prefix, host)| url.strip_prefix(prefix).map(|rest| (host, rest)))?;
        let path = rest.split(['?', '#']).next()?;
        let marker = match host {
            GitHost::GitLab => "/-/commit/",
            GitHost::GitHub => "/commit/",
            GitHost::Bitbucket => "/commits/",
        };
        let (full_id, commit) = path.split_once(marker)?;
        is_commit_id(commit.trim_end_matches('/'))
            .then(|| Self::new(host, full_id.to_string()))
            .flatten()
    }

    fn new(host: GitHost, full_id: String) -> Option<Self> {
        let segments: Vec<&str> = full_id.split('/').collect();
        let count_ok = match host {
            GitHost::GitLab => (2..=20).contains(&segments.len()),
            GitHost::GitHub | GitHost::Bitbucket => segments.len() == 2,
        };
        let segments_ok = segments.iter().all(|s| {
            !s.is_empty()
                && s.len() <= 100
                && !s.starts_with('.')
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
        (count_ok && segments_ok).then_some(Self { host, full_id })
    }

    /// The page showing what changed from `old` to `new`; `None` unless both are commit ids.
    pub fn compare_url(&self, old: &str, new: &str) -> Option<String> {
        if !is_commit_id(old) || !is_commit_id(new) {
            return None;
        }
        let id = &self.full_id;
        Some(match self.host {
            GitHost::GitHub => format!("https://github.com/{id}/compare/{old}...{new}"),
            GitHost::GitLab => format!("https://gitlab.com/{id}/-/compare/{old}...{new}"),
            // Bitbucket names the newer side first, the two separated by a carriage return.
            GitHost::Bitbucket => {
                format!("https://bitbucket.org/{id}/branches/compare/{new}%0D{old}#diff")
            }
        })
    }
}

/// A Git commit id (SHA-1 or SHA-256, full or abbreviated to at least 7).
pub fn is_commit_id(text: &str) -> bool {
    (7..=64).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit message of a revision summary: CodeConnections wraps it in JSON, other sources
/// give it as it is.
pub fn commit_message(summary: &str) -> String {
    serde_json::from_str::<serde_json::Value>(summary)
        .ok()
        .and_then(|v| v.get("CommitMessage")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| summary.to_string())
}

fn provider_type(summary: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(summary)
        .ok()?
        .get("ProviderType")?
        .as_str()
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
    const OLD: &str = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e";

    fn connection_url(repo: &str) -> String {
        format!(
            "https://us-east-1.console.aws.amazon.com/codesuite/settings/connections/redirect?connectionArn=arn:aws:codeconnections:us-east-1:111111111111:connection/0f9f&referenceType=COMMIT&FullRepositoryId={}&Commit={SHA}",
            form_urlencoded::byte_serialize(repo.as_bytes()).collect::<String>()
        )
    }

    #[test]
    fn reads_the_commit_message_of_a_connection_revision() {
        assert_eq!(
            commit_message(r#"{"ProviderType":"GitHub","CommitMessage":"Fix the login page"}"#),
            "Fix the login page"
        );
        assert_eq!(commit_message("Merge branch 'main'"), "Merge branch 'main'");
    }

    #[test]
    fn links_github_gitlab_and_bitbucket_connections_to_their_compare_pages() {
        for (provider, repo, expected) in [
            (
                "GitHub",
                "acme/web",
                format!("https://github.com/acme/web/compare/{OLD}...{SHA}"),
            ),
            (
                "GitLab",
                "acme/platform/web",
                format!("https://gitlab.com/acme/platform/web/-/compare/{OLD}...{SHA}"),
            ),
            (
                "Bitbucket",
                "acme/web",
                format!("https://bitbucket.org/acme/web/branches/compare/{SHA}%0D{OLD}#diff"),
            ),
        ] {
            let summary = format!(r#"{{"ProviderType":"{provider}","CommitMessage":"x"}}"#);
            let repository =
                Repository::of_revision(Some(&connection_url(repo)), Some(&summary)).unwrap();
            assert_eq!(repository.full_id, repo);
            assert_eq!(repository.compare_url(OLD, SHA).unwrap(), expected);
        }
    }

    #[test]
    fn reads_the_repository_of_a_github_commit_url() {
        let url = format!("https://github.com/acme/web/commit/{SHA}");
        let repository = Repository::of_revision(Some(&url), None).unwrap();
        assert_eq!(repository.host, GitHost::GitHub);
        assert_eq!(repository.full_id, "acme/web");
    }

    #[test]
    fn self_managed_hosts_s3_and_codecommit_get_no_link() {
        let summary = r#"{"ProviderType":"GitHubEnterpriseServer","CommitMessage":"x"}"#;
        assert_eq!(
            Repository::of_revision(Some(&connection_url("acme/web")), Some(summary)),
            None
        );
        assert_eq!(
            Repository::of_revision(Some("https://example.com/acme/web/commit/abcdef0"), None),
            None
        );
        assert_eq!(Repository::of_revision(None, Some(summary)), None);
        let codecommit = "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/web/commit/abcdef0?region=us-east-1";
        assert_eq!(Repository::of_revision(Some(codecommit), None), None);
    }

    #[test]
    fn refuses_repository_ids_that_would_change_the_link() {
        let summary = r#"{"ProviderType":"GitHub","CommitMessage":"x"}"#;
        for repo in [
            "acme",
            "acme/web/extra",
            "acme/../evil",
            "acme/web|label",
            "acme/we b",
            "acme/web>",
            "/web",
        ] {
            assert_eq!(
                Repository::of_revision(Some(&connection_url(repo)), Some(summary)),
                None,
                "{repo}"
            );
        }
        let repository = Repository::of_revision(Some(&connection_url("a/b")), Some(summary));
        assert_eq!(repository.unwrap().compare_url("main", SHA), None);
    }

    proptest! {
        #[test]
        fn never_panics_and_links_only_safe_text(url in ".{0,300}", summary in ".{0,200}",
                                                  old in "[0-9a-zA-Z]{0,70}", new in "[0-9a-f]{0,70}") {
            if let Some(repository) = Repository::of_revision(Some(&url), Some(&summary)) {
                if let Some(link) = repository.compare_url(&old, &new) {
                    prop_assert!(link.starts_with("https://"));
                    prop_assert!(!link.contains(['<', '>', '|', ' ', '"', '\n']));
                    prop_assert!(!link.split('/').any(|segment| segment == ".." || segment == "."));
                }
            }
            let _ = commit_message(&summary);
        }

        #[test]
        fn any_safe_repository_id_round_trips(owner in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,38}",
                                               name in "[A-Za-z0-9_-][A-Za-z0-9._-]{0,38}") {
            let repo = format!("{owner}/{name}");
            let summary = r#"{"ProviderType":"GitHub","CommitMessage":"x"}"#;
            let repository = Repository::of_revision(Some(&connection_url(&repo)), Some(summary)).unwrap();
            prop_assert_eq!(&repository.full_id, &repo);
            let link = repository.compare_url(OLD, SHA).unwrap();
            prop_assert_eq!(link, format!("https://github.com/{repo}/compare/{OLD}...{SHA}"));
        }
    }
}
