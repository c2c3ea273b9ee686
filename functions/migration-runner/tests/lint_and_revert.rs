//! Lint before apply and revert to a target, on each engine, through the binary.

mod common;

use common::*;
use serde_json::json;

fn with_drop(allow: bool) -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "1_create_users.sql",
            "CREATE TABLE users (id BIGINT PRIMARY KEY, nickname VARCHAR(50));\n",
        ),
        (
            "2_drop_nickname.sql",
            if allow {
                "-- lint:allow ban-drop-column: nickname unused since v41\nALTER TABLE users DROP COLUMN nickname;\n"
            } else {
                "-- drop it\nALTER TABLE users DROP COLUMN nickname;\n"
            },
        ),
    ]
}

async fn refuses_a_destructive_migration_unless_allowed(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    let (kind, message) = failure(&runner.run(&db, &with_drop(false), json!({})).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("the lint policy denies 1 changes; nothing was applied"),
        "{message}"
    );
    assert!(
        message.contains("`2_drop_nickname.sql` line 2: ban-drop-column (destructive, deny)"),
        "{message}"
    );
    assert!(
        message.contains("Instead: stop reading and writing the column"),
        "{message}"
    );
    // Nothing at all was applied: not even the harmless first migration.
    assert!(db.history().await.is_empty());

    let run = runner.run(&db, &with_drop(true), json!({})).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "2", "{}", summary(&run));
    assert_eq!(vars["LintErrors"], "0");
    assert!(summary(&run).contains("allowed: `2_drop_nickname.sql` line 2: ban-drop-column (destructive) allowed: nickname unused since v41"), "{}", summary(&run));
}

#[tokio::test]
async fn postgres_refuses_a_destructive_migration_unless_allowed() {
    refuses_a_destructive_migration_unless_allowed(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_refuses_a_destructive_migration_unless_allowed() {
    refuses_a_destructive_migration_unless_allowed(Engine::MariaDb).await;
}

#[tokio::test]
async fn sqlite_refuses_a_destructive_migration_unless_allowed() {
    refuses_a_destructive_migration_unless_allowed(Engine::Sqlite).await;
}

#[tokio::test]
async fn postgres_plan_shows_squawk_warnings_with_file_and_line_and_a_one_line_summary() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    db.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT)")
        .await;
    let files = [(
        "5_index.sql",
        "-- index the user\n\nCREATE INDEX orders_user ON orders (user_id);\n",
    )];
    let run = runner.run(&db, &files, json!({"mode": "plan"})).await;
    let vars = variables(&run);
    assert_eq!(vars["LintErrors"], "0");
    assert_eq!(vars["LintWarnings"], "1", "{}", summary(&run));
    assert!(
        summary(&run).contains("warning: `5_index.sql` line 3: require-concurrent-index-creation"),
        "{}",
        summary(&run)
    );
    let line = vars["PlanSummary"].as_str().unwrap();
    assert!(
        line.starts_with("1 pending migration (5 (index))"),
        "{line}"
    );
    assert!(
        line.contains("lint: 0 errors, 1 warnings (require-concurrent-index-creation)"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    // Denying the class makes plan fail as apply would.
    let (_, message) = failure(
        &runner
            .run(
                &db,
                &files,
                json!({"mode": "plan", "lint": {"deny": ["other"]}}),
            )
            .await,
    );
    assert!(message.contains("apply would refuse"), "{message}");
    assert!(
        db.count("SELECT count(*) FROM pg_indexes WHERE indexname = 'orders_user'")
            .await
            == 0
    );
}

#[tokio::test]
async fn mariadb_runs_executable_comments_and_mysqldump_style_files() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::MariaDb).await;
    let files = [(
        "1_dump.sql",
        "/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE t (id INT PRIMARY KEY) /*!50100 ENGINE=InnoDB */;\n/*!40000 ALTER TABLE `t` DISABLE KEYS */;\nINSERT INTO t VALUES (1),(2);\n/*!40000 ALTER TABLE `t` ENABLE KEYS */;\n/*!99999 CREATE TABLE never_run (id INT) */;\nDELIMITER ;;\nCREATE PROCEDURE count_t() BEGIN SELECT COUNT(*) FROM t; END ;;\nDELIMITER ;\n/*M!100100 CREATE TABLE mariadb_only (id INT) */;\n",
    )];
    let run = runner.run(&db, &files, json!({})).await;
    assert_eq!(variables(&run)["AppliedCount"], "1", "{}", summary(&run));
    let tables = db.tables().await;
    assert!(tables.contains(&"mariadb_only".to_string()), "{tables:?}");
    assert!(!tables.contains(&"never_run".to_string()), "{tables:?}");
    assert_eq!(db.count("SELECT count(*) FROM t").await, 2);
    assert_eq!(db.count("SELECT count(*) FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_name = 'count_t'").await, 1);
}

#[tokio::test]
async fn mariadb_applies_create_or_replace_procedure_as_sqlx_does() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::MariaDb).await;
    let files = [("1_proc.sql", "CREATE TABLE t (id INT);\nCREATE OR REPLACE PROCEDURE add_one()\nBEGIN\n  INSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (2);\nEND;\n")];
    let run = runner.run(&db, &files, json!({})).await;
    assert_eq!(variables(&run)["AppliedCount"], "1", "{}", summary(&run));
    db.execute("CALL add_one()").await;
    assert_eq!(db.count("SELECT count(*) FROM t").await, 2);
}

fn reversible() -> Vec<(&'static str, &'static str)> {
    vec![
        ("1_a.up.sql", "CREATE TABLE a (id INT);\n"),
        ("1_a.down.sql", "DROP TABLE a;\n"),
        ("2_b.up.sql", "CREATE TABLE b (id INT);\n"),
        ("2_b.down.sql", "DROP TABLE b;\n"),
        ("3_c.up.sql", "CREATE TABLE c (id INT);\n"),
        ("3_c.down.sql", "DROP TABLE c;\n"),
    ]
}

async fn reverts_to_a_target(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    assert_eq!(
        variables(&runner.run(&db, &reversible(), json!({})).await)["AppliedCount"],
        "3"
    );

    let plan = runner
        .run(
            &db,
            &reversible(),
            json!({"mode": "revert", "target_version": 1, "dry_run": true}),
        )
        .await;
    assert!(
        summary(&plan).contains("3 (c) with `3_c.down.sql`\n- 2 (b) with `2_b.down.sql`"),
        "{}",
        summary(&plan)
    );
    assert_eq!(db.history().await.len(), 3);

    let run = runner
        .run(
            &db,
            &reversible(),
            json!({"mode": "revert", "target_version": 1}),
        )
        .await;
    let vars = variables(&run);
    assert_eq!(vars["RevertedCount"], "2", "{}", summary(&run));
    assert_eq!(vars["SchemaVersion"], "1");
    assert_eq!(
        db.history().await.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![1]
    );
    let tables = db.tables().await;
    assert!(
        tables.contains(&"a".to_string())
            && !tables.contains(&"b".to_string())
            && !tables.contains(&"c".to_string()),
        "{tables:?}"
    );

    // A target that is not applied, and a missing down file, are refused with nothing changed.
    let (_, message) = failure(
        &runner
            .run(
                &db,
                &reversible(),
                json!({"mode": "revert", "target_version": 2}),
            )
            .await,
    );
    assert!(
        message.contains("`target_version` 2 is not applied"),
        "{message}"
    );
    runner.run(&db, &reversible(), json!({})).await;
    let mut no_down = reversible();
    no_down.retain(|(name, _)| *name != "3_c.down.sql" && *name != "2_b.down.sql");
    let (_, message) = failure(
        &runner
            .run(
                &db,
                &no_down,
                json!({"mode": "revert", "target_version": 0}),
            )
            .await,
    );
    assert!(
        message.contains("3 (c) (`3_c.up.sql`), 2 (b) (`2_b.up.sql`)"),
        "{message}"
    );
    assert_eq!(db.history().await.len(), 3);
}

#[tokio::test]
async fn postgres_reverts_to_a_target_and_refuses_what_it_cannot_undo() {
    reverts_to_a_target(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_reverts_to_a_target_and_refuses_what_it_cannot_undo() {
    reverts_to_a_target(Engine::MariaDb).await;
}

#[tokio::test]
async fn sqlite_reverts_to_a_target_and_refuses_what_it_cannot_undo() {
    reverts_to_a_target(Engine::Sqlite).await;
}

#[tokio::test]
async fn verify_fails_when_the_database_is_above_the_target() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Sqlite).await;
    runner.run(&db, &reversible(), json!({})).await;
    let (_, message) = failure(
        &runner
            .run(
                &db,
                &reversible(),
                json!({"mode": "verify", "target_version": 2}),
            )
            .await,
    );
    assert!(message.contains("above `target_version` 2"), "{message}");
}
