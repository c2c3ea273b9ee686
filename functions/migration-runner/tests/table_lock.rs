//! `lock: "table"`, the migration lock for databases behind a pooler in transaction mode: a
//! leased row in `_sqlx_migrations_lock`. Two runs at once apply each migration once; a row
//! left by a run that died is taken over when its lease runs out, never before; a finished run
//! leaves no row. On the machine's PostgreSQL and MariaDB, through the binary.

mod common;

use common::{failure, Engine, Runner, TestDb};
use pipeline_testkit::JobRunAssertions;
use serde_json::json;

fn files(engine: Engine) -> Vec<(String, String)> {
    let sleep = match engine {
        Engine::Postgres => "SELECT pg_sleep(0.3);",
        _ => "DO SLEEP(0.3);",
    };
    let mut files = vec![(
        "1_log.sql".to_string(),
        "CREATE TABLE applied_log (version INT NOT NULL);\n".to_string(),
    )];
    for v in 2..=5 {
        files.push((
            format!("{v}_step.sql"),
            format!("{sleep}\nINSERT INTO applied_log VALUES ({v});\n"),
        ));
    }
    files
}

fn refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

async fn two_runs_apply_each_migration_once(engine: Engine) {
    let db = TestDb::fresh(engine).await;
    let files = files(engine);
    let files = refs(&files);
    let params = json!({"lock": "table", "lock_timeout_seconds": 30});
    let (first, second) = tokio::join!(Runner::default(), Runner::default());
    let (a, b) = tokio::join!(
        first.run(&db, &files, params.clone()),
        second.run(&db, &files, params.clone())
    );
    let applied: i64 = [&a, &b]
        .iter()
        .map(|run| {
            run.expect_variables()["AppliedCount"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .sum();
    assert_eq!(applied, 5);
    assert_eq!(db.count("SELECT count(*) FROM applied_log").await, 4);
    assert_eq!(
        db.count("SELECT count(DISTINCT version) FROM applied_log")
            .await,
        4
    );
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations_lock").await,
        0,
        "both runs gave the row back"
    );
}

#[tokio::test]
async fn postgres_two_runs_with_the_table_lock_apply_each_migration_once() {
    two_runs_apply_each_migration_once(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_two_runs_with_the_table_lock_apply_each_migration_once() {
    two_runs_apply_each_migration_once(Engine::MariaDb).await;
}

/// The lock table with the row a run that died holding the lock leaves, its lease running
/// out in `seconds`.
async fn left_by_a_dead_run(db: &TestDb, seconds: u32) {
    let (create, insert) = match db.engine {
        Engine::Postgres => (
            "CREATE TABLE _sqlx_migrations_lock ( id INT PRIMARY KEY, holder TEXT NOT NULL, lease_until TIMESTAMPTZ NOT NULL )".to_string(),
            format!("INSERT INTO _sqlx_migrations_lock VALUES (1, 'job-that-died@1', clock_timestamp() + interval '{seconds} seconds')"),
        ),
        _ => (
            "CREATE TABLE _sqlx_migrations_lock ( id INT PRIMARY KEY, holder VARCHAR(64) NOT NULL, lease_until DATETIME(6) NOT NULL )".to_string(),
            format!("INSERT INTO _sqlx_migrations_lock VALUES (1, 'job-that-died@1', NOW(6) + INTERVAL {seconds} SECOND)"),
        ),
    };
    db.execute(&create).await;
    db.execute(&insert).await;
}

async fn a_dead_runs_row_is_taken_over_when_its_lease_runs_out(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    left_by_a_dead_run(&db, 2).await;
    let files = files(engine);
    let run = runner
        .run(
            &db,
            &refs(&files),
            json!({"lock": "table", "lock_timeout_seconds": 30}),
        )
        .await;
    assert_eq!(run.expect_variables()["AppliedCount"], "5");
    assert!(
        runner
            .logs()
            .contains("migration lock row acquired after waiting"),
        "it waited for the lease: {}",
        runner.logs()
    );
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations_lock").await,
        0
    );
}

#[tokio::test]
async fn postgres_a_row_left_by_a_dead_run_is_taken_over_when_its_lease_runs_out() {
    a_dead_runs_row_is_taken_over_when_its_lease_runs_out(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_a_row_left_by_a_dead_run_is_taken_over_when_its_lease_runs_out() {
    a_dead_runs_row_is_taken_over_when_its_lease_runs_out(Engine::MariaDb).await;
}

async fn a_live_lease_keeps_the_run_out(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    left_by_a_dead_run(&db, 600).await;
    let files = files(engine);
    let (_, message) = failure(
        &runner
            .run(
                &db,
                &refs(&files),
                json!({"lock": "table", "lock_timeout_seconds": 1}),
            )
            .await,
    );
    assert!(
        message.contains("another migration run holds the lock row in _sqlx_migrations_lock"),
        "{message}"
    );
    assert!(message.contains("Nothing was changed"), "{message}");
    let tables = db.tables().await;
    assert!(!tables.contains(&"applied_log".to_string()), "{tables:?}");
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations_lock").await,
        1
    );
}

#[tokio::test]
async fn postgres_a_live_lease_keeps_the_run_out() {
    a_live_lease_keeps_the_run_out(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_a_live_lease_keeps_the_run_out() {
    a_live_lease_keeps_the_run_out(Engine::MariaDb).await;
}

#[tokio::test]
async fn an_unknown_lock_mode_is_refused() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = files(Engine::Postgres);
    let (kind, message) = failure(
        &runner
            .run(&db, &refs(&files), json!({"lock": "session"}))
            .await,
    );
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("lock"), "{message}");
    assert!(db.tables().await.is_empty());
}
