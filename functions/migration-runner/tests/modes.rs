//! apply, plan and verify on each engine, through the binary.

mod common;

use common::*;
use serde_json::json;

async fn applies_once_then_nothing(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    let run = runner.run(&db, &schema(), json!({})).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "3", "{}", summary(&run));
    assert_eq!(vars["SchemaVersion"], "20240101000003");
    assert_eq!(vars["PendingCount"], "0");
    let text = summary(&run);
    assert!(text.contains("20240101000001 (create users): "), "{text}");
    assert_eq!(db.count("SELECT count(*) FROM users").await, 1);
    let history = db.history().await;
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|(_, _, success, _)| *success));
    assert_eq!(history[1].1, "create orders");

    let again = runner.run(&db, &schema(), json!({})).await;
    assert_eq!(variables(&again)["AppliedCount"], "0");
    assert!(
        summary(&again).starts_with("Nothing to apply"),
        "{}",
        summary(&again)
    );
    assert_eq!(db.history().await, history);
    assert_eq!(db.count("SELECT count(*) FROM users").await, 1);
}

#[tokio::test]
async fn postgres_applies_once_and_a_rerun_applies_nothing() {
    applies_once_then_nothing(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_applies_once_and_a_rerun_applies_nothing() {
    applies_once_then_nothing(Engine::MariaDb).await;
}

#[tokio::test]
async fn sqlite_applies_once_and_a_rerun_applies_nothing() {
    applies_once_then_nothing(Engine::Sqlite).await;
}

async fn plan_changes_nothing(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    let files = schema();
    // A fresh database: plan must not even create the history table.
    let run = runner.run(&db, &files, json!({"mode": "plan"})).await;
    assert_eq!(variables(&run)["PendingCount"], "3");
    let text = summary(&run);
    assert!(
        text.contains("20240101000003 (index orders) `20240101000003_index_orders.sql` sha384:"),
        "{text}"
    );
    assert!(text.contains("(no-transaction)"), "{text}");
    assert!(db.tables().await.is_empty(), "{:?}", db.tables().await);

    // Part-way: plan lists only what is left, and leaves the schema as it was.
    runner.run(&db, &files[..1], json!({})).await;
    let before = (db.tables().await, db.history().await);
    let run = runner.run(&db, &files, json!({"mode": "plan"})).await;
    let vars = variables(&run);
    assert_eq!(vars["PendingCount"], "2");
    assert_eq!(vars["SchemaVersion"], "20240101000001");
    assert_eq!((db.tables().await, db.history().await), before);
}

#[tokio::test]
async fn postgres_plan_lists_pending_and_changes_nothing() {
    plan_changes_nothing(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_plan_lists_pending_and_changes_nothing() {
    plan_changes_nothing(Engine::MariaDb).await;
}

#[tokio::test]
async fn sqlite_plan_lists_pending_and_changes_nothing() {
    plan_changes_nothing(Engine::Sqlite).await;
}

#[tokio::test]
async fn verify_passes_only_when_the_database_matches_the_artifact() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = schema();
    runner.run(&db, &files, json!({})).await;
    let run = runner.run(&db, &files, json!({"mode": "verify"})).await;
    assert_eq!(variables(&run)["SchemaVersion"], "20240101000003");
    assert!(summary(&run).starts_with("Verified"), "{}", summary(&run));

    // Pending.
    let mut more = files.clone();
    more.push((
        "20240101000004_add_note.sql",
        "ALTER TABLE users ADD COLUMN note TEXT;",
    ));
    let (kind, message) = failure(&runner.run(&db, &more, json!({"mode": "verify"})).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("migration 20240101000004 (add note) is pending"),
        "{message}"
    );

    // Modified after it was applied.
    let mut modified = files.clone();
    modified[0].1 = "CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT);";
    let (_, message) = failure(&runner.run(&db, &modified, json!({"mode": "verify"})).await);
    assert!(
        message
            .contains("migration 20240101000001 (create users) was modified after it was applied"),
        "{message}"
    );

    // Applied but unknown to the artifact.
    let (_, message) = failure(
        &runner
            .run(&db, &files[..3], json!({"mode": "verify"}))
            .await,
    );
    assert!(message.contains("migration 20240101000003 (index orders) is applied in the database but not in the artifact"), "{message}");

    // Dirty: a row recorded as failed.
    db.execute("UPDATE _sqlx_migrations SET success = FALSE WHERE version = 20240101000003")
        .await;
    let (_, message) = failure(&runner.run(&db, &files, json!({"mode": "verify"})).await);
    assert!(
        message.contains("migration 20240101000003 (index orders) is recorded as failed"),
        "{message}"
    );
    assert!(
        message.contains("DELETE FROM _sqlx_migrations WHERE version = 20240101000003"),
        "{message}"
    );
}

#[tokio::test]
async fn apply_refuses_a_modified_migration_and_changes_nothing() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::MariaDb).await;
    let files = schema();
    runner.run(&db, &files[..1], json!({})).await;
    let mut modified = files.clone();
    modified[0].1 = "CREATE TABLE users (id BIGINT PRIMARY KEY);";
    let before = (db.tables().await, db.history().await);
    let (kind, message) = failure(&runner.run(&db, &modified, json!({})).await);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("refusing to apply"), "{message}");
    assert!(
        message.contains("was modified after it was applied"),
        "{message}"
    );
    assert_eq!((db.tables().await, db.history().await), before);
}

#[tokio::test]
async fn out_of_order_versions_are_refused_unless_allowed() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let mut files = schema();
    files[3] = (
        "20240101000003_index_users.sql",
        "CREATE INDEX users_email ON users (email);\n",
    );
    let first = runner.run(&db, &[files[0], files[3]], json!({})).await;
    assert_eq!(variables(&first)["AppliedCount"], "2");
    let (_, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert!(message.contains("migration 20240101000002 is not applied but is lower than the highest applied version 20240101000003"), "{message}");
    assert_eq!(db.history().await.len(), 2);
    let run = runner
        .run(&db, &files, json!({"allow_out_of_order": true}))
        .await;
    assert_eq!(variables(&run)["AppliedCount"], "1");
}

#[tokio::test]
async fn target_version_stops_there() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Sqlite).await;
    let run = runner
        .run(
            &db,
            &schema(),
            json!({"target_version": 20240101000002_i64}),
        )
        .await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "2");
    assert_eq!(vars["SchemaVersion"], "20240101000002");
}

#[tokio::test]
async fn badly_named_files_and_bad_parameters_are_configuration_errors() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Sqlite).await;
    let mut files = schema();
    files.push(("README.md", "how to write migrations"));
    let (kind, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("`README.md`: expected `<version>_<description>.sql`"),
        "{message}"
    );

    let (kind, message) = failure(&runner.run(&db, &schema(), json!({"mode": "migrate"})).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("mode"), "{message}");

    let (kind, message) = failure(&runner.run(&db, &schema(), json!({"path": "sql"})).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("no migrations in folder `sql/`"),
        "{message}"
    );
    assert!(db.tables().await.is_empty());
}
