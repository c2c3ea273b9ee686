//! The `_sqlx_migrations` history table, kept exactly as `sqlx migrate` keeps it, and applying
//! one migration together with its history row.

use crate::checks;
use crate::database::{describe_sql_error, is_lock_timeout, with_conn, Database};
use crate::engine::Engine;
use crate::source::Check;
use crate::source::DownMigration;
use crate::source::Migration;
use crate::statements::{self, Dialect, Split};
use pipeline_ext::job::JobError;
use sqlx::{AssertSqlSafe, Connection};
use std::time::{Duration, Instant};

pub const TABLE: &str = "_sqlx_migrations";

/// One row of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub description: String,
    pub success: bool,
    pub checksum: Vec<u8>,
    /// How long it took to apply (sqlx records nanoseconds; -1 while running).
    pub execution_time: Duration,
}

/// sqlx's DDL for each engine, so either tool can take over the table.
fn create_table_sql(db: &Database) -> &'static str {
    match db {
        Database::Postgres(_) => {
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)"
        }
        Database::MySql { .. } | Database::Sqlite(_) => {
            "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)"
        }
    }
}

/// The history table, and beside it this runner's `_sqlx_migrations_fingerprints` (what each
/// applied migration does, for `repair`) and `_sqlx_migrations_repairs` (the audit of repairs);
/// sqlx never reads either.
pub async fn ensure_table(db: &mut Database) -> Result<(), JobError> {
    let binary = match db {
        Database::Postgres(_) => "BYTEA",
        _ => "BLOB",
    };
    let stamp = match db {
        Database::Postgres(_) => "TIMESTAMPTZ NOT NULL DEFAULT now()",
        _ => "TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP",
    };
    let statements = [
        create_table_sql(db).to_string(),
        format!("CREATE TABLE IF NOT EXISTS {FINGERPRINTS} ( version BIGINT PRIMARY KEY, fingerprint {binary} NOT NULL )"),
        format!("CREATE TABLE IF NOT EXISTS {REPAIRS} ( version BIGINT NOT NULL, old_checksum {binary} NOT NULL, new_checksum {binary} NOT NULL, job_id VARCHAR(64) NOT NULL, reason VARCHAR(200) NOT NULL, repaired_at {stamp} )"),
    ];
    for sql in statements {
        db.execute(&sql).await.map_err(|e| {
            JobError::failed(format!(
                "could not create {TABLE} and its neighbours: {}",
                describe_sql_error(&e)
            ))
        })?;
    }
    Ok(())
}

/// What each applied migration does, apart from how it is written (`fingerprint`).
pub const FINGERPRINTS: &str = "_sqlx_migrations_fingerprints";
/// One row per checksum `repair` re-recorded: who, when, why.
pub const REPAIRS: &str = "_sqlx_migrations_repairs";

/// Records what `migration` does (its fingerprint), for a later `repair`; when it cannot be
/// read to its end, forgets any fingerprint recorded for its version.
pub async fn record_fingerprint(
    db: &mut Database,
    migration: &Migration,
) -> Result<(), sqlx::Error> {
    let Some(fingerprint) = crate::fingerprint::of(&migration.sql, db.engine()) else {
        let forget = match db {
            Database::Postgres(_) => "DELETE FROM _sqlx_migrations_fingerprints WHERE version = $1",
            _ => "DELETE FROM _sqlx_migrations_fingerprints WHERE version = ?",
        };
        return execute_for_version(db, forget, migration.version).await;
    };
    let sql = match db {
        Database::Postgres(_) => "INSERT INTO _sqlx_migrations_fingerprints (version, fingerprint) VALUES ($1, $2) ON CONFLICT (version) DO UPDATE SET fingerprint = EXCLUDED.fingerprint",
        Database::MySql { .. } => "REPLACE INTO _sqlx_migrations_fingerprints (version, fingerprint) VALUES (?, ?)",
        Database::Sqlite(_) => "INSERT OR REPLACE INTO _sqlx_migrations_fingerprints (version, fingerprint) VALUES (?1, ?2)",
    };
    with_conn!(db, conn => sqlx::query(sql).bind(migration.version).bind(&fingerprint).execute(conn).await.map(|_| ()))
}

/// The history, or an empty one when the table does not exist yet (`plan` and `verify` never
/// create it).
pub async fn read(db: &mut Database) -> Result<Vec<AppliedMigration>, JobError> {
    let read_error = |e: sqlx::Error| {
        JobError::failed(format!(
            "could not read {TABLE}: {}",
            describe_sql_error(&e)
        ))
    };
    let exists: i64 = match db {
        Database::Postgres(conn) => sqlx::query_scalar(
            "SELECT count(*) FROM pg_catalog.pg_class c WHERE c.oid = to_regclass('_sqlx_migrations')",
        )
        .fetch_one(conn)
        .await
        .map_err(read_error)?,
        Database::MySql { conn, .. } => sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '_sqlx_migrations'",
        )
        .fetch_one(conn)
        .await
        .map_err(read_error)?,
        #[cfg(feature = "sqlite")]
        Database::Sqlite(conn) => sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(conn)
        .await
        .map_err(read_error)?,
        #[cfg(not(feature = "sqlite"))]
        Database::Sqlite(never) => never.absurd(),
    };
    if exists == 0 {
        return Ok(Vec::new());
    }
    const SELECT: &str =
        "SELECT version, description, success, checksum, execution_time FROM _sqlx_migrations ORDER BY version";
    let rows: Vec<(i64, String, bool, Vec<u8>, i64)> =
        with_conn!(db, conn => sqlx::query_as(SELECT).fetch_all(conn).await).map_err(read_error)?;
    Ok(rows
        .into_iter()
        .map(
            |(version, description, success, checksum, nanos)| AppliedMigration {
                version,
                description,
                success,
                checksum,
                execution_time: Duration::from_nanos(u64::try_from(nanos).unwrap_or(0)),
            },
        )
        .collect())
}

/// Why a migration was not applied.
#[derive(Debug)]
pub enum ApplyError {
    /// A statement waited longer than the table-lock timeout; nothing of the migration was
    /// applied (it was rolled back, or failed at its first statement), so it can run again.
    LockTimeout(JobError),
    /// Anything else; the message says whether the database is dirty.
    Failed(JobError),
}

impl From<ApplyError> for JobError {
    fn from(err: ApplyError) -> Self {
        match err {
            ApplyError::LockTimeout(err) | ApplyError::Failed(err) => err,
        }
    }
}

/// How one attempt at a migration failed, before it is explained.
enum Attempt {
    /// Waited too long for a lock; nothing applied.
    LockWait(String),
    /// Explained already.
    Failed(JobError),
}

impl From<JobError> for Attempt {
    fn from(err: JobError) -> Self {
        Attempt::Failed(err)
    }
}

/// Applies one migration and records it. Where the engine has transactional DDL the
/// migration and its row commit together; otherwise (MySQL/MariaDB, `-- no-transaction`) a
/// row with `success = false` is written first, so a failure part-way stays visible. A
/// statement that waits too long for a table lock fails the migration with who holds the
/// lock; when nothing was applied, [`ApplyError::LockTimeout`] says it may run again.
pub async fn apply(db: &mut Database, migration: &Migration) -> Result<Duration, ApplyError> {
    let started = Instant::now();
    match apply_once(db, migration, started).await {
        Ok(()) => Ok(started.elapsed()),
        Err(Attempt::LockWait(problem)) => {
            let holders = db.lock_holders().await;
            Err(ApplyError::LockTimeout(rolled_back(
                migration,
                &format!("{problem}{holders}"),
            )))
        }
        Err(Attempt::Failed(err)) => Err(ApplyError::Failed(err)),
    }
}

/// One attempt, by engine.
async fn apply_once(
    db: &mut Database,
    migration: &Migration,
    started: Instant,
) -> Result<(), Attempt> {
    let failure = |e: &sqlx::Error, text: String| {
        if is_lock_timeout(e) {
            Attempt::LockWait(text)
        } else {
            Attempt::Failed(rolled_back(migration, &text))
        }
    };
    match db {
        Database::Postgres(conn) if !migration.no_transaction => {
            let mut tx = conn.begin().await.map_err(begin_error)?;
            sqlx::raw_sql(AssertSqlSafe(migration.sql.clone()))
                .execute(&mut *tx)
                .await
                .map_err(|e| failure(&e, postgres_failure(migration, &e)))?;
            for check in &migration.post_checks {
                checks::run_postgres(&mut tx, check).await.map_err(|why| {
                    Attempt::Failed(rolled_back(migration, &post_check(check, &why)))
                })?;
            }
            // The history row and the fingerprint in one round trip.
            let fingerprint = crate::fingerprint::of(&migration.sql, Engine::Postgres);
            sqlx::query("WITH recorded AS ( INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time ) VALUES ( $1, $2, TRUE, $3, $4 ) RETURNING version ) INSERT INTO _sqlx_migrations_fingerprints (version, fingerprint) SELECT version, $5 FROM recorded WHERE $5::bytea IS NOT NULL ON CONFLICT (version) DO UPDATE SET fingerprint = EXCLUDED.fingerprint")
                .bind(migration.version)
                .bind(&migration.description)
                .bind(&migration.checksum)
                .bind(nanos(started.elapsed()))
                .bind(fingerprint)
                .execute(&mut *tx)
                .await
                .map_err(|e| failure(&e, describe_sql_error(&e)))?;
            tx.commit()
                .await
                .map_err(|e| failure(&e, describe_sql_error(&e)))?;
        }
        #[cfg(feature = "sqlite")]
        Database::Sqlite(conn) if !migration.no_transaction => {
            // IMMEDIATE takes the write lock now, so the re-check below cannot race another run.
            let mut tx = conn
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(begin_error)?;
            let present: i64 =
                sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE version = ?1")
                    .bind(migration.version)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| rolled_back(migration, &describe_sql_error(&e)))?;
            if present > 0 {
                return Err(Attempt::Failed(JobError::failed(format!(
                    "migration {} was applied by another run at the same time; run again to see the current state",
                    migration.label()
                ))));
            }
            sqlx::raw_sql(AssertSqlSafe(migration.sql.clone()))
                .execute(&mut *tx)
                .await
                .map_err(|e| rolled_back(migration, &describe_sql_error(&e)))?;
            for check in &migration.post_checks {
                checks::run_sqlite(&mut tx, check)
                    .await
                    .map_err(|why| rolled_back(migration, &post_check(check, &why)))?;
            }
            sqlx::query("INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time ) VALUES ( ?1, ?2, TRUE, ?3, ?4 )")
                .bind(migration.version)
                .bind(&migration.description)
                .bind(&migration.checksum)
                .bind(nanos(started.elapsed()))
                .execute(&mut *tx)
                .await
                .map_err(|e| rolled_back(migration, &describe_sql_error(&e)))?;
            if let Some(fingerprint) = crate::fingerprint::of(&migration.sql, Engine::Sqlite) {
                sqlx::query("INSERT OR REPLACE INTO _sqlx_migrations_fingerprints (version, fingerprint) VALUES (?1, ?2)")
                    .bind(migration.version)
                    .bind(fingerprint)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| rolled_back(migration, &describe_sql_error(&e)))?;
            }
            tx.commit()
                .await
                .map_err(|e| rolled_back(migration, &describe_sql_error(&e)))?;
        }
        _ => apply_recorded_first(db, migration, started).await?,
    }
    Ok(())
}

/// MySQL/MariaDB commit DDL implicitly, and `-- no-transaction` migrations run outside a
/// transaction: the row goes in first as failed and is marked successful at the end.
async fn apply_recorded_first(
    db: &mut Database,
    migration: &Migration,
    started: Instant,
) -> Result<(), Attempt> {
    let placeholder = |n: usize| match db {
        Database::Postgres(_) => format!("${n}"),
        _ => "?".to_string(),
    };
    let insert = format!(
        "INSERT INTO _sqlx_migrations ( version, description, success, checksum, execution_time ) VALUES ( {}, {}, FALSE, {}, -1 )",
        placeholder(1),
        placeholder(2),
        placeholder(3)
    );
    let mark_done = format!(
        "UPDATE _sqlx_migrations SET success = TRUE, execution_time = {} WHERE version = {}",
        placeholder(1),
        placeholder(2)
    );
    let forget_failed = format!(
        "DELETE FROM _sqlx_migrations WHERE version = {} AND success = FALSE",
        placeholder(1)
    );
    let in_transaction = matches!(db, Database::MySql { .. }) && !migration.no_transaction;
    if in_transaction {
        db.execute("BEGIN").await.map_err(begin_error)?;
    }
    let inserted = with_conn!(&mut *db, conn => sqlx::query(AssertSqlSafe(insert.clone()))
        .bind(migration.version)
        .bind(&migration.description)
        .bind(&migration.checksum)
        .execute(conn)
        .await
        .map(|_| ()));
    if let Err(err) = inserted {
        if in_transaction {
            let _ = db.execute("ROLLBACK").await;
        }
        return Err(Attempt::Failed(rolled_back(
            migration,
            &describe_sql_error(&err),
        )));
    }

    let mut outcome = execute_statements(db, migration).await;
    if outcome.is_ok() {
        for check in &migration.post_checks {
            if let Err(why) = checks::run(db, check).await {
                outcome = Err(SqlFailure {
                    text: post_check(check, &why),
                    lock_timeout: false,
                    first: false,
                });
                break;
            }
        }
    }
    if let Err(failure) = outcome {
        if in_transaction {
            let _ = db.execute("ROLLBACK").await;
        }
        // A statement that gave up waiting for a lock changed nothing; when it was the first,
        // nothing of the migration ran, and the row an implicit commit kept can go.
        if failure.lock_timeout && failure.first {
            let forgotten = with_conn!(&mut *db, conn => sqlx::query(AssertSqlSafe(forget_failed.clone()))
                .bind(migration.version)
                .execute(conn)
                .await
                .map(|_| ()));
            if forgotten.is_ok() {
                return Err(Attempt::LockWait(failure.text));
            }
        }
        let holders = if failure.lock_timeout {
            db.lock_holders().await
        } else {
            String::new()
        };
        return Err(Attempt::Failed(
            after_failure(db, migration, &format!("{}{holders}", failure.text)).await,
        ));
    }
    let done = with_conn!(&mut *db, conn => sqlx::query(AssertSqlSafe(mark_done.clone()))
        .bind(nanos(started.elapsed()))
        .bind(migration.version)
        .execute(conn)
        .await
        .map(|_| ()));
    let done = match done {
        Ok(()) => record_fingerprint(db, migration).await,
        failed => failed,
    };
    let committed = match done {
        Ok(()) if in_transaction => db.execute("COMMIT").await,
        other => other,
    };
    committed.map_err(|e| {
        Attempt::Failed(JobError::failed(format!(
            "migration {} ran, but recording it failed: {}. It is recorded as failed; check the schema, then mark it done with `UPDATE {TABLE} SET success = TRUE WHERE version = {}`",
            migration.label(),
            describe_sql_error(&e),
            migration.version
        )))
    })
}

/// Runs a migration statement by statement where it can be split, so a failure names the
/// statement.
async fn execute_statements(db: &mut Database, migration: &Migration) -> Result<(), SqlFailure> {
    run_sql(db, &migration.sql, |e| postgres_failure(migration, e)).await
}

/// A statement of a migration or a revert failed.
struct SqlFailure {
    /// Which statement, and the server's words.
    text: String,
    /// It gave up waiting for a table lock.
    lock_timeout: bool,
    /// It was the first statement (or the text ran whole and was one statement).
    first: bool,
}

/// Runs SQL text statement by statement on MySQL/MariaDB (as the `mysql` client splits it),
/// whole elsewhere; `describe` words a whole-text failure.
async fn run_sql(
    db: &mut Database,
    sql: &str,
    describe: impl Fn(&sqlx::Error) -> String,
) -> Result<(), SqlFailure> {
    let split =
        match db {
            Database::MySql { .. } => Some(statements::split(sql, Dialect::MySql).map_err(
                |e| SqlFailure {
                    text: format!("line {}: {}", e.line, e.message),
                    lock_timeout: false,
                    first: false,
                },
            )?),
            _ => None,
        };
    match split {
        Some(Split::Statements(list)) => {
            let total = list.len();
            for (index, statement) in list.iter().enumerate() {
                db.execute(&statement.sql).await.map_err(|e| SqlFailure {
                    text: format!(
                        "statement {} of {total} (line {}: `{}`) failed: {}",
                        index + 1,
                        statement.line,
                        statement.excerpt(),
                        describe_sql_error(&e)
                    ),
                    lock_timeout: is_lock_timeout(&e),
                    first: index == 0,
                })?;
            }
            Ok(())
        }
        Some(Split::Whole) | None => db.execute(sql).await.map_err(|e| SqlFailure {
            text: describe(&e),
            lock_timeout: is_lock_timeout(&e),
            first: false,
        }),
    }
}

/// Reverts one migration with its `.down.sql` and removes its history row. Where the engine
/// has transactional DDL both commit together; on MySQL/MariaDB (and for a `-- no-transaction`
/// down file) the row is first marked failed, so a failure part-way leaves the database
/// visibly dirty, as `apply` does.
pub async fn revert(
    db: &mut Database,
    migration: &Migration,
    down: &DownMigration,
) -> Result<Duration, JobError> {
    let started = Instant::now();
    let delete = match db {
        Database::Postgres(_) => "DELETE FROM _sqlx_migrations WHERE version = $1",
        _ => "DELETE FROM _sqlx_migrations WHERE version = ?",
    };
    let failed = |problem: String| {
        JobError::failed(format!(
            "reverting migration {} with `{}` failed and was rolled back; nothing of it was reverted: {problem}",
            migration.label(),
            down.file
        ))
    };
    let transactional = !down.no_transaction && !matches!(db, Database::MySql { .. });
    if transactional {
        // IMMEDIATE: on SQLite, take the write lock before reading anything.
        let begin = match db {
            Database::Sqlite(_) => "BEGIN IMMEDIATE",
            _ => "BEGIN",
        };
        db.execute(begin).await.map_err(begin_error)?;
        let outcome = match run_sql(db, &down.sql, describe_sql_error).await {
            Ok(()) => execute_for_version(db, delete, migration.version)
                .await
                .map_err(|e| describe_sql_error(&e)),
            Err(failure) => Err(failure.text),
        };
        return match outcome {
            Ok(()) => {
                db.execute("COMMIT")
                    .await
                    .map_err(|e| failed(describe_sql_error(&e)))?;
                Ok(started.elapsed())
            }
            Err(problem) => {
                let _ = db.execute("ROLLBACK").await;
                Err(failed(problem))
            }
        };
    }
    let mark_failed = match db {
        Database::Postgres(_) => "UPDATE _sqlx_migrations SET success = FALSE WHERE version = $1",
        _ => "UPDATE _sqlx_migrations SET success = FALSE WHERE version = ?",
    };
    execute_for_version(db, mark_failed, migration.version)
        .await
        .map_err(|e| failed(describe_sql_error(&e)))?;
    if let Err(SqlFailure { text: problem, .. }) = run_sql(db, &down.sql, describe_sql_error).await
    {
        return Err(JobError::failed(format!(
            "reverting migration {} with `{}` failed part-way: {problem}. Statements before the failing one may have been applied and cannot be rolled back on this engine; the migration is marked failed in {TABLE}. To repair: inspect the schema, finish or undo the revert by hand, then either `DELETE FROM {TABLE} WHERE version = {}` (reverted) or `UPDATE {TABLE} SET success = TRUE WHERE version = {}` (still applied)",
            migration.label(),
            down.file,
            migration.version,
            migration.version
        )));
    }
    execute_for_version(db, delete, migration.version)
        .await
        .map_err(|e| {
        JobError::failed(format!(
            "migration {} was reverted, but removing its history row failed: {}. It is marked failed; run `DELETE FROM {TABLE} WHERE version = {}`",
            migration.label(),
            describe_sql_error(&e),
            migration.version
        ))
    })?;
    Ok(started.elapsed())
}

/// Runs a history statement whose one parameter is a migration version.
async fn execute_for_version(
    db: &mut Database,
    sql: &'static str,
    version: i64,
) -> Result<(), sqlx::Error> {
    with_conn!(db, conn => sqlx::query(sql).bind(version).execute(conn).await.map(|_| ()))
}

/// After a failure outside a transaction: if the failed row survived (a statement committed
/// implicitly), the database is now dirty, and the message says how to repair it.
async fn after_failure(db: &mut Database, migration: &Migration, problem: &str) -> JobError {
    let remaining = match read(db).await {
        Ok(rows) => rows.into_iter().find(|r| r.version == migration.version),
        Err(_) => None,
    };
    match remaining {
        Some(row) if !row.success => {
            let why = if migration.no_transaction {
                "it ran outside a transaction (`no-transaction`)"
            } else {
                "this engine commits DDL as it goes"
            };
            let leftovers = match db.invalid_indexes().await {
                list if list.is_empty() => String::new(),
                list => format!(
                    " PostgreSQL left {} behind, which queries ignore but writes still maintain: drop {} with `{}` before running again.",
                    list.iter().map(|(index, table)| format!("the INVALID index {index} (on {table})")).collect::<Vec<_>>().join(", "),
                    if list.len() == 1 { "it" } else { "them" },
                    list.iter().map(|(index, _)| format!("DROP INDEX CONCURRENTLY {index};")).collect::<Vec<_>>().join(" ")
                ),
            };
            JobError::failed(format!(
                "migration {} failed part-way: {problem}. Statements before the failing one may have been applied and cannot be rolled back: {why}; it is recorded as failed in {TABLE}.{leftovers} {}",
                migration.label(),
                repair_hint(migration.version)
            ))
        }
        _ => rolled_back(migration, problem),
    }
}

/// What to do about a migration recorded as failed.
pub fn repair_hint(version: i64) -> String {
    format!(
        "To repair: inspect the schema, undo or finish what migration {version} changed by hand, then `DELETE FROM {TABLE} WHERE version = {version};` and run the pipeline again"
    )
}

/// A post-check that did not hold, for the failure.
fn post_check(check: &Check, why: &str) -> String {
    format!("post-check `{}` did not hold: {why}", check.file)
}

fn rolled_back(migration: &Migration, problem: &str) -> JobError {
    JobError::failed(format!(
        "migration {} failed and was rolled back; nothing of it was applied: {problem}",
        migration.label()
    ))
}

fn begin_error(err: sqlx::Error) -> JobError {
    JobError::failed(format!(
        "could not start a transaction: {}",
        describe_sql_error(&err)
    ))
}

/// Postgres reports where in the text the error is; turn that into the line and its SQL.
/// Other engines' errors are described as they are.
fn postgres_failure(migration: &Migration, err: &sqlx::Error) -> String {
    let described = describe_sql_error(err);
    let position = err
        .as_database_error()
        .and_then(|db| db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
        .and_then(|pg| match pg.position() {
            Some(sqlx::postgres::PgErrorPosition::Original(at)) => Some(at),
            _ => None,
        });
    match position {
        Some(at) => {
            let before: String = migration.sql.chars().take(at.saturating_sub(1)).collect();
            let line_number = before.matches('\n').count() + 1;
            let line = migration
                .sql
                .lines()
                .nth(line_number - 1)
                .unwrap_or("")
                .trim();
            format!("{described} (line {line_number}: `{line}`)")
        }
        None => described,
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}
