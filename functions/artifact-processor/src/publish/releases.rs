//! The release record: one small object under the prefix saying which release last published
//! each key, so files a new release no longer has are kept for pages still open in browsers
//! (`prune`), and what the last invalidation left undone.
//!
//! The record is read with the listing and written once, last, as one `PutObject` (S3 makes
//! it visible whole or not at all). A missing or unreadable record is never a reason to
//! delete: then nothing old goes, the summary says why, and a new record starts the count.

use crate::globs::GlobList;
use crate::params::{PruneRules, PublishStep};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The record's name under the prefix; an artifact may not hold a file of that name.
pub const RECORD_NAME: &str = ".publish-releases.json";
/// A record larger than this is taken as damaged rather than read.
pub(super) const MAX_RECORD_BYTES: u64 = 64 * 1024 * 1024;
/// Releases the record remembers the time of, beyond those its keys still name.
const REMEMBERED_RELEASES: usize = 50;
const FORMAT: u32 = 1;

/// One release: its number, when it was published (Unix seconds) and by which job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Release {
    /// Its number: 1 for the first publish the record saw, one more for each that changed
    /// something.
    pub release: u64,
    /// Unix seconds, for `older_than`.
    pub published_at: u64,
    /// The CodePipeline job that published it, to trace a release back to its execution.
    pub job: String,
}

/// Paths an earlier publish could not invalidate; the next publish invalidates them too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PendingInvalidation {
    /// The distribution they were for; a publish to another one leaves them.
    pub distribution: String,
    /// The planned paths, already within CloudFront's limits.
    pub paths: Vec<String>,
}

/// The record as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReleaseRecord {
    /// The record's layout; another is read as damaged, never guessed at.
    pub format: u32,
    /// The latest release.
    pub release: u64,
    /// The releases the keys name, newest last.
    pub releases: Vec<Release>,
    /// Key (under the prefix, without it) → the release that last published it.
    pub keys: BTreeMap<String, u64>,
    /// Key of a file compressed at publish time → what it was made from (source digest,
    /// encoding, level), so an unchanged source is not compressed again.
    #[serde(default)]
    pub generated: BTreeMap<String, String>,
    /// What the last invalidation could not do, for the next publish to do.
    #[serde(default)]
    pub pending_invalidation: Option<PendingInvalidation>,
}

/// What was found under the record's key.
#[derive(Debug)]
pub(super) enum RecordState {
    Found(ReleaseRecord),
    Missing,
    /// Why it could not be used.
    Damaged(String),
}

impl RecordState {
    /// Reads a stored record, checking that it is one this function wrote.
    pub fn parse(bytes: &[u8]) -> Self {
        let record: ReleaseRecord = match serde_json::from_slice(bytes) {
            Ok(record) => record,
            Err(e) => return Self::Damaged(format!("it is not a release record ({e})")),
        };
        if record.format != FORMAT {
            return Self::Damaged(format!(
                "it has format {}, this function reads format {FORMAT}",
                record.format
            ));
        }
        if let Some((key, release)) = record.keys.iter().find(|(_, r)| **r > record.release) {
            return Self::Damaged(format!(
                "`{key}` is recorded in release {release}, after the latest release {}",
                record.release
            ));
        }
        Self::Found(record)
    }

    fn record(&self) -> Option<&ReleaseRecord> {
        match self {
            Self::Found(record) => Some(record),
            _ => None,
        }
    }

    /// The latest release recorded (0: none).
    pub fn release(&self) -> u64 {
        self.record().map_or(0, |r| r.release)
    }

    /// The release that last published `name`.
    pub fn release_of(&self, name: &str) -> Option<u64> {
        self.record()?.keys.get(name).copied()
    }

    /// What a generated file was made from, as recorded.
    pub fn generated_from(&self, name: &str) -> Option<&str> {
        self.record()?.generated.get(name).map(String::as_str)
    }

    /// Paths left to invalidate on `distribution`.
    pub fn pending_paths(&self, distribution: &str) -> Vec<String> {
        self.record()
            .and_then(|r| r.pending_invalidation.as_ref())
            .filter(|p| p.distribution == distribution)
            .map(|p| p.paths.clone())
            .unwrap_or_default()
    }

    fn published_at(&self, release: u64) -> Option<u64> {
        self.record()?
            .releases
            .iter()
            .find(|r| r.release == release)
            .map(|r| r.published_at)
    }
}

/// Why a file no longer in the artifact stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kept {
    /// Within the grace of `keep_releases` or `older_than`.
    InGrace,
    /// The record does not know it (first seen by this release).
    Unrecorded,
    /// The record is missing or damaged.
    NoRecord,
    /// `delete_stale` is off and no `prune` is set.
    NotPruning,
}

/// What becomes of the files the artifact no longer has.
#[derive(Debug, Default)]
pub(super) struct PrunePlan {
    /// Keys to delete (sorted).
    pub delete: Vec<String>,
    /// Names (without the prefix) kept, and why.
    pub kept: Vec<(String, Kept)>,
    /// Set when nothing old was deleted because of the record.
    pub record_problem: Option<String>,
}

/// The rules a publish prunes by.
pub(super) struct PruneRulesOf<'a> {
    /// `prune`, or `None` for `delete_stale` without grace.
    pub prune: Option<&'a PruneRules>,
    /// Without `prune`: whether stale files go at once (true) or stay (false).
    pub delete_stale: bool,
    /// Pages, which are always current: a stale one goes without grace.
    pub entry_points: &'a GlobList,
}

impl<'a> PruneRulesOf<'a> {
    pub fn of(step: &'a PublishStep, entry_points: &'a GlobList) -> Self {
        Self {
            prune: step.prune.as_ref(),
            delete_stale: step.delete_stale,
            entry_points,
        }
    }
}

/// Decides, for each stale key (under `prefix`, not in the artifact), whether it goes.
/// `release` is the release being published, `now` Unix seconds. With both `keep_releases`
/// and `older_than`, a file goes only when past both: each is a grace, and the longer protects.
pub(super) fn plan_prune(
    stale: &[String],
    prefix: &str,
    record: &RecordState,
    rules: &PruneRulesOf<'_>,
    release: u64,
    now: u64,
) -> PrunePlan {
    let mut plan = PrunePlan::default();
    let name_of = |key: &str| key.strip_prefix(prefix).unwrap_or(key).to_string();
    let Some(prune) = rules.prune else {
        if rules.delete_stale {
            plan.delete = stale.to_vec();
        } else {
            plan.kept = stale
                .iter()
                .map(|k| (name_of(k), Kept::NotPruning))
                .collect();
        }
        return plan;
    };
    if let RecordState::Missing | RecordState::Damaged(_) = record {
        plan.record_problem = Some(match record {
            RecordState::Damaged(why) => {
                format!("the release record {prefix}{RECORD_NAME} is damaged ({why})")
            }
            _ => format!("the release record {prefix}{RECORD_NAME} is missing"),
        });
        plan.kept = stale.iter().map(|k| (name_of(k), Kept::NoRecord)).collect();
        return plan;
    }
    for key in stale {
        let name = name_of(key);
        if super::is_entry_point(rules.entry_points, &name) {
            plan.delete.push(key.clone());
            continue;
        }
        let Some(last) = record.release_of(&name) else {
            plan.kept.push((name, Kept::Unrecorded));
            continue;
        };
        let past_releases = prune
            .keep_releases
            .is_none_or(|keep| release.saturating_sub(last) > keep);
        let past_age = match prune.older_than {
            None => true,
            Some(age) => record
                .published_at(last)
                .is_some_and(|at| now.saturating_sub(at) > age.duration().as_secs()),
        };
        if past_releases && past_age {
            plan.delete.push(key.clone());
        } else {
            plan.kept.push((name, Kept::InGrace));
        }
    }
    plan.delete.sort();
    plan
}

/// The record after this publish: the artifact's names in `release`, kept stale files in the
/// release that last published them (or this one, when the record did not know them), deleted
/// ones forgotten.
pub(super) fn next_record(
    previous: &RecordState,
    release: Release,
    published: impl IntoIterator<Item = String>,
    kept: &[(String, Kept)],
    generated: BTreeMap<String, String>,
    pending_invalidation: Option<PendingInvalidation>,
) -> ReleaseRecord {
    let current = release.release;
    let mut keys: BTreeMap<String, u64> = published.into_iter().map(|n| (n, current)).collect();
    for (name, _) in kept {
        keys.entry(name.clone())
            .or_insert_with(|| previous.release_of(name).unwrap_or(current));
    }
    let named: std::collections::BTreeSet<u64> = keys.values().copied().collect();
    let mut releases: Vec<Release> = previous
        .record()
        .map(|r| r.releases.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.release != current)
        .collect();
    releases.push(release);
    let newest_kept = releases.len().saturating_sub(REMEMBERED_RELEASES);
    let releases = releases
        .into_iter()
        .enumerate()
        .filter(|(i, r)| *i >= newest_kept || named.contains(&r.release))
        .map(|(_, r)| r)
        .collect();
    ReleaseRecord {
        format: FORMAT,
        release: current,
        releases,
        keys,
        generated,
        pending_invalidation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Age;
    use proptest::prelude::*;

    fn html() -> GlobList {
        GlobList::new("entry_points", &["**/*.html".to_string()]).unwrap()
    }

    fn record(release: u64, keys: &[(&str, u64)], times: &[(u64, u64)]) -> RecordState {
        RecordState::Found(ReleaseRecord {
            format: FORMAT,
            release,
            releases: times
                .iter()
                .map(|(r, at)| Release {
                    release: *r,
                    published_at: *at,
                    job: "j".into(),
                })
                .collect(),
            keys: keys.iter().map(|(k, r)| (k.to_string(), *r)).collect(),
            ..Default::default()
        })
    }

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| format!("site/{n}")).collect()
    }

    #[test]
    fn keep_releases_keeps_the_last_n_releases_assets() {
        let entry = html();
        let prune = PruneRules {
            keep_releases: Some(1),
            ..Default::default()
        };
        let rules = PruneRulesOf {
            prune: Some(&prune),
            delete_stale: false,
            entry_points: &entry,
        };
        let before = record(2, &[("a-1.js", 1), ("a-2.js", 2), ("old.html", 2)], &[]);
        let plan = plan_prune(
            &keys(&["a-1.js", "a-2.js", "old.html"]),
            "site/",
            &before,
            &rules,
            3,
            0,
        );
        assert_eq!(plan.delete, keys(&["a-1.js", "old.html"]));
        assert_eq!(plan.kept, vec![("a-2.js".to_string(), Kept::InGrace)]);
    }

    #[test]
    fn a_missing_or_damaged_record_deletes_nothing_and_says_so() {
        let entry = html();
        let prune = PruneRules::default();
        let rules = PruneRulesOf {
            prune: Some(&prune),
            delete_stale: true,
            entry_points: &entry,
        };
        for state in [RecordState::Missing, RecordState::parse(b"{not json")] {
            let plan = plan_prune(&keys(&["a.js", "b.html"]), "site/", &state, &rules, 1, 0);
            assert!(plan.delete.is_empty());
            assert_eq!(plan.kept.len(), 2);
            assert!(plan
                .record_problem
                .unwrap()
                .contains(".publish-releases.json"));
        }
    }

    #[test]
    fn with_both_limits_a_file_goes_only_past_both() {
        let entry = html();
        let prune = PruneRules {
            keep_releases: Some(1),
            older_than: Some(Age::parse("1d").unwrap()),
            dry_run: false,
        };
        let rules = PruneRulesOf {
            prune: Some(&prune),
            delete_stale: false,
            entry_points: &entry,
        };
        let day = 86_400;
        let before = record(5, &[("recent.js", 1), ("old.js", 1)], &[(1, 10 * day)]);
        // Five releases later but published less than a day ago: kept.
        let plan = plan_prune(
            &keys(&["recent.js"]),
            "site/",
            &before,
            &rules,
            6,
            10 * day + 100,
        );
        assert!(plan.delete.is_empty());
        let plan = plan_prune(&keys(&["old.js"]), "site/", &before, &rules, 6, 12 * day);
        assert_eq!(plan.delete, keys(&["old.js"]));
    }

    #[test]
    fn unrecorded_stale_files_are_kept_and_recorded_in_this_release() {
        let entry = html();
        let prune = PruneRules::default();
        let rules = PruneRulesOf {
            prune: Some(&prune),
            delete_stale: false,
            entry_points: &entry,
        };
        let before = record(1, &[], &[]);
        let plan = plan_prune(&keys(&["stranger.js"]), "site/", &before, &rules, 2, 0);
        assert_eq!(
            plan.kept,
            vec![("stranger.js".to_string(), Kept::Unrecorded)]
        );
        let next = next_record(
            &before,
            Release {
                release: 2,
                published_at: 0,
                job: "j".into(),
            },
            ["index.html".to_string()],
            &plan.kept,
            BTreeMap::new(),
            None,
        );
        assert_eq!(next.keys["stranger.js"], 2);
    }

    #[test]
    fn records_from_the_future_or_another_format_are_damaged() {
        assert!(matches!(
            RecordState::parse(br#"{"format":1,"release":1,"releases":[],"keys":{"a":2}}"#),
            RecordState::Damaged(_)
        ));
        assert!(matches!(
            RecordState::parse(br#"{"format":2,"release":1,"releases":[],"keys":{}}"#),
            RecordState::Damaged(_)
        ));
    }

    proptest! {
        /// Any stored bytes are read as a record or as damaged, never a panic; a record this
        /// function wrote reads back the same.
        #[test]
        fn any_record_bytes_are_read_or_called_damaged(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = RecordState::parse(&bytes);
        }

        #[test]
        fn written_records_read_back(names in proptest::collection::btree_set("[a-z/.]{1,12}", 0..20), release in 1u64..1000) {
            let next = next_record(
                &RecordState::Missing,
                Release { release, published_at: 7, job: "j".into() },
                names.iter().cloned(),
                &[],
                BTreeMap::new(),
                None,
            );
            let bytes = serde_json::to_vec(&next).unwrap();
            match RecordState::parse(&bytes) {
                RecordState::Found(read) => prop_assert_eq!(read, next),
                other => prop_assert!(false, "{:?}", other),
            }
        }

        /// Nothing recorded in one of the last `keep` releases is ever deleted.
        #[test]
        fn nothing_within_keep_releases_is_deleted(
            recorded in proptest::collection::vec(1u64..20, 1..30),
            keep in 0u64..5,
        ) {
            let entry = GlobList::new("e", &[]).unwrap();
            let prune = PruneRules { keep_releases: Some(keep), ..Default::default() };
            let rules = PruneRulesOf { prune: Some(&prune), delete_stale: false, entry_points: &entry };
            let names: Vec<String> = (0..recorded.len()).map(|i| format!("f{i}.js")).collect();
            let pairs: Vec<(&str, u64)> = names.iter().map(String::as_str).zip(recorded.iter().copied()).collect();
            let before = record(20, &pairs, &[]);
            let stale: Vec<String> = names.clone();
            let plan = plan_prune(&stale, "", &before, &rules, 21, 0);
            for key in &plan.delete {
                let last = before.release_of(key).unwrap();
                prop_assert!(21 - last > keep);
            }
            prop_assert_eq!(plan.delete.len() + plan.kept.len(), stale.len());
        }
    }
}
