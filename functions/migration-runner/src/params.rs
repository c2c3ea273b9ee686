//! migration-runner `UserParameters` (README, "migration-runner").

use crate::lint::{LintParams, LintPolicy};
use pipeline_ext::job::JobError;
use pipeline_ext::target_account::TargetRole;
use serde::Deserialize;
use std::time::Duration;

/// The `UserParameters` of migration-runner.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Secrets Manager secret in the RDS format (`engine`, `host`, `port`, `username`,
    /// `password`, `dbname`).
    pub database_secret_arn: String,
    /// The role in the database's account the secret is read and the snapshot taken as,
    /// when the database is in another account than the pipeline.
    #[serde(default)]
    pub role_arn: Option<String>,
    /// The external id that role's trust policy requires.
    #[serde(default)]
    pub external_id: Option<String>,
    /// The input artifact holding the migrations.
    pub input: String,
    /// Folder inside the artifact; the files are directly in it.
    #[serde(default = "default_path")]
    pub path: String,
    /// What to do (`apply` by default).
    #[serde(default)]
    pub mode: Mode,
    /// How long to wait for another run's lock before failing.
    #[serde(default = "default_lock_timeout")]
    pub lock_timeout_seconds: u64,
    /// How runs keep each other out (README, "Safety").
    #[serde(default)]
    pub lock: LockMode,
    /// How long each statement may wait for a table lock (PostgreSQL `lock_timeout`, MySQL and
    /// MariaDB `lock_wait_timeout`): short, so a migration never queues behind a long
    /// transaction (and every query behind it) for minutes. A file's `-- migrate:lock_timeout`
    /// wins.
    #[serde(default = "default_table_lock_timeout")]
    pub table_lock_timeout_ms: u64,
    /// Attempts after a migration that timed out waiting for a table lock (and changed nothing).
    #[serde(default = "default_lock_retries")]
    pub lock_retries: u32,
    /// The first wait before such an attempt; doubled each time, with jitter.
    #[serde(default = "default_lock_retry_backoff")]
    pub lock_retry_backoff_ms: u64,
    /// Longest one statement may run. A file's `-- migrate:statement_timeout` wins.
    #[serde(default = "default_statement_timeout")]
    pub statement_timeout_seconds: u64,
    /// Apply versions lower than the highest applied one.
    #[serde(default)]
    pub allow_out_of_order: bool,
    /// Apply (and expect, for `verify`) migrations up to and including this version only.
    #[serde(default)]
    pub target_version: Option<i64>,
    /// For RDS-managed secrets, which hold only `username` and `password`.
    #[serde(default)]
    pub engine: Option<String>,
    /// The host, when the secret does not carry it.
    #[serde(default)]
    pub host: Option<String>,
    /// The port, when the secret does not carry it.
    #[serde(default)]
    pub port: Option<u16>,
    /// The database, when the secret does not carry it.
    #[serde(default)]
    pub dbname: Option<String>,
    /// PEM file of the CA that signs the server's certificate (for RDS: the RDS bundle shipped
    /// with the function); when set, the server's certificate and host name are verified.
    #[serde(default)]
    pub tls_ca_file: Option<String>,
    /// With `apply`, the same as `plan`; with `revert`, show what would be reverted.
    #[serde(default)]
    pub dry_run: bool,
    /// Which lint findings deny and which warn (README, "Lint").
    #[serde(default)]
    pub lint: LintParams,
    /// With `repair`: versions whose new checksum is accepted although more than comments or
    /// whitespace changed (numbers or strings of digits).
    #[serde(default, deserialize_with = "versions")]
    pub accept_checksums: Vec<i64>,
    /// A restore point before applying (README, "Snapshot").
    #[serde(default)]
    pub backup: BackupParams,
}

/// How two runs on one database keep each other out.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// sqlx's session lock (`pg_advisory_lock`, `GET_LOCK`), checked to be held by the
    /// session that runs the migrations.
    #[default]
    Advisory,
    /// A leased row in `_sqlx_migrations_lock`: for connections through a pooler in
    /// transaction mode.
    Table,
}

/// What a run does.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Apply what is pending, locked and resumable.
    #[default]
    Apply,
    /// Dry run: list what `apply` would do, change nothing.
    Plan,
    /// Fail unless the database matches the artifact exactly.
    Verify,
    /// Run `.down.sql` files from the highest applied version down to `target_version`.
    Revert,
    /// Re-record the checksums of applied migrations whose files changed only in comments or
    /// whitespace, or that `accept_checksums` names; with an audit row each.
    Repair,
}

impl Mode {
    /// The mode as `UserParameters` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Apply => "apply",
            Mode::Plan => "plan",
            Mode::Verify => "verify",
            Mode::Revert => "revert",
            Mode::Repair => "repair",
        }
    }
}

/// Versions as numbers or as strings of digits (`[20240101, "20240102"]`).
fn versions<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Number(i64),
        Text(String),
    }
    Vec::<Version>::deserialize(deserializer)?
        .into_iter()
        .map(|v| match v {
            Version::Number(n) => Ok(n),
            Version::Text(text) => text.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("`{text}` is not a migration version"))
            }),
        })
        .collect()
}

fn default_path() -> String {
    "migrations".into()
}
fn default_lock_timeout() -> u64 {
    60
}
fn default_table_lock_timeout() -> u64 {
    5_000
}
fn default_lock_retries() -> u32 {
    3
}
fn default_lock_retry_backoff() -> u64 {
    2_000
}
fn default_statement_timeout() -> u64 {
    600
}

impl Params {
    /// The role the secret and the snapshot are reached as, when not the function's own.
    pub fn target_role(&self) -> Result<Option<TargetRole>, JobError> {
        TargetRole::from_params("", self.role_arn.as_deref(), self.external_id.as_deref())
    }

    /// Checks what serde cannot: combinations and ranges.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.database_secret_arn.trim().is_empty() {
            return Err(JobError::config("`database_secret_arn` is empty"));
        }
        self.target_role()?;
        if self.lock_timeout_seconds > 900 {
            return Err(JobError::config(format!(
                "`lock_timeout_seconds` is {}; expected at most 900 (one Lambda run)",
                self.lock_timeout_seconds
            )));
        }
        if !(1..=900_000).contains(&self.table_lock_timeout_ms) {
            return Err(JobError::config(format!(
                "`table_lock_timeout_ms` is {}; expected 1 to 900000 (15 minutes)",
                self.table_lock_timeout_ms
            )));
        }
        if self.lock_retries > 20 {
            return Err(JobError::config(format!(
                "`lock_retries` is {}; expected at most 20",
                self.lock_retries
            )));
        }
        if !(1..=60_000).contains(&self.lock_retry_backoff_ms) {
            return Err(JobError::config(format!(
                "`lock_retry_backoff_ms` is {}; expected 1 to 60000",
                self.lock_retry_backoff_ms
            )));
        }
        if !(1..=86_400).contains(&self.statement_timeout_seconds) {
            return Err(JobError::config(format!(
                "`statement_timeout_seconds` is {}; expected 1 to 86400",
                self.statement_timeout_seconds
            )));
        }
        if self.path.contains("..") || self.path.contains('\\') {
            return Err(JobError::config(format!(
                "`path` `{}` must be a plain folder inside the artifact",
                self.path
            )));
        }
        if self.mode == Mode::Revert && self.target_version.is_none() {
            return Err(JobError::config(
                "`mode` `revert` needs `target_version`: the version to revert down to (it stays applied; 0 reverts everything)",
            ));
        }
        if !self.accept_checksums.is_empty() && self.mode != Mode::Repair {
            return Err(JobError::config(
                "`accept_checksums` is for `mode: repair`; other modes never change a checksum",
            ));
        }
        if self.backup.snapshot && self.mode == Mode::Revert {
            return Err(JobError::config(
                "`backup.snapshot` is taken before `apply`; for `revert`, run an apply-less snapshot first or drop `backup`",
            ));
        }
        self.lint_policy()?;
        Ok(())
    }

    /// The lint policy these parameters ask for.
    pub fn lint_policy(&self) -> Result<LintPolicy, JobError> {
        LintPolicy::new(&self.lint)
    }

    /// How long to wait for a lock.
    pub fn lock_timeout(&self) -> Duration {
        Duration::from_secs(self.lock_timeout_seconds)
    }

    /// How long a statement may wait for a table lock.
    pub fn table_lock_timeout(&self) -> Duration {
        Duration::from_millis(self.table_lock_timeout_ms)
    }

    /// The wait before retry `attempt` (1, 2…) of a migration that met a held lock.
    pub fn lock_retry_backoff(&self, attempt: u32) -> Duration {
        Duration::from_millis(self.lock_retry_backoff_ms)
            .saturating_mul(1 << attempt.saturating_sub(1).min(10))
    }

    /// How long one statement may run.
    pub fn statement_timeout(&self) -> Duration {
        Duration::from_secs(self.statement_timeout_seconds)
    }

    /// The folder as a zip entry prefix: `db/migrations/`, or empty for the artifact's root.
    pub fn folder_prefix(&self) -> String {
        let trimmed = self.path.trim_matches('/');
        if trimmed.is_empty() || trimmed == "." {
            String::new()
        } else {
            format!("{trimmed}/")
        }
    }
}

/// `backup` in `UserParameters`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupParams {
    /// Take an RDS snapshot before applying anything.
    #[serde(default)]
    pub snapshot: bool,
    /// Apply only once the snapshot is `available` (the default). Without it, the migrations
    /// start as soon as RDS has accepted the snapshot.
    #[serde(default = "wait_by_default")]
    pub wait: bool,
    /// The DB instance, when the secret does not carry `dbInstanceIdentifier`.
    #[serde(default)]
    pub db_instance_identifier: Option<String>,
    /// The Aurora cluster, when the secret does not carry `dbClusterIdentifier`.
    #[serde(default)]
    pub db_cluster_identifier: Option<String>,
}

fn wait_by_default() -> bool {
    true
}
