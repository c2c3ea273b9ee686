//! One dedicated connection per run: connecting with the TLS policy, session timeouts, and
//! the lock that keeps two runs apart (the same lock `sqlx migrate` takes, so the runner and
//! sqlx's `Migrator` also exclude each other).

use crate::engine::{sqlite_not_built_in, Engine, SQLITE_BUILT_IN};
use crate::target::{ConnectTarget, TlsPolicy};
use pipeline_ext::job::JobError;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use std::time::Duration;
use tokio::time::Instant;

/// Evaluates `$body` with `$conn` bound to the connection, whichever engine it is: the
/// statements are the same, only the connection type differs.
macro_rules! with_conn {
    ($db:expr, $conn:ident => $body:expr) => {
        match $db {
            $crate::database::Database::Postgres($conn) => $body,
            $crate::database::Database::MySql { conn: $conn, .. } => $body,
            #[cfg(feature = "sqlite")]
            $crate::database::Database::Sqlite($conn) => $body,
            #[cfg(not(feature = "sqlite"))]
            $crate::database::Database::Sqlite(never) => never.absurd(),
        }
    };
}
pub(crate) use with_conn;

/// Without the `sqlite` feature no SQLite connection can exist: the variant stays (every
/// `match` reads the same either way) but cannot be built.
#[cfg(not(feature = "sqlite"))]
pub enum SqliteConnection {}

#[cfg(not(feature = "sqlite"))]
impl SqliteConnection {
    /// Any type at all: there is no value to call this on.
    pub fn absurd<T>(&self) -> T {
        match *self {}
    }
}

/// How often a busy lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(200);

/// One connection to the target.
pub enum Database {
    /// PostgreSQL.
    Postgres(PgConnection),
    /// MySQL or MariaDB.
    MySql {
        /// The connection.
        conn: MySqlConnection,
        /// It is MariaDB (its timeouts are spelled differently).
        mariadb: bool,
    },
    // Without the `sqlite` feature the variant holds an empty type and is never built.
    /// SQLite (local runs).
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite(SqliteConnection),
}

/// A held migration lock; `Database::unlock` gives it back (closing the connection does too).
pub enum MigrationLock {
    /// A session advisory lock.
    Postgres(i64),
    /// A named lock.
    MySql(String),
    /// SQLite has no session locks: an exclusive lock on `<database>.migration-lock`, which the
    /// kernel releases when the process ends. Each migration also runs in a `BEGIN IMMEDIATE`
    /// transaction that re-checks the history.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    Sqlite(std::fs::File),
    /// `lock: "table"`: the leased row in `_sqlx_migrations_lock` this holder id took.
    Table(String),
}

/// Why a connection failed: rejected credentials are worth one retry with a fresh secret.
pub enum ConnectError {
    /// The server refused the credentials.
    Authentication(JobError),
    /// Anything else.
    Other(JobError),
}

impl From<ConnectError> for JobError {
    fn from(err: ConnectError) -> Self {
        match err {
            ConnectError::Authentication(e) | ConnectError::Other(e) => e,
        }
    }
}

impl Database {
    /// Connects within `timeout`.
    pub async fn connect(target: &ConnectTarget, timeout: Duration) -> Result<Self, ConnectError> {
        if target.engine == Engine::Sqlite && !SQLITE_BUILT_IN {
            return Err(ConnectError::Other(sqlite_not_built_in()));
        }
        let connecting = async {
            Ok::<_, sqlx::Error>(match target.engine {
                Engine::Postgres => {
                    let mut options = PgConnectOptions::new()
                        .host(&target.host)
                        .port(target.port)
                        .username(&target.username)
                        .password(&target.password)
                        .database(&target.dbname)
                        .application_name("codepipeline-migration-runner")
                        .disable_statement_logging();
                    options = match &target.tls {
                        TlsPolicy::Preferred => options.ssl_mode(PgSslMode::Prefer),
                        TlsPolicy::Required => options.ssl_mode(PgSslMode::Require),
                        TlsPolicy::Verified { ca_file } => options
                            .ssl_mode(PgSslMode::VerifyFull)
                            .ssl_root_cert(ca_file),
                    };
                    Database::Postgres(options.connect().await?)
                }
                Engine::MySql => {
                    let mut options = MySqlConnectOptions::new()
                        .host(&target.host)
                        .port(target.port)
                        .username(&target.username)
                        .database(&target.dbname)
                        // Files run as the `mysql` client runs them: the server's own
                        // sql_mode (sqlx adds PIPES_AS_CONCAT, and IGNORE_SPACE comes with its
                        // handshake; both change what a statement means) and time zone.
                        .pipes_as_concat(false)
                        .timezone(None)
                        .disable_statement_logging();
                    // An empty password means none: sending "" fails where no password is set.
                    if !target.password.is_empty() {
                        options = options.password(&target.password);
                    }
                    options = match &target.tls {
                        TlsPolicy::Preferred => options.ssl_mode(MySqlSslMode::Preferred),
                        TlsPolicy::Required => options.ssl_mode(MySqlSslMode::Required),
                        TlsPolicy::Verified { ca_file } => options
                            .ssl_mode(MySqlSslMode::VerifyIdentity)
                            .ssl_ca(ca_file),
                    };
                    let mut conn = options.connect().await?;
                    sqlx::raw_sql("SET SESSION sql_mode = @@GLOBAL.sql_mode")
                        .execute(&mut conn)
                        .await?;
                    let version: String = sqlx::query_scalar("SELECT VERSION()")
                        .fetch_one(&mut conn)
                        .await?;
                    Database::MySql {
                        conn,
                        mariadb: version.contains("MariaDB"),
                    }
                }
                #[cfg(not(feature = "sqlite"))]
                Engine::Sqlite => {
                    return Err(sqlx::Error::Configuration(
                        sqlite_not_built_in().to_string().into(),
                    ))
                }
                #[cfg(feature = "sqlite")]
                Engine::Sqlite => {
                    let options = SqliteConnectOptions::new()
                        .filename(&target.dbname)
                        .create_if_missing(true)
                        .busy_timeout(timeout)
                        .disable_statement_logging();
                    Database::Sqlite(options.connect().await?)
                }
            })
        };
        match tokio::time::timeout(timeout, connecting).await {
            Ok(Ok(db)) => Ok(db),
            Ok(Err(err)) => {
                let failure = JobError::failed(format!(
                    "could not connect to the {}: {}",
                    target.describe(),
                    describe_sql_error(&err)
                ));
                Err(if is_authentication_failure(&err) {
                    ConnectError::Authentication(failure)
                } else {
                    ConnectError::Other(failure)
                })
            }
            Err(_) => Err(ConnectError::Other(JobError::failed(format!(
                "could not connect to the {} within {} s; check the host, the security groups, and that a function in a VPC can reach it",
                target.describe(),
                timeout.as_secs()
            )))),
        }
    }

    /// Bounds every statement and every wait for a table lock, so a migration fails cleanly
    /// instead of being killed with the Lambda.
    pub async fn limit_session(
        &mut self,
        statement_timeout: Duration,
        lock_wait: Duration,
    ) -> Result<(), JobError> {
        let statement_ms = statement_timeout.as_millis().max(1);
        let lock_ms = lock_wait.as_millis().max(1);
        let statement_s = statement_timeout.as_secs().max(1);
        let lock_s = lock_wait.as_secs().max(1);
        let statements: Vec<String> = match self {
            Database::Postgres(_) => vec![
                format!("SET statement_timeout = {statement_ms}"),
                format!("SET lock_timeout = {lock_ms}"),
            ],
            Database::MySql { mariadb: true, .. } => vec![
                format!("SET SESSION max_statement_time = {statement_s}"),
                format!("SET SESSION lock_wait_timeout = {lock_s}"),
                format!("SET SESSION innodb_lock_wait_timeout = {lock_s}"),
            ],
            // MySQL's max_execution_time covers SELECTs only; DDL is bounded by the lock waits.
            Database::MySql { mariadb: false, .. } => vec![
                format!("SET SESSION max_execution_time = {statement_ms}"),
                format!("SET SESSION lock_wait_timeout = {lock_s}"),
                format!("SET SESSION innodb_lock_wait_timeout = {lock_s}"),
            ],
            Database::Sqlite(_) => Vec::new(),
        };
        for statement in statements {
            self.execute(&statement).await.map_err(|e| {
                JobError::failed(format!(
                    "could not set `{statement}`: {}",
                    describe_sql_error(&e)
                ))
            })?;
        }
        Ok(())
    }

    /// Takes the migration lock, trying again until `wait` has passed.
    pub async fn lock(&mut self, wait: Duration) -> Result<MigrationLock, JobError> {
        let started = Instant::now();
        let lock = match self {
            Database::Postgres(conn) => {
                let name: String = sqlx::query_scalar("SELECT current_database()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(lock_error)?;
                MigrationLock::Postgres(lock_id(&name))
            }
            Database::MySql { conn, .. } => {
                let name: String = sqlx::query_scalar("SELECT DATABASE()")
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(lock_error)?;
                MigrationLock::MySql(format!("{:x}", lock_id(&name)))
            }
            #[cfg(feature = "sqlite")]
            Database::Sqlite(_) => {
                return lock_file(&self.sqlite_path().await?, started, wait).await;
            }
            #[cfg(not(feature = "sqlite"))]
            Database::Sqlite(never) => never.absurd(),
        };
        loop {
            let acquired = match (&mut *self, &lock) {
                (Database::Postgres(conn), MigrationLock::Postgres(id)) => {
                    sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                        .bind(id)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(lock_error)?
                }
                (Database::MySql { conn, .. }, MigrationLock::MySql(name)) => {
                    sqlx::query_scalar::<_, Option<i64>>("SELECT GET_LOCK(?, 0)")
                        .bind(name)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(lock_error)?
                        == Some(1)
                }
                _ => true,
            };
            if acquired {
                self.check_session_lock(&lock).await?;
                if started.elapsed() > LOCK_POLL {
                    tracing::info!(
                        waited_ms = started.elapsed().as_millis() as u64,
                        "migration lock acquired after waiting"
                    );
                }
                return Ok(lock);
            }
            if started.elapsed() + LOCK_POLL > wait {
                return Err(JobError::failed(format!(
                    "another migration run holds the lock on this database; gave up after {} s (`lock_timeout_seconds`). Nothing was changed",
                    wait.as_secs()
                )));
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Checks, in a statement of its own, that the session lock just taken is held by this
    /// connection's server session. Behind a pooler in transaction mode (PgBouncer, RDS Proxy)
    /// the next statement may run on another server session, which does not hold it: the
    /// lock would protect nothing, so the run stops before any change.
    async fn check_session_lock(&mut self, lock: &MigrationLock) -> Result<(), JobError> {
        let held = match (&mut *self, lock) {
            (Database::Postgres(conn), MigrationLock::Postgres(id)) => sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
                 AND pid = pg_backend_pid() AND ((classid::bigint << 32) | objid::bigint) = $1)",
            )
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(lock_error)?,
            (Database::MySql { conn, .. }, MigrationLock::MySql(name)) => {
                sqlx::query_scalar::<_, bool>("SELECT COALESCE(IS_USED_LOCK(?) = CONNECTION_ID(), FALSE)")
                    .bind(name)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(lock_error)?
            }
            _ => true,
        };
        if held {
            return Ok(());
        }
        Err(JobError::config(
            "the migration lock was taken, but the next statement ran in a server session that does not hold it: the database is behind a connection pooler in transaction mode (PgBouncer, RDS Proxy), where a session lock protects nothing. Nothing was changed. Set `\"lock\": \"table\"` in UserParameters, or connect to the database directly",
        ))
    }

    /// Gives the lock back. Failing to is logged, not fatal: the server drops it with the
    /// connection, which is closed right after.
    pub async fn unlock(&mut self, lock: MigrationLock) {
        let released = match (self, &lock) {
            (Database::Postgres(conn), MigrationLock::Postgres(id)) => {
                sqlx::query("SELECT pg_advisory_unlock($1)")
                    .bind(id)
                    .execute(conn)
                    .await
                    .map(|_| ())
            }
            (Database::MySql { conn, .. }, MigrationLock::MySql(name)) => {
                sqlx::query("SELECT RELEASE_LOCK(?)")
                    .bind(name)
                    .execute(conn)
                    .await
                    .map(|_| ())
            }
            (_, MigrationLock::Sqlite(file)) => {
                let _ = file.unlock();
                Ok(())
            }
            // `lock: "table"`: the row, if it is still ours; its lease runs out otherwise.
            (Database::Postgres(conn), MigrationLock::Table(holder)) => {
                sqlx::query("DELETE FROM _sqlx_migrations_lock WHERE id = 1 AND holder = $1")
                    .bind(holder)
                    .execute(conn)
                    .await
                    .map(|_| ())
            }
            (Database::MySql { conn, .. }, MigrationLock::Table(holder)) => {
                sqlx::query("DELETE FROM _sqlx_migrations_lock WHERE id = 1 AND holder = ?")
                    .bind(holder)
                    .execute(conn)
                    .await
                    .map(|_| ())
            }
            _ => Ok(()),
        };
        if let Err(err) = released {
            tracing::warn!(error = %describe_sql_error(&err), "could not release the migration lock; closing the connection releases it");
        }
    }

    /// Closes the connection cleanly.
    pub async fn close(self) {
        let closed = with_conn!(self, conn => conn.close().await);
        if let Err(err) = closed {
            tracing::debug!(error = %describe_sql_error(&err), "connection did not close cleanly");
        }
    }

    /// The file of the main SQLite database, as SQLite resolved it.
    #[cfg(feature = "sqlite")]
    async fn sqlite_path(&mut self) -> Result<String, JobError> {
        let Database::Sqlite(conn) = self else {
            return Err(JobError::failed("not a SQLite database"));
        };
        let rows: Vec<(i64, String, String)> = sqlx::query_as("PRAGMA database_list")
            .fetch_all(&mut *conn)
            .await
            .map_err(lock_error)?;
        rows.into_iter()
            .find(|(_, name, _)| name == "main")
            .map(|(_, _, file)| file)
            .filter(|file| !file.is_empty())
            .ok_or_else(|| {
                JobError::config(
                    "the SQLite database has no file (in memory?); give a file path as `dbname`",
                )
            })
    }

    /// Runs SQL text without parameters (several statements allowed).
    pub async fn execute(&mut self, sql: &str) -> Result<(), sqlx::Error> {
        let sql = sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
        with_conn!(self, conn => sql.execute(conn).await.map(|_| ()))
    }

    /// Who holds the table locks a statement just gave up waiting for, as a sentence for the
    /// failure (empty when the server shows none, or cannot be asked): the other sessions of
    /// this database in a transaction that holds locks, oldest first, with their last query.
    /// PostgreSQL: `pg_stat_activity` joined with granted `pg_locks`; MySQL and MariaDB:
    /// `information_schema.innodb_trx` with the process list.
    pub async fn lock_holders(&mut self) -> String {
        let rows: Result<Vec<(i64, String, i64, String)>, sqlx::Error> = match self {
            Database::Postgres(conn) => {
                sqlx::query_as(
                    "SELECT a.pid::bigint, COALESCE(a.state, ''), \
                     COALESCE(EXTRACT(EPOCH FROM now() - a.xact_start), 0)::bigint, \
                     left(regexp_replace(COALESCE(a.query, ''), '\\s+', ' ', 'g'), 200) \
                     FROM pg_stat_activity a \
                     WHERE a.pid <> pg_backend_pid() AND a.datname = current_database() \
                     AND a.xact_start IS NOT NULL \
                     AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted \
                                 AND l.locktype = 'relation') \
                     ORDER BY a.xact_start LIMIT 3",
                )
                .fetch_all(&mut *conn)
                .await
            }
            Database::MySql { conn, .. } => {
                sqlx::query_as(
                    "SELECT CAST(t.trx_mysql_thread_id AS SIGNED), CAST(COALESCE(p.COMMAND, '') AS CHAR), \
                     CAST(TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS SIGNED), \
                     CAST(LEFT(COALESCE(p.INFO, ''), 200) AS CHAR) \
                     FROM information_schema.INNODB_TRX t \
                     LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
                     WHERE t.trx_mysql_thread_id <> CONNECTION_ID() \
                     ORDER BY t.trx_started LIMIT 3",
                )
                .fetch_all(&mut *conn)
                .await
            }
            Database::Sqlite(_) => return String::new(),
        };
        match rows {
            Ok(rows) if !rows.is_empty() => {
                let sessions: Vec<String> = rows
                    .into_iter()
                    .map(|(id, state, age, query)| {
                        let state = match state.as_str() {
                            "" => String::new(),
                            "Sleep" => ", idle".to_string(),
                            other => format!(", {other}"),
                        };
                        let query = match query.trim() {
                            "" => String::new(),
                            text => format!(", last query `{text}`"),
                        };
                        format!("session {id} (in a transaction for {age} s{state}{query})")
                    })
                    .collect();
                format!(
                    ". The lock is held by {}: commit or end it, or run the migration when it is done",
                    sessions.join("; ")
                )
            }
            Ok(_) => String::new(),
            Err(err) => {
                tracing::warn!(error = %describe_sql_error(&err), "could not read who holds the lock");
                String::new()
            }
        }
    }
}

impl Database {
    /// The engine this connection speaks.
    pub fn engine(&self) -> Engine {
        match self {
            Database::Postgres(_) => Engine::Postgres,
            Database::MySql { .. } => Engine::MySql,
            Database::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Indexes PostgreSQL marked INVALID (a `CREATE INDEX CONCURRENTLY` that failed leaves
    /// one), as `schema.index` and its table; none on other engines or when it cannot ask.
    pub async fn invalid_indexes(&mut self) -> Vec<(String, String)> {
        let Database::Postgres(conn) = self else {
            return Vec::new();
        };
        sqlx::query_as(
            "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), t.relname::text \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_class t ON t.oid = i.indrelid \
             WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             ORDER BY 1",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default()
    }
}

/// The server gave up waiting for a table lock: PostgreSQL's `lock_not_available` (`55P03`,
/// `lock_timeout`), MySQL and MariaDB's `ER_LOCK_WAIT_TIMEOUT` (1205, `lock_wait_timeout` and
/// `innodb_lock_wait_timeout`). Nothing of the statement was applied.
pub fn is_lock_timeout(err: &sqlx::Error) -> bool {
    let Some(db) = err.as_database_error() else {
        return false;
    };
    if db.code().as_deref() == Some("55P03") {
        return true;
    }
    db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        .is_some_and(|mysql| mysql.number() == 1205)
}

/// Takes an exclusive lock on the file beside a SQLite database, polling until `wait`.
#[cfg(feature = "sqlite")]
async fn lock_file(
    database: &str,
    started: Instant,
    wait: Duration,
) -> Result<MigrationLock, JobError> {
    let path = format!("{database}.migration-lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| JobError::failed(format!("could not open the lock file `{path}`: {e}")))?;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(MigrationLock::Sqlite(file)),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(JobError::failed(format!("could not lock `{path}`: {e}")))
            }
        }
        if started.elapsed() + LOCK_POLL > wait {
            return Err(JobError::failed(format!(
                "another migration run holds the lock on this database; gave up after {} s (`lock_timeout_seconds`). Nothing was changed",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// Rejected credentials: Postgres class 28, MySQL/MariaDB 1045 (SQLSTATE 28000).
fn is_authentication_failure(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code.starts_with("28"))
}

/// sqlx's lock key: CRC-32 of the database name times a constant.
fn lock_id(database_name: &str) -> i64 {
    0x3d32ad9e * (crc32fast::hash(database_name.as_bytes()) as i64)
}

/// A lock that could not be taken, explained.
fn lock_error(err: sqlx::Error) -> JobError {
    JobError::failed(format!(
        "could not take the migration lock: {}",
        describe_sql_error(&err)
    ))
}

/// A database error as `CODE: message`; other errors as sqlx words them (sqlx never puts
/// the password in an error).
pub fn describe_sql_error(err: &sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => {
            let code = db.code();
            let text = match &code {
                Some(code) => format!("{code}: {}", db.message()),
                None => db.message().to_string(),
            };
            // Postgres query_canceled, MariaDB ER_STATEMENT_TIMEOUT, MySQL 3024.
            let timed_out = matches!(code.as_deref(), Some("57014" | "70100"))
                || db
                    .message()
                    .contains("maximum statement execution time exceeded");
            if timed_out {
                format!("{text} (cut off by the statement timeout, which never exceeds the function's time left: give the function more time, raise `statement_timeout_seconds`, or split the migration)")
            } else {
                text
            }
        }
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_match_sqlx() {
        // sqlx: 0x3d32ad9e * CRC-32/ISO-HDLC("test"); CRC-32("test") = 0xd87f7e0c.
        assert_eq!(lock_id("test"), 0x3d32ad9e_i64 * 0xd87f7e0c_i64);
    }
}
