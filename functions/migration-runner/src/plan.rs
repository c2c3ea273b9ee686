//! Comparing the artifact's migrations with the database's history: what is pending, and
//! what is wrong (failed, modified, unknown, out of order).

use crate::history::{repair_hint, AppliedMigration, TABLE};
use crate::source::{Migration, MigrationSet};
use std::collections::BTreeMap;
use std::fmt;

/// What is wrong between the artifact and the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A row with `success = false`: a migration failed part-way.
    Failed { version: i64, description: String },
    /// The file changed after it was applied.
    Modified {
        version: i64,
        description: String,
        applied: Vec<u8>,
        artifact: Vec<u8>,
    },
    /// Applied in the database, missing from the artifact.
    Unknown { version: i64, description: String },
    /// Not applied, but lower than the highest applied version.
    OutOfOrder { version: i64, highest: i64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Failed { version, description } => write!(
                f,
                "migration {version} ({description}) is recorded as failed in {TABLE}: the database is dirty. {}",
                repair_hint(*version)
            ),
            Problem::Modified { version, description, applied, artifact } => write!(
                f,
                "migration {version} ({description}) was modified after it was applied (checksum in the database {}…, in the artifact {}…); restore the file and put the change in a new migration (an edit of comments or whitespace only: run `mode: repair`)",
                &hex::encode(applied)[..16.min(applied.len() * 2)],
                &hex::encode(artifact)[..16.min(artifact.len() * 2)]
            ),
            Problem::Unknown { version, description } => write!(
                f,
                "migration {version} ({description}) is applied in the database but not in the artifact: the artifact is older than the database, or the file was removed"
            ),
            Problem::OutOfOrder { version, highest } => write!(
                f,
                "migration {version} is not applied but is lower than the highest applied version {highest}; set `allow_out_of_order` to apply it"
            ),
        }
    }
}

/// The comparison, computed without touching the database.
#[derive(Debug)]
pub struct MigrationPlan<'a> {
    /// In version order, up to `target_version`.
    pub pending: Vec<&'a Migration>,
    /// What is wrong.
    pub problems: Vec<Problem>,
    /// Highest successfully applied version; `None` when nothing is applied.
    pub schema_version: Option<i64>,
    /// Migrations applied.
    pub applied_count: usize,
}

impl<'a> MigrationPlan<'a> {
    /// Compares the artifact's migrations with the history.
    pub fn new(
        set: &'a MigrationSet,
        history: &[AppliedMigration],
        target_version: Option<i64>,
        allow_out_of_order: bool,
    ) -> Self {
        let applied: BTreeMap<i64, &AppliedMigration> =
            history.iter().map(|row| (row.version, row)).collect();
        let highest = history
            .iter()
            .filter(|r| r.success)
            .map(|r| r.version)
            .max();
        let mut problems = Vec::new();
        for row in history {
            if !row.success {
                problems.push(Problem::Failed {
                    version: row.version,
                    description: row.description.clone(),
                });
            }
            match set.migrations.get(&row.version) {
                None => problems.push(Problem::Unknown {
                    version: row.version,
                    description: row.description.clone(),
                }),
                Some(file) if row.success && file.checksum != row.checksum => {
                    problems.push(Problem::Modified {
                        version: row.version,
                        description: file.description.clone(),
                        applied: row.checksum.clone(),
                        artifact: file.checksum.clone(),
                    })
                }
                Some(_) => {}
            }
        }
        let pending: Vec<&Migration> = set
            .migrations
            .values()
            .filter(|m| !applied.contains_key(&m.version))
            .filter(|m| target_version.is_none_or(|target| m.version <= target))
            .collect();
        if let Some(highest) = highest {
            if !allow_out_of_order {
                problems.extend(pending.iter().filter(|m| m.version < highest).map(|m| {
                    Problem::OutOfOrder {
                        version: m.version,
                        highest,
                    }
                }));
            }
        }
        Self {
            pending,
            problems,
            schema_version: highest,
            applied_count: history.iter().filter(|r| r.success).count(),
        }
    }

    /// `SchemaVersion` as the output variable carries it: the version, or `none`.
    pub fn schema_version_text(&self) -> String {
        version_text(self.schema_version)
    }

    /// All problems as one message, most urgent first.
    pub fn problems_message(&self) -> String {
        self.problems
            .iter()
            .map(Problem::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A schema version for people and output variables: `none` when nothing is applied (so a
/// database at version 0 and an empty one read differently).
pub fn version_text(version: Option<i64>) -> String {
    version.map_or_else(|| "none".to_string(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MigrationSetBuilder;

    fn set(versions: &[(i64, &str)]) -> MigrationSet {
        let mut builder = MigrationSetBuilder::default();
        for (version, sql) in versions {
            builder
                .add(&format!("{version}_m.sql"), sql.as_bytes().to_vec())
                .unwrap();
        }
        builder.finish().unwrap()
    }

    fn row(set: &MigrationSet, version: i64, success: bool) -> AppliedMigration {
        AppliedMigration {
            version,
            description: "m".into(),
            success,
            checksum: set.migrations[&version].checksum.clone(),
            execution_time: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn pending_are_the_unapplied_versions_up_to_the_target() {
        let set = set(&[(1, "a"), (2, "b"), (3, "c")]);
        let plan = MigrationPlan::new(&set, &[row(&set, 1, true)], Some(2), false);
        assert_eq!(
            plan.pending.iter().map(|m| m.version).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(plan.schema_version, Some(1));
        assert!(plan.problems.is_empty());
    }

    #[test]
    fn finds_every_kind_of_problem() {
        let files = set(&[(1, "a"), (2, "b"), (3, "c")]);
        let mut modified = row(&files, 1, true);
        modified.checksum = vec![0; 48];
        let history = vec![
            modified,
            row(&files, 3, false),
            AppliedMigration {
                version: 9,
                description: "gone".into(),
                success: true,
                checksum: vec![1],
                execution_time: std::time::Duration::ZERO,
            },
        ];
        let plan = MigrationPlan::new(&files, &history, None, false);
        let kinds: Vec<String> = plan
            .problems
            .iter()
            .map(|p| {
                format!("{p:?}")
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(kinds, vec!["Modified", "Failed", "Unknown", "OutOfOrder"]);
        assert!(plan
            .problems_message()
            .contains("DELETE FROM _sqlx_migrations WHERE version = 3"));
    }

    #[test]
    fn out_of_order_is_allowed_when_asked() {
        let files = set(&[(1, "a"), (2, "b")]);
        let plan = MigrationPlan::new(&files, &[row(&files, 2, true)], None, true);
        assert!(plan.problems.is_empty());
        assert_eq!(plan.pending.len(), 1);
    }
}
