//! Failures, concurrent runs, continuations and secrets, through the binary.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

fn with_broken_third() -> Vec<(&'static str, &'static str)> {
    vec![
        ("1_create_accounts.sql", "CREATE TABLE accounts (id BIGINT PRIMARY KEY);\n"),
        ("2_create_audit.sql", "CREATE TABLE audit (id BIGINT PRIMARY KEY);\n"),
        ("3_broken.sql", "CREATE TABLE half_done (id BIGINT PRIMARY KEY);\nINSERT INTO accounts (id) VALUES (1);\nINSERT INTO no_such_table (id) VALUES (1);\nCREATE TABLE never_reached (id BIGINT);\n"),
    ]
}

#[tokio::test]
async fn a_failing_migration_on_postgres_leaves_no_partial_schema_and_no_history_row() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let run = runner.run(&db, &with_broken_third(), json!({})).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message
            .contains("migration 3 (broken) failed and was rolled back; nothing of it was applied"),
        "{message}"
    );
    assert!(message.contains("42P01"), "{message}");
    assert!(
        message.contains("line 3: `INSERT INTO no_such_table (id) VALUES (1);`"),
        "{message}"
    );
    assert!(
        message.contains("Applied before the failure (kept):\n- 1 (create accounts)"),
        "{message}"
    );
    assert_eq!(
        db.tables().await,
        vec!["_sqlx_migrations", "accounts", "audit"]
    );
    assert_eq!(
        db.history().await.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(db.count("SELECT count(*) FROM accounts").await, 0);
}

#[tokio::test]
async fn a_failing_migration_on_mariadb_is_recorded_as_failed_and_the_next_run_refuses_with_the_repair(
) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::MariaDb).await;
    let run = runner.run(&db, &with_broken_third(), json!({})).await;
    let (_, message) = failure(&run);
    assert!(
        message.contains("migration 3 (broken) failed part-way"),
        "{message}"
    );
    assert!(
        message.contains(
            "statement 3 of 4 (line 3: `INSERT INTO no_such_table (id) VALUES (1)`) failed: 42S02"
        ),
        "{message}"
    );
    assert!(
        message.contains("DELETE FROM _sqlx_migrations WHERE version = 3"),
        "{message}"
    );
    // DDL commits implicitly on MariaDB: the first statement stayed, the history says failed.
    assert!(db.tables().await.contains(&"half_done".to_string()));
    assert!(!db.tables().await.contains(&"never_reached".to_string()));
    let history = db.history().await;
    assert_eq!(history.last().map(|r| (r.0, r.2)), Some((3, false)));

    let before = (db.tables().await, db.history().await);
    let (_, message) = failure(&runner.run(&db, &with_broken_third(), json!({})).await);
    assert!(
        message.contains(
            "migration 3 (broken) is recorded as failed in _sqlx_migrations: the database is dirty"
        ),
        "{message}"
    );
    assert!(
        message.contains("DELETE FROM _sqlx_migrations WHERE version = 3"),
        "{message}"
    );
    assert_eq!((db.tables().await, db.history().await), before);
}

#[tokio::test]
async fn a_migration_that_fails_at_its_first_statement_on_mariadb_changes_nothing() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::MariaDb).await;
    let files = [(
        "1_bad.sql",
        "INSERT INTO nowhere VALUES (1);\nCREATE TABLE t (id INT);",
    )];
    let (_, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert!(
        message.contains("failed and was rolled back; nothing of it was applied"),
        "{message}"
    );
    assert!(db.history().await.is_empty());
}

/// Each migration sleeps a little and writes a row, so two runs overlap and a double
/// application would show.
fn slow_set(engine: Engine, n: usize) -> Vec<(String, String)> {
    let sleep = match engine {
        Engine::Postgres => "SELECT pg_sleep(0.3);",
        Engine::MariaDb => "SELECT SLEEP(0.3);",
        // SQLite has no sleep: count far enough to take a moment.
        Engine::Sqlite => "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) SELECT count(*) FROM c;",
    };
    let mut files = vec![(
        "1_create_log.sql".to_string(),
        "CREATE TABLE applied_log (version BIGINT NOT NULL);\nINSERT INTO applied_log VALUES (1);\n".to_string(),
    )];
    for v in 2..=n {
        files.push((
            format!("{v}_step_{v}.sql"),
            format!("{sleep}\nINSERT INTO applied_log VALUES ({v});\n"),
        ));
    }
    files
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

async fn concurrent_runs_apply_each_migration_once(engine: Engine) {
    let db = TestDb::fresh(engine).await;
    let files = slow_set(engine, 6);
    let files = as_refs(&files);
    let (first, second) = tokio::join!(Runner::default(), Runner::default());
    let (a, b) = tokio::join!(
        first.run(&db, &files, json!({"lock_timeout_seconds": 30})),
        second.run(&db, &files, json!({"lock_timeout_seconds": 30}))
    );
    let applied: Vec<i64> = [&a, &b]
        .iter()
        .map(|run| {
            variables(run)["AppliedCount"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    // Usually one run applies everything and the other finds nothing pending; either way
    // the two together apply each migration exactly once.
    assert_eq!(applied.iter().sum::<i64>(), 6, "{applied:?}");
    assert_eq!(db.count("SELECT count(*) FROM applied_log").await, 6);
    assert_eq!(
        db.count("SELECT count(DISTINCT version) FROM applied_log")
            .await,
        6
    );
    assert_eq!(db.history().await.len(), 6);
}

#[tokio::test]
async fn postgres_concurrent_runs_wait_for_the_lock_and_apply_each_migration_once() {
    concurrent_runs_apply_each_migration_once(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_concurrent_runs_wait_for_the_lock_and_apply_each_migration_once() {
    concurrent_runs_apply_each_migration_once(Engine::MariaDb).await;
}

#[tokio::test]
async fn sqlite_concurrent_runs_wait_for_the_file_lock_and_apply_each_migration_once() {
    concurrent_runs_apply_each_migration_once(Engine::Sqlite).await;
}

#[tokio::test]
async fn a_migration_that_fits_a_fresh_invocation_is_not_started_late() {
    // About 7 s of work per invocation: after the 3.5 s migration, 3.5 s are left, more than
    // the margin but less than the 4 s migration needs. It must wait for the next invocation
    // rather than start and be cut off.
    let runner = Runner::start(Duration::from_secs(12), &[]).await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        (
            "1_long.sql",
            "SELECT pg_sleep(3.5);
CREATE TABLE long_done (id INT);
",
        ),
        (
            "2_longer.sql",
            "SELECT pg_sleep(4);
CREATE TABLE longer_done (id INT);
",
        ),
    ];
    let run = runner.run(&db, &files, json!({})).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "2", "{}", summary(&run));
    assert_eq!(run.invocations.len(), 2, "{}", summary(&run));
    let first = run.results()[0]["executionDetails"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        first.contains("continuing in the next invocation"),
        "{first}"
    );
    assert!(first.contains("the next may need 5 s"), "{first}");
    assert_eq!(db.history().await.len(), 2);
}

#[tokio::test]
async fn a_rotated_password_is_read_again_and_the_run_succeeds() {
    let runner = Runner::default().await;
    let mut db = TestDb::fresh(Engine::MariaDb).await;
    let user = format!("rot_{}", &db.name[3..11]);
    for host in ["%", "localhost", "127.0.0.1"] {
        db.execute(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'before-rotation-1'; GRANT ALL ON {}.* TO '{user}'@'{host}'",
            db.name
        ))
        .await;
    }
    db.secret["username"] = json!(user);
    db.secret["password"] = json!("before-rotation-1");
    let files = schema();
    let first = runner.run(&db, &files[..1], json!({})).await;
    assert_eq!(
        variables(&first)["AppliedCount"],
        "1",
        "{}",
        summary(&first)
    );

    // The rotation: the database and the secret change; the warm function still caches the
    // old password.
    for host in ["%", "localhost", "127.0.0.1"] {
        db.execute(&format!(
            "ALTER USER '{user}'@'{host}' IDENTIFIED BY 'after-rotation-2'"
        ))
        .await;
    }
    db.secret["password"] = json!("after-rotation-2");
    let reads_before = runner
        .function
        .aws
        .calls
        .count("secretsmanager", "GetSecretValue");
    let second = runner.run(&db, &files, json!({})).await;
    assert_eq!(
        variables(&second)["AppliedCount"],
        "2",
        "{}",
        summary(&second)
    );
    assert_eq!(
        runner
            .function
            .aws
            .calls
            .count("secretsmanager", "GetSecretValue")
            - reads_before,
        1,
        "the cached secret is used first, then read once more"
    );
    assert!(runner.logs().contains("reading the secret again"));
    assert!(!runner.logs().contains("before-rotation-1"));
    assert!(!runner.logs().contains("after-rotation-2"));
    for host in ["%", "localhost", "127.0.0.1"] {
        db.execute(&format!("DROP USER '{user}'@'{host}'")).await;
    }
}

#[tokio::test]
async fn a_run_that_cannot_get_the_lock_fails_cleanly_at_the_lock_timeout() {
    let db = TestDb::fresh(Engine::Postgres).await;
    // The first run holds the lock while its slow migration runs.
    let files = [(
        "1_slow.sql",
        "SELECT pg_sleep(8);\nCREATE TABLE slow_done (id INT);\n",
    )];
    let (first, second) = tokio::join!(Runner::default(), Runner::default());
    let slow = first.run(&db, &files, json!({}));
    let impatient = async {
        // Start only once the first run holds the lock, however slow the machine.
        let held = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";
        while db.count(held).await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        second
            .run(&db, &files, json!({"lock_timeout_seconds": 1}))
            .await
    };
    let (slow, impatient) = tokio::join!(slow, impatient);
    assert_eq!(variables(&slow)["AppliedCount"], "1");
    let (kind, message) = failure(&impatient);
    assert_eq!(kind, "JobFailed");
    assert!(
        message
            .contains("another migration run holds the lock on this database; gave up after 1 s"),
        "{message}"
    );
    assert_eq!(db.history().await.len(), 1);
}

#[tokio::test]
async fn a_continuation_resumes_where_the_last_invocation_stopped() {
    // 10 s Lambda timeout leaves 5 s of work; below 3.5 s left the runner hands over.
    let runner = Runner::start(
        Duration::from_secs(10),
        &[("MIGRATION_TIME_MARGIN_SECONDS", "3")],
    )
    .await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files: Vec<(String, String)> = (1..=8)
        .map(|v| {
            (
                format!("{v}_step.sql"),
                format!("SELECT pg_sleep(0.7);\nCREATE TABLE step_{v} (id INT);\n"),
            )
        })
        .collect();
    let run = runner.run(&db, &as_refs(&files), json!({})).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "8", "{}", summary(&run));
    assert!(
        run.invocations.len() >= 3,
        "{} invocations",
        run.invocations.len()
    );
    let results = &run.record.as_ref().unwrap().results;
    assert!(
        results[0]["continuationToken"].is_string(),
        "{}",
        results[0]
    );
    assert!(results[0]["executionDetails"]["summary"]
        .as_str()
        .unwrap()
        .contains("continuing in the next invocation"));
    let history = db.history().await;
    assert_eq!(
        history.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<i64>>()
    );
    assert!(
        summary(&run).contains("schema version none → 8"),
        "{}",
        summary(&run)
    );
}

#[tokio::test]
async fn the_database_password_never_appears_in_logs_or_failures() {
    let runner = Runner::default().await;
    let password = "Mdb-Secret-Never-Logged-4410";
    let admin = TestDb::fresh(Engine::MariaDb).await;
    let user = format!("u{}", &admin.name[3..]);
    admin
        .execute(&format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'; GRANT ALL ON {}.* TO '{user}'@'%'",
            admin.name
        ))
        .await;
    let mut db = TestDb::fresh(Engine::MariaDb).await;
    db.secret = json!({"engine": "mariadb", "host": "127.0.0.1", "port": 3306,
        "username": user, "password": password, "dbname": admin.name});
    // Works with the right password, fails with a wrong one; neither shows it.
    let ok = runner.run(&db, &schema(), json!({})).await;
    assert_eq!(variables(&ok)["AppliedCount"], "3");
    // A secret of its own (the function caches secrets for five minutes).
    let wrong = "Wrong-Password-Also-Secret-9921";
    let mut wrong_db = TestDb::fresh(Engine::MariaDb).await;
    wrong_db.secret = db.secret.clone();
    wrong_db.secret["password"] = json!(wrong);
    let (_, message) = failure(
        &runner
            .run(&wrong_db, &schema(), json!({"mode": "verify"}))
            .await,
    );
    assert!(
        message.contains("could not connect to the mysql database"),
        "{message}"
    );
    // A failing migration with a Postgres secret that carries a password.
    let pg = TestDb::fresh(Engine::Postgres).await;
    let (_, pg_message) = failure(
        &runner
            .run(&pg, &[("1_bad.sql", "SELEC 1;")], json!({}))
            .await,
    );
    let logs = runner.logs();
    for secret in [password, wrong, "pg-Secret-Never-Logged-7731"] {
        assert!(
            !message.contains(secret) && !pg_message.contains(secret),
            "a failure quotes a password"
        );
        assert!(!logs.contains(secret), "the logs hold a password");
    }
    admin.execute(&format!("DROP USER '{user}'@'%'")).await;
}
