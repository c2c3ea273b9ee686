//! Migration files as `sqlx migrate` names and checksums them: `<version>_<description>.sql`
//! or `.up.sql`/`.down.sql`, SHA-384 of the file's bytes, and the directives of its header
//! (`directives`: `-- no-transaction`, `-- migrate:lock_timeout 10s`…).

use crate::directives;
use pipeline_ext::job::JobError;
use sha2::{Digest, Sha384};
use std::collections::BTreeMap;
use std::time::Duration;

/// One up migration from the artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Its version.
    pub version: i64,
    /// As sqlx derives it: the name after the version, suffix removed, `_` as spaces.
    pub description: String,
    /// Its file name.
    pub file: String,
    /// Its text.
    pub sql: String,
    /// SHA-384 of its bytes, as sqlx computes it.
    pub checksum: Vec<u8>,
    /// Marked to run outside a transaction.
    pub no_transaction: bool,
    /// Each statement's wait for a table lock, when the file sets it.
    pub lock_timeout: Option<Duration>,
    /// Each statement's time limit, when the file sets it.
    pub statement_timeout: Option<Duration>,
    /// Data checks that must hold before it runs (`…_pre.check.sql`), by file name.
    pub pre_checks: Vec<Check>,
    /// Data checks that must hold after it ran, before it commits (`…_post.check.sql`).
    pub post_checks: Vec<Check>,
    /// The `.down.sql` that undoes it, for `revert`.
    pub down: Option<DownMigration>,
}

/// A `.down.sql` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownMigration {
    /// Its file name.
    pub file: String,
    /// Its text.
    pub sql: String,
    /// Marked to run outside a transaction.
    pub no_transaction: bool,
}

impl Migration {
    /// `<version> <description>`, for messages.
    pub fn label(&self) -> String {
        format!("{} ({})", self.version, self.description)
    }
}

/// One check file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Its file name.
    pub file: String,
    /// Its text.
    pub sql: String,
}

/// When a check runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Before its migration.
    Pre,
    /// After its migration, before it commits.
    Post,
}

impl When {
    /// `pre` or `post`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            When::Pre => "pre-check",
            When::Post => "post-check",
        }
    }
}

/// Which of sqlx's file names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `<version>_<description>.sql`.
    Simple,
    /// `.up.sql`.
    Up,
    /// `.down.sql`.
    Down,
    /// `_pre.check.sql` or `_post.check.sql`: not a migration, a data check of one.
    Check(When),
}

/// Every migration in the folder, by version.
#[derive(Debug, Default)]
pub struct MigrationSet {
    /// By version.
    pub migrations: BTreeMap<i64, Migration>,
}

/// Collects files one at a time, refusing names sqlx would not read the same way.
#[derive(Debug, Default)]
pub struct MigrationSetBuilder {
    /// Up and simple migrations read so far.
    ups: BTreeMap<i64, (Kind, Migration)>,
    /// Down migrations read so far.
    downs: BTreeMap<i64, DownMigration>,
    /// Data checks read so far, by version.
    checks: BTreeMap<i64, Vec<(When, Check)>>,
}

impl MigrationSetBuilder {
    /// Adds the file `name` (relative to the migrations folder).
    pub fn add(&mut self, name: &str, bytes: Vec<u8>) -> Result<(), JobError> {
        if name.contains('/') {
            return Err(JobError::config(format!(
                "`{name}`: migrations must be directly in the folder, not in a subfolder"
            )));
        }
        let (version, kind, description) = parse_name(name)?;
        let sql = String::from_utf8(bytes)
            .map_err(|_| JobError::config(format!("`{name}` is not UTF-8 text")))?;
        if let Kind::Check(when) = kind {
            let check = Check {
                file: name.to_string(),
                sql,
            };
            self.checks.entry(version).or_default().push((when, check));
            return Ok(());
        }
        let directives =
            directives::read(&sql).map_err(|why| JobError::config(format!("`{name}`, {why}")))?;
        if kind == Kind::Down {
            let down = DownMigration {
                file: name.to_string(),
                no_transaction: directives.no_transaction,
                sql,
            };
            if let Some(other) = self.downs.insert(version, down) {
                return Err(duplicate(version, &other.file, name));
            }
            return Ok(());
        }
        let migration = Migration {
            version,
            description,
            file: name.to_string(),
            checksum: Sha384::digest(sql.as_bytes()).to_vec(),
            no_transaction: directives.no_transaction,
            lock_timeout: directives.lock_timeout,
            statement_timeout: directives.statement_timeout,
            pre_checks: Vec::new(),
            post_checks: Vec::new(),
            sql,
            down: None,
        };
        if let Some((_, other)) = self.ups.insert(version, (kind, migration)) {
            return Err(duplicate(version, &other.file, name));
        }
        Ok(())
    }

    /// The set, once every file is read; refuses a mix of kinds or a down without its up.
    pub fn finish(mut self) -> Result<MigrationSet, JobError> {
        for (version, down) in std::mem::take(&mut self.downs) {
            match self.ups.get_mut(&version) {
                Some((Kind::Up, up)) => up.down = Some(down),
                Some((_, up)) => {
                    return Err(JobError::config(format!(
                        "`{}` has no matching `.up.sql`: version {version} is the simple migration `{}`",
                        down.file,
                        up.file
                    )))
                }
                None => {
                    return Err(JobError::config(format!(
                        "`{}` has no matching `{version}_….up.sql`",
                        down.file
                    )))
                }
            }
        }
        for (version, mut checks) in std::mem::take(&mut self.checks) {
            let Some((_, migration)) = self.ups.get_mut(&version) else {
                return Err(JobError::config(format!(
                    "`{}` checks migration {version}, which is not in the folder",
                    checks[0].1.file
                )));
            };
            checks.sort_by(|a, b| a.1.file.cmp(&b.1.file));
            for (when, check) in checks {
                match when {
                    When::Pre => migration.pre_checks.push(check),
                    When::Post => migration.post_checks.push(check),
                }
            }
        }
        Ok(MigrationSet {
            migrations: self.ups.into_iter().map(|(v, (_, m))| (v, m)).collect(),
        })
    }
}

/// Two files with one version.
fn duplicate(version: i64, first: &str, second: &str) -> JobError {
    JobError::config(format!(
        "version {version} is used by both `{first}` and `{second}`"
    ))
}

/// Version, kind and description from a file name.
fn parse_name(name: &str) -> Result<(i64, Kind, String), JobError> {
    let expected = "expected `<version>_<description>.sql` (or `.up.sql`/`.down.sql`), e.g. `20240101120000_create_users.sql`";
    let Some((version, rest)) = name.split_once('_') else {
        return Err(JobError::config(format!("`{name}`: {expected}")));
    };
    if !rest.ends_with(".sql") || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(JobError::config(format!("`{name}`: {expected}")));
    }
    let version: i64 = version.parse().map_err(|_| {
        JobError::config(format!(
            "`{name}`: the version does not fit a 64-bit integer"
        ))
    })?;
    let (kind, suffix) = if rest.ends_with("_pre.check.sql") {
        (Kind::Check(When::Pre), "_pre.check.sql")
    } else if rest.ends_with("_post.check.sql") {
        (Kind::Check(When::Post), "_post.check.sql")
    } else if rest.ends_with(".up.sql") {
        (Kind::Up, ".up.sql")
    } else if rest.ends_with(".down.sql") {
        (Kind::Down, ".down.sql")
    } else {
        (Kind::Simple, ".sql")
    };
    // Exactly sqlx's derivation, so the history rows match what `sqlx migrate` writes.
    let description = rest.trim_end_matches(suffix).replace('_', " ");
    Ok((version, kind, description))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(files: &[(&str, &str)]) -> Result<MigrationSet, JobError> {
        let mut builder = MigrationSetBuilder::default();
        for (name, sql) in files {
            builder.add(name, sql.as_bytes().to_vec())?;
        }
        builder.finish()
    }

    #[test]
    fn names_and_checksums_migrations_as_sqlx_does() {
        let set = set(&[
            ("0001_create_users.sql", "CREATE TABLE users (id int);\n"),
            (
                "2_add_index.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON users (id);",
            ),
            ("2_add_index.down.sql", "DROP INDEX i;"),
        ])
        .unwrap();
        let first = &set.migrations[&1];
        assert_eq!(first.description, "create users");
        assert_eq!(
            hex::encode(&first.checksum),
            hex::encode(Sha384::digest(b"CREATE TABLE users (id int);\n"))
        );
        assert!(!first.no_transaction);
        let second = &set.migrations[&2];
        assert_eq!(second.description, "add index");
        assert!(second.no_transaction);
        assert_eq!(set.migrations.len(), 2);
    }

    #[test]
    fn check_files_attach_to_their_migration_and_leave_its_checksum_alone() {
        let plain = set(&[("3_x.sql", "SELECT 1;")]).unwrap();
        let checked = set(&[
            ("3_x.sql", "SELECT 1;"),
            ("3_x_post.check.sql", "SELECT true"),
            ("3_b_pre.check.sql", "SELECT true"),
            ("3_a_pre.check.sql", "SELECT true"),
        ])
        .unwrap();
        let migration = &checked.migrations[&3];
        assert_eq!(checked.migrations.len(), 1);
        assert_eq!(migration.checksum, plain.migrations[&3].checksum);
        let pre: Vec<&str> = migration
            .pre_checks
            .iter()
            .map(|c| c.file.as_str())
            .collect();
        assert_eq!(pre, ["3_a_pre.check.sql", "3_b_pre.check.sql"]);
        assert_eq!(migration.post_checks[0].file, "3_x_post.check.sql");
    }

    #[test]
    fn refuses_files_whose_names_do_not_match() {
        for name in [
            "README.md",
            "create_users.sql",
            "1-create.sql",
            "1_create.txt",
            "v1_x.sql",
        ] {
            let err = set(&[(name, "")]).unwrap_err();
            assert!(err.message.contains(name), "{}", err.message);
        }
    }

    #[test]
    fn refuses_two_files_for_one_version() {
        let err = set(&[("1_a.sql", ""), ("01_b.sql", "")]).unwrap_err();
        assert!(
            err.message.contains("version 1 is used by both"),
            "{}",
            err.message
        );
        let err = set(&[("1_a.sql", ""), ("1_a.up.sql", "")]).unwrap_err();
        assert!(err.message.contains("version 1"), "{}", err.message);
    }

    #[test]
    fn refuses_a_down_migration_without_its_up() {
        let err = set(&[("3_x.down.sql", "")]).unwrap_err();
        assert!(err.message.contains("no matching"), "{}", err.message);
    }
}
