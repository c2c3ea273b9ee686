//! `lock: "table"`: the migration lock as a leased row in `_sqlx_migrations_lock`, for
//! databases reached through a pooler in transaction mode (PgBouncer, RDS Proxy), where a
//! session lock (`pg_advisory_lock`, `GET_LOCK`) is taken on whichever server session ran that
//! one statement and may never be seen again. Taking, checking and giving the row back are each
//! one statement, so each is one transaction wherever the pooler sends it.
//!
//! The row names its holder (the job id, and the time the run began) and a lease in the database's own clock: the
//! invocation's time left and a second more; `Database::unlock` deletes it. A runner that dies (killed, timed out) leaves a
//! row whose lease runs out with the invocation, and the next run takes it over; a run that
//! ends gives it back at once. The lease never outlives the invocation that holds it, so a
//! continuation takes the lock again like any run.

use crate::database::{describe_sql_error, Database, MigrationLock};
use pipeline_ext::job::JobError;
use std::time::{Duration, Instant};

/// The lock table, beside sqlx's history table.
pub const TABLE: &str = "_sqlx_migrations_lock";

/// How often a held row is tried again.
const POLL: Duration = Duration::from_millis(200);

/// Takes the row, trying again until `wait` has passed; `lease` is how long the row stays
/// ours if this run dies.
pub async fn acquire(
    db: &mut Database,
    holder: String,
    wait: Duration,
    lease: Duration,
) -> Result<MigrationLock, JobError> {
    create(db).await?;
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let started = Instant::now();
    loop {
        if take(db, &holder, lease_ms).await? {
            if started.elapsed() > POLL {
                tracing::info!(
                    waited_ms = started.elapsed().as_millis() as u64,
                    "migration lock row acquired after waiting"
                );
            }
            return Ok(MigrationLock::Table(holder));
        }
        if started.elapsed() + POLL > wait {
            return Err(JobError::failed(format!(
                "another migration run holds the lock row in {TABLE} on this database; gave up after {} s (`lock_timeout_seconds`). Nothing was changed",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The lock table, created once.
async fn create(db: &mut Database) -> Result<(), JobError> {
    let created = match db {
        Database::Postgres(conn) => sqlx::query(
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations_lock ( id INT PRIMARY KEY, holder TEXT NOT NULL, lease_until TIMESTAMPTZ NOT NULL )",
        )
        .execute(&mut *conn)
        .await
        .map(|_| ()),
        Database::MySql { conn, .. } => sqlx::query(
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations_lock ( id INT PRIMARY KEY, holder VARCHAR(64) NOT NULL, lease_until DATETIME(6) NOT NULL )",
        )
        .execute(&mut *conn)
        .await
        .map(|_| ()),
        Database::Sqlite(_) => Ok(()),
    };
    match created {
        Ok(()) => Ok(()),
        // Two runs creating it at once: PostgreSQL's `IF NOT EXISTS` is not atomic, and the
        // loser sees the winner's type or table. It exists; that is all this needed.
        Err(e)
            if matches!(
                e.as_database_error().and_then(|d| d.code()).as_deref(),
                Some("23505" | "42P07")
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(JobError::failed(format!(
            "could not create the lock table {TABLE}: {}",
            describe_sql_error(&e)
        ))),
    }
}

/// One attempt: the row is inserted, or taken over when its lease ran out; `true` when it is
/// now `holder`'s.
async fn take(db: &mut Database, holder: &str, lease_ms: i64) -> Result<bool, JobError> {
    let taken = match db {
        Database::Postgres(conn) => sqlx::query_scalar::<_, String>(
            "INSERT INTO _sqlx_migrations_lock (id, holder, lease_until) \
             VALUES (1, $1, clock_timestamp() + $2 * interval '1 millisecond') \
             ON CONFLICT (id) DO UPDATE SET holder = EXCLUDED.holder, lease_until = EXCLUDED.lease_until \
             WHERE _sqlx_migrations_lock.lease_until < clock_timestamp() \
             RETURNING holder",
        )
        .bind(holder)
        .bind(lease_ms)
        .fetch_optional(&mut *conn)
        .await
        .map(|row| row.as_deref() == Some(holder)),
        Database::MySql { conn, .. } => {
            // One statement: the holder changes only when the lease ran out, and the lease
            // follows the holder (assignments apply left to right).
            let inserted = sqlx::query(
                "INSERT INTO _sqlx_migrations_lock (id, holder, lease_until) \
                 VALUES (1, ?, NOW(6) + INTERVAL ? MICROSECOND) \
                 ON DUPLICATE KEY UPDATE \
                 holder = IF(lease_until < NOW(6), VALUES(holder), holder), \
                 lease_until = IF(holder = VALUES(holder), VALUES(lease_until), lease_until)",
            )
            .bind(holder)
            .bind(lease_ms.saturating_mul(1_000))
            .execute(&mut *conn)
            .await;
            match inserted {
                Ok(_) => sqlx::query_scalar::<_, String>(
                    "SELECT holder FROM _sqlx_migrations_lock WHERE id = 1",
                )
                .fetch_optional(&mut *conn)
                .await
                .map(|row| row.as_deref() == Some(holder)),
                Err(err) => Err(err),
            }
        }
        Database::Sqlite(_) => Ok(true),
    };
    taken.map_err(|e| {
        JobError::failed(format!(
            "could not take the lock row in {TABLE}: {}",
            describe_sql_error(&e)
        ))
    })
}
