//! A migration that meets a table lock held by a long transaction: it gives up within the
//! table-lock timeout (never queueing every other query behind it for minutes), names the
//! session that holds the lock, changes nothing, and tries again with backoff until the
//! holder is gone. On the machine's PostgreSQL and MariaDB, through the binary.

mod common;

use common::{failure, Engine, Runner, TestDb};
use pipeline_testkit::JobRunAssertions;
use serde_json::json;
use std::time::Duration;

const ADD_COLUMN: (&str, &str) = (
    "2_add_note.sql",
    "ALTER TABLE accounts ADD COLUMN note VARCHAR(20);\n",
);

/// `accounts`, applied by migration 1, and a second session in a transaction that holds a
/// lock on it (PostgreSQL: a read; MariaDB: a write, which holds the table's metadata lock).
async fn with_a_held_lock(db: &TestDb, runner: &Runner) -> common::Conn {
    let create = [(
        "1_accounts.sql",
        "CREATE TABLE accounts (id INT PRIMARY KEY);\n",
    )];
    runner.run(db, &create, json!({})).await.expect_variables();
    let mut holder = db.conn().await;
    holder.execute("BEGIN").await;
    match db.engine {
        Engine::Postgres => holder.execute("SELECT count(*) FROM accounts").await,
        _ => holder.execute("INSERT INTO accounts (id) VALUES (7)").await,
    }
    holder
}

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "1_accounts.sql",
            "CREATE TABLE accounts (id INT PRIMARY KEY);\n",
        ),
        ADD_COLUMN,
    ]
}

async fn fails_naming_the_holder_and_changes_nothing(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    let _holder = with_a_held_lock(&db, &runner).await;
    let params =
        json!({"table_lock_timeout_ms": 1000, "lock_retries": 1, "lock_retry_backoff_ms": 100});
    let (kind, message) = failure(&runner.run(&db, &files(), params).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains(
            "migration 2 (add note) failed and was rolled back; nothing of it was applied"
        ),
        "{message}"
    );
    let (code, holder_query) = match engine {
        Engine::Postgres => ("55P03", "SELECT count(*) FROM accounts"),
        _ => ("Lock wait timeout exceeded", "in a transaction for"),
    };
    assert!(message.contains(code), "{message}");
    assert!(message.contains("The lock is held by session"), "{message}");
    assert!(message.contains(holder_query), "{message}");
    assert!(
        message
            .contains("each statement may wait 1000 ms for a table lock: `table_lock_timeout_ms`"),
        "{message}"
    );
    assert!(
        message.contains("gave up after 2 attempts; `lock_retries` is 1"),
        "{message}"
    );
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations WHERE version = 2")
            .await,
        0,
        "no history row: the migration can simply run again"
    );
    let columns = db
        .count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'")
        .await;
    assert_eq!(columns, 0, "the column was not added");
}

#[tokio::test]
async fn postgres_gives_up_on_a_held_lock_naming_the_holder_and_changes_nothing() {
    fails_naming_the_holder_and_changes_nothing(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_gives_up_on_a_held_lock_naming_the_holder_and_changes_nothing() {
    fails_naming_the_holder_and_changes_nothing(Engine::MariaDb).await;
}

async fn succeeds_once_the_holder_commits(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    let mut holder = with_a_held_lock(&db, &runner).await;
    let released = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        holder.execute("COMMIT").await;
    });
    let params =
        json!({"table_lock_timeout_ms": 1000, "lock_retries": 8, "lock_retry_backoff_ms": 300});
    let run = runner.run(&db, &files(), params).await;
    released.await.unwrap();
    run.expect_variables();
    let summary = run.summary_text();
    assert!(summary.contains("Applied 1 migrations"), "{summary}");
    let logs = runner.logs();
    assert!(
        logs.contains("a table lock is held elsewhere; trying the migration again"),
        "the first attempt met the lock: {logs}"
    );
    let columns = db
        .count("SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' AND column_name = 'note'")
        .await;
    assert_eq!(columns, 1);
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .await,
        2
    );
}

#[tokio::test]
async fn postgres_tries_again_and_applies_once_the_holder_commits() {
    succeeds_once_the_holder_commits(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_tries_again_and_applies_once_the_holder_commits() {
    succeeds_once_the_holder_commits(Engine::MariaDb).await;
}

#[tokio::test]
async fn a_files_lock_timeout_wins_over_the_parameters() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let _holder = with_a_held_lock(&db, &runner).await;
    let files = [
        ("1_accounts.sql", "CREATE TABLE accounts (id INT PRIMARY KEY);\n"),
        ("2_add_note.sql", "-- Needs the table for a moment only.\n-- migrate:lock_timeout 300ms\nALTER TABLE accounts ADD COLUMN note VARCHAR(20);\n"),
    ];
    let params = json!({"table_lock_timeout_ms": 20000, "lock_retries": 0});
    let (_, message) = failure(&runner.run(&db, &files, params).await);
    assert!(
        message.contains("each statement may wait 300 ms for a table lock: `-- migrate:lock_timeout` in `2_add_note.sql`"),
        "{message}"
    );
}

#[tokio::test]
async fn a_directive_that_cannot_be_read_refuses_the_run_before_any_change() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        (
            "1_accounts.sql",
            "CREATE TABLE accounts (id INT PRIMARY KEY);\n",
        ),
        (
            "2_add_note.sql",
            "-- migrate:lock_timout 2s\nALTER TABLE accounts ADD COLUMN note VARCHAR(20);\n",
        ),
    ];
    let (kind, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("`2_add_note.sql`, line 1"), "{message}");
    assert!(message.contains("unknown directive"), "{message}");
    assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);
}

#[tokio::test]
async fn out_of_range_lock_settings_are_refused() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    for (params, says) in [
        (
            json!({"table_lock_timeout_ms": 0}),
            "`table_lock_timeout_ms` is 0",
        ),
        (json!({"lock_retries": 21}), "`lock_retries` is 21"),
        (
            json!({"lock_retry_backoff_ms": 60001}),
            "`lock_retry_backoff_ms` is 60001",
        ),
    ] {
        let (kind, message) = failure(&runner.run(&db, &files(), params).await);
        assert_eq!(kind, "ConfigurationError");
        assert!(message.contains(says), "{message}");
    }
}

#[tokio::test]
async fn a_migration_that_changes_the_session_timeouts_does_not_lift_them_for_the_next() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        ("1_lift.sql", "SET statement_timeout = 0;\n"),
        ("2_slow.sql", "SELECT pg_sleep(4);\n"),
    ];
    let (_, message) = failure(
        &runner
            .run(&db, &files, json!({"statement_timeout_seconds": 1}))
            .await,
    );
    assert!(message.contains("migration 2 (slow) failed"), "{message}");
    assert!(
        message.contains("57014"),
        "cut off by the statement timeout: {message}"
    );
}
