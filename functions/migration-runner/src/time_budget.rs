//! The time a run has: statements bounded by the time left, the migration lock taken within
//! it, and the margin below which a run hands over to the next invocation.

use crate::database::{Database, MigrationLock};
use crate::params::{LockMode, Params};
use crate::run_state::RunState;
use crate::source::Migration;
use pipeline_ext::job::{Job, JobError};
use std::time::Duration;

/// Time kept back before each migration; below it the run hands over to the next invocation.
/// A quarter of the run's time, at most this; `MIGRATION_TIME_MARGIN_SECONDS` overrides it.
const MAX_TIME_MARGIN: Duration = Duration::from_secs(60);

/// Bounds the session's statements by the time left, then takes the migration lock.
pub async fn lock_session(
    job: &Job<Params, RunState>,
    db: &mut Database,
) -> Result<MigrationLock, JobError> {
    limit_to_time_left(job, db).await?;
    let lock_wait = job.params.lock_timeout().min(job.remaining());
    match job.params.lock {
        LockMode::Table if !matches!(db, Database::Sqlite(_)) => {
            // The row stays ours no longer than this invocation can run.
            let lease = job.remaining() + Duration::from_secs(1);
            let began = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            let holder: String = format!("{}@{began}", job.id).chars().take(64).collect();
            crate::table_lock::acquire(db, holder, lock_wait, lease).await
        }
        _ => db.lock(lock_wait).await,
    }
}

/// A statement must end (and fail cleanly) before the Lambda does: set again before each
/// migration, as the time left shrinks.
pub async fn limit_to_time_left(
    job: &Job<Params, RunState>,
    db: &mut Database,
) -> Result<(), JobError> {
    limit_session(job, db, None, None).await
}

/// The timeouts last set on the session by [`SessionLimits::apply`], so a run sets them again
/// only when they change (when the time left bounds them, once it has shrunk by a second), and
/// after a migration
/// that may have changed them itself. Two statements fewer per migration is most of what a
/// small migration costs.
#[derive(Debug, Default)]
pub struct SessionLimits {
    /// The statement and lock timeouts in force, when this run set them.
    set: Option<(Duration, Duration)>,
}

impl SessionLimits {
    /// Sets the timeouts for `migration` (its header's winning over the parameters'), unless
    /// they are already in force.
    pub async fn apply(
        &mut self,
        job: &Job<Params, RunState>,
        db: &mut Database,
        migration: &Migration,
    ) -> Result<(), JobError> {
        let wanted = limits(job, migration.statement_timeout, migration.lock_timeout);
        // In force already, or longer by less than a second as the time left shrinks (the
        // runner's own margin before the Lambda's deadline covers that second).
        if let Some((statement, lock)) = self.set {
            let longer = statement.saturating_sub(wanted.0);
            if lock == wanted.1 && statement >= wanted.0 && longer < Duration::from_secs(1) {
                return Ok(());
            }
        }
        self.set = None;
        db.limit_session(wanted.0, wanted.1).await?;
        self.set = Some(wanted);
        Ok(())
    }

    /// After `migration` ran: when its text names a session timeout, or resets settings, the
    /// ones in force are no longer known.
    pub fn after(&mut self, migration: &Migration) {
        let sql = migration.sql.to_ascii_lowercase();
        let touches = [
            "statement_timeout",
            "lock_timeout",
            "max_statement_time",
            "max_execution_time",
            "lock_wait_timeout",
            "reset",
            "discard",
            "set_config",
        ];
        if touches.iter().any(|word| sql.contains(word)) {
            self.set = None;
        }
    }
}

/// Sets the session's statement and table-lock timeouts, both within the time left.
async fn limit_session(
    job: &Job<Params, RunState>,
    db: &mut Database,
    statement: Option<Duration>,
    lock: Option<Duration>,
) -> Result<(), JobError> {
    let (statement_timeout, lock_timeout) = limits(job, statement, lock);
    db.limit_session(statement_timeout, lock_timeout).await
}

/// The statement and table-lock timeouts for a statement starting now: the setting (a
/// migration's header winning), never more than the time left less two seconds.
fn limits(
    job: &Job<Params, RunState>,
    statement: Option<Duration>,
    lock: Option<Duration>,
) -> (Duration, Duration) {
    let params = &job.params;
    let statement_timeout = statement
        .unwrap_or_else(|| params.statement_timeout())
        .min(job.remaining().saturating_sub(Duration::from_secs(2)))
        .max(Duration::from_secs(1));
    let lock_timeout = lock
        .unwrap_or_else(|| params.table_lock_timeout())
        .min(statement_timeout);
    (statement_timeout, lock_timeout)
}

/// The time a migration may need before it starts: the margin, or the longest recent
/// migration with a quarter to spare.
pub(crate) fn time_needed(margin: Duration, longest: Duration) -> Duration {
    margin.max(longest.mul_f64(1.25) + Duration::from_secs(1))
}

pub(crate) fn time_margin(remaining_at_start: Duration) -> Duration {
    std::env::var("MIGRATION_TIME_MARGIN_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| MAX_TIME_MARGIN.min(remaining_at_start / 4))
}

/// Half to all of `wait`, so runners that met the same lock do not try again in step.
pub(crate) fn jittered(wait: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    wait.mul_f64(0.5 + f64::from(nanos % 1_000) / 2_000.0)
}
