//! Interoperability with the `sqlx` library's own `Migrator`, both ways, on each engine: the
//! same files leave the same schema and the same history whichever tool applied them.

mod common;

use common::*;
use serde_json::json;
use sqlx::migrate::Migrator;

fn files() -> Vec<(&'static str, &'static str)> {
    let mut files = schema();
    files.push((
        "20240101000004_add_note.sql",
        "ALTER TABLE users ADD COLUMN note VARCHAR(100);\n",
    ));
    files
}

/// The files as a folder sqlx can read.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(name), sql).unwrap();
    }
    dir
}

async fn sqlx_migrate(db: &TestDb, files: &[(&str, &str)]) {
    let dir = folder(files);
    let migrator = Migrator::new(dir.path())
        .await
        .expect("sqlx reads the folder");
    match db.conn().await {
        Conn::Postgres(mut c) => migrator.run(&mut c).await,
        Conn::MySql(mut c) => migrator.run(&mut c).await,
        Conn::Sqlite(mut c) => migrator.run(&mut c).await,
    }
    .expect("sqlx Migrator::run");
}

async fn state(db: &TestDb) -> (Vec<String>, Vec<(i64, String, bool, String)>, i64) {
    (
        db.tables().await,
        db.history().await,
        db.count("SELECT count(*) FROM users").await,
    )
}

async fn both_ways(engine: Engine) {
    let runner = Runner::default().await;
    let all = files();
    // The first three files: the `.up.sql`/`.down.sql` pair counts as one migration.
    let half = &all[..3];

    let sqlx_then_runner = TestDb::fresh(engine).await;
    sqlx_migrate(&sqlx_then_runner, half).await;
    let run = runner.run(&sqlx_then_runner, &all, json!({})).await;
    assert_eq!(variables(&run)["AppliedCount"], "2", "{}", summary(&run));

    let runner_then_sqlx = TestDb::fresh(engine).await;
    let run = runner.run(&runner_then_sqlx, half, json!({})).await;
    assert_eq!(variables(&run)["AppliedCount"], "2");
    sqlx_migrate(&runner_then_sqlx, &all).await;

    let only_sqlx = TestDb::fresh(engine).await;
    sqlx_migrate(&only_sqlx, &all).await;

    let expected = state(&only_sqlx).await;
    assert_eq!(expected.1.len(), 4);
    assert_eq!(state(&sqlx_then_runner).await, expected);
    assert_eq!(state(&runner_then_sqlx).await, expected);

    // sqlx sees every version as applied (it checks checksums and refuses unknown ones)...
    sqlx_migrate(&sqlx_then_runner, &all).await;
    assert_eq!(state(&sqlx_then_runner).await, expected);
    // ...and so does the runner.
    let run = runner
        .run(&runner_then_sqlx, &all, json!({"mode": "verify"}))
        .await;
    assert_eq!(variables(&run)["SchemaVersion"], "20240101000004");
}

#[tokio::test]
async fn postgres_history_interoperates_with_sqlx_migrator_both_ways() {
    both_ways(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_history_interoperates_with_sqlx_migrator_both_ways() {
    both_ways(Engine::MariaDb).await;
}

#[tokio::test]
async fn sqlite_history_interoperates_with_sqlx_migrator_both_ways() {
    both_ways(Engine::Sqlite).await;
}
