//! migration-runner: the invoke action that applies, plans or verifies SQL schema migrations
//! shipped in an artifact, against Postgres, MySQL/MariaDB or SQLite.
//!
//! Files and history are those of `sqlx migrate` (`<version>_<description>.sql`,
//! `_sqlx_migrations` with SHA-384 checksums), so either tool can take over from the other.
//! `apply` holds sqlx's lock on one dedicated connection, refuses modified, failed, unknown and
//! out-of-order migrations, applies each migration with its history row in one transaction
//! where the engine allows, and hands over to the next invocation through a continuation
//! token when the Lambda's time runs short.
//!
//! Where things are: [`params`] and `target` (what to connect to, from `UserParameters` and
//! the secret), `source` (the migration files), `database` (one connection, TLS, timeouts),
//! `history` (the `_sqlx_migrations` table), `plan` (pending versus applied), `lint` (what
//! pending migrations would break), `statements` (MySQL statement splitting), `run` (apply),
//! `inspect` (plan and verify), `revert`, `snapshot` (the restore point); this file is the handler.

#![warn(missing_docs)]

mod checks;
mod database;
mod directives;
mod engine;
mod fingerprint;
mod history;
mod inspect;
mod lint;
pub mod params;
mod plan;
mod repair;
mod revert;
mod run;
mod run_state;
mod snapshot;
mod source;
mod statements;
mod table_lock;
mod target;
mod time_budget;

pub use params::{Mode, Params};
pub use run_state::RunState;

use database::{ConnectError, Database};
use pipeline_ext::job::{Job, JobError, JobOutcome};
use pipeline_ext::secrets::SecretCache;
use source::{MigrationSet, MigrationSetBuilder};
use std::time::Duration;
use target::ConnectTarget;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Largest migration file read from the artifact.
const MAX_MIGRATION_BYTES: usize = 16 * 1024 * 1024;

/// The clients of one container.
#[derive(Clone)]
pub struct Clients {
    /// The database secret, cached across warm invocations.
    pub secrets: SecretCache,
    /// For the restore point (`backup.snapshot`).
    pub rds: aws_sdk_rds::Client,
    /// Assumed roles, for a database in another account (`role_arn`).
    pub sessions: pipeline_ext::target_account::RoleSessions,
}

impl Clients {
    /// Builds the clients from the function's SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            secrets: SecretCache::new(aws_sdk_secretsmanager::Client::new(config)),
            rds: aws_sdk_rds::Client::new(config),
            sessions: pipeline_ext::target_account::RoleSessions::new(config),
        }
    }

    /// The clients acting as `job`'s `role_arn` in the database's account (these clients
    /// when it has none). The session lasts as long as the invocation can.
    async fn for_job(&self, job: &Job<Params, RunState>) -> Result<Self, JobError> {
        let Some(role) = job.params.target_role()? else {
            return Ok(self.clone());
        };
        let config = self
            .sessions
            .config_for(Some(&role), &job.id, job.remaining())
            .await?;
        Ok(Self {
            secrets: SecretCache::new(aws_sdk_secretsmanager::Client::new(&config)),
            rds: aws_sdk_rds::Client::new(&config),
            sessions: self.sessions.clone(),
        })
    }
}

/// Reads the migrations from the input artifact, connects, and runs the mode asked for.
pub async fn handle(
    job: Job<Params, RunState>,
    clients: Clients,
) -> Result<JobOutcome<RunState>, JobError> {
    job.params.validate()?;
    let clients = Box::pin(clients.for_job(&job)).await?;
    let set = read_migrations(&job).await?;
    let (target, db) = connect(&job, &clients).await?;
    run::run(&job, &set, &target, db, &clients).await
}

/// Connects with the secret's credentials. Rejected credentials are tried once more with the
/// secret read again, which is what a rotation looks like to a warm function.
async fn connect(
    job: &Job<Params, RunState>,
    clients: &Clients,
) -> Result<(ConnectTarget, Database), JobError> {
    let arn = &job.params.database_secret_arn;
    let secret = clients.secrets.get_string(arn).await?;
    let target = ConnectTarget::resolve(&secret, &job.params)?;
    match Database::connect(&target, CONNECT_TIMEOUT.min(job.remaining())).await {
        Ok(db) => Ok((target, db)),
        Err(ConnectError::Authentication(_)) => {
            tracing::info!("the database refused the credentials; reading the secret again");
            clients.secrets.invalidate(arn);
            let secret = clients.secrets.get_string(arn).await?;
            let target = ConnectTarget::resolve(&secret, &job.params)?;
            let db = Database::connect(&target, CONNECT_TIMEOUT.min(job.remaining())).await?;
            Ok((target, db))
        }
        Err(other) => Err(other.into()),
    }
}

async fn read_migrations(job: &Job<Params, RunState>) -> Result<MigrationSet, JobError> {
    let params = &job.params;
    let prefix = params.folder_prefix();
    let store = job.artifacts()?;
    let reader = store.open(job.input(&params.input)?).await?;
    let mut entries = reader.stream().await?;
    let mut builder = MigrationSetBuilder::default();
    while let Some(entry) = entries.next_entry().await? {
        if entry.is_dir {
            continue;
        }
        let Some(name) = entry.name.strip_prefix(&prefix) else {
            continue;
        };
        let bytes = entries.read_to_vec(MAX_MIGRATION_BYTES).await?;
        builder
            .add(name, bytes)
            .map_err(|e| e.context(format!("artifact `{}`, folder `{prefix}`", params.input)))?;
    }
    let set = builder
        .finish()
        .map_err(|e| e.context(format!("artifact `{}`, folder `{prefix}`", params.input)))?;
    if set.migrations.is_empty() {
        return Err(JobError::config(format!(
            "no migrations in folder `{prefix}` of artifact `{}`; check `path`",
            params.input
        )));
    }
    Ok(set)
}
