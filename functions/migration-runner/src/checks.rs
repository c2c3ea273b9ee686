//! Data checks beside a migration: `<version>_<name>_pre.check.sql` runs just before migration
//! `<version>`, `<version>_<name>_post.check.sql` just after it (inside its transaction where it
//! has one). Each statement of a check file is a query that must return exactly one row whose
//! first column is true (or a non-zero number): `SELECT count(*) = 0 FROM orders WHERE
//! total < 0`. A pre-check that fails stops the run before the migration changes anything; a
//! post-check that fails rolls the migration back (or, where it cannot be, leaves it recorded
//! as failed); either way the message names the file, the query and what it returned.

pub use crate::source::{Check, When};

use crate::database::{describe_sql_error, Database};
use crate::statements::{self, Dialect, Split};
use sqlx::{AssertSqlSafe, Column, Row};

/// The queries of a check file, as the engine reads statements.
fn queries(check: &Check, db: &Database) -> Result<Vec<String>, String> {
    let split = |dialect| match statements::split(&check.sql, dialect) {
        Ok(Split::Statements(list)) => Ok(list.into_iter().map(|s| s.sql).collect()),
        Ok(Split::Whole) => Ok(vec![check.sql.clone()]),
        Err(e) => Err(format!("line {}: {}", e.line, e.message)),
    };
    let list: Vec<String> = match db {
        Database::MySql { .. } => split(Dialect::MySql)?,
        Database::Postgres(_) => {
            let parse = squawk_syntax::SourceFile::parse(&check.sql);
            parse
                .tree()
                .stmts()
                .map(|stmt| {
                    use squawk_syntax::ast::AstNode;
                    stmt.syntax().text().to_string()
                })
                .collect()
        }
        Database::Sqlite(_) => vec![check.sql.clone()],
    };
    let list: Vec<String> = list
        .into_iter()
        .map(|q| q.trim().trim_end_matches(';').trim().to_string())
        .filter(|q| !q.is_empty())
        .collect();
    if list.is_empty() {
        return Err("it holds no query".into());
    }
    Ok(list)
}

/// Runs every query of `check`; `Err` says which one did not hold and why.
pub async fn run(db: &mut Database, check: &Check) -> Result<(), String> {
    for query in queries(check, db)? {
        let verdict = match db {
            Database::Postgres(conn) => verdict(
                sqlx::raw_sql(AssertSqlSafe(query.clone()))
                    .fetch_all(&mut *conn)
                    .await,
            ),
            Database::MySql { conn, .. } => verdict(
                sqlx::raw_sql(AssertSqlSafe(query.clone()))
                    .fetch_all(&mut *conn)
                    .await,
            ),
            #[cfg(feature = "sqlite")]
            Database::Sqlite(conn) => verdict(
                sqlx::raw_sql(AssertSqlSafe(query.clone()))
                    .fetch_all(&mut *conn)
                    .await,
            ),
            #[cfg(not(feature = "sqlite"))]
            Database::Sqlite(never) => never.absurd(),
        };
        verdict.map_err(|why| format!("`{}` {why}", one_line(&query)))?;
    }
    Ok(())
}

/// Runs every query of `check` on a PostgreSQL connection (inside a migration's transaction).
pub async fn run_postgres(conn: &mut sqlx::PgConnection, check: &Check) -> Result<(), String> {
    let parse = squawk_syntax::SourceFile::parse(&check.sql);
    let list: Vec<String> = parse
        .tree()
        .stmts()
        .map(|stmt| {
            use squawk_syntax::ast::AstNode;
            stmt.syntax()
                .text()
                .to_string()
                .trim()
                .trim_end_matches(';')
                .trim()
                .to_string()
        })
        .filter(|q| !q.is_empty())
        .collect();
    if list.is_empty() {
        return Err("it holds no query".into());
    }
    for query in list {
        verdict(
            sqlx::raw_sql(AssertSqlSafe(query.clone()))
                .fetch_all(&mut *conn)
                .await,
        )
        .map_err(|why| format!("`{}` {why}", one_line(&query)))?;
    }
    Ok(())
}

/// Runs `check` as one query on a SQLite connection (inside a migration's transaction).
#[cfg(feature = "sqlite")]
pub async fn run_sqlite(conn: &mut sqlx::SqliteConnection, check: &Check) -> Result<(), String> {
    let query = check.sql.trim().trim_end_matches(';').trim().to_string();
    if query.is_empty() {
        return Err("it holds no query".into());
    }
    verdict(
        sqlx::raw_sql(AssertSqlSafe(query.clone()))
            .fetch_all(&mut *conn)
            .await,
    )
    .map_err(|why| format!("`{}` {why}", one_line(&query)))
}

/// Whether a query's rows say the check holds: exactly one row, its first column true.
fn verdict<R: Row>(rows: Result<Vec<R>, sqlx::Error>) -> Result<(), String>
where
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let rows = rows.map_err(|e| format!("failed: {}", describe_sql_error(&e)))?;
    let [row] = rows.as_slice() else {
        return Err(format!(
            "returned {} rows; a check returns exactly one",
            rows.len()
        ));
    };
    if row.columns().is_empty() {
        return Err("returned no column".into());
    }
    let truth = row
        .try_get::<Option<bool>, _>(0usize)
        .ok()
        .flatten()
        .or_else(|| {
            row.try_get::<Option<i64>, _>(0usize)
                .ok()
                .flatten()
                .map(|n| n != 0)
        })
        .or_else(|| {
            row.try_get::<Option<i32>, _>(0usize)
                .ok()
                .flatten()
                .map(|n| n != 0)
        });
    match truth {
        Some(true) => Ok(()),
        Some(false) => Err("returned false".into()),
        None => Err(format!(
            "returned `{}` where a boolean (or a number) was expected, or NULL",
            row.columns()[0].name()
        )),
    }
}

/// SQL on one line, cut to 200 characters, for messages.
fn one_line(sql: &str) -> String {
    let line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}
