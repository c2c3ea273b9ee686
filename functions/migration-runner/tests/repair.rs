//! `mode: "repair"`: a comment or whitespace edit of an applied migration is re-recorded with
//! an audit row; a change to what it does is refused, with nothing changed, unless
//! `accept_checksums` names it. On the machine's PostgreSQL and MariaDB, through the binary.

mod common;

use common::{failure, Engine, Runner, TestDb};
use pipeline_testkit::JobRunAssertions;
use serde_json::json;

const FIRST: (&str, &str) = (
    "1_accounts.sql",
    "CREATE TABLE accounts (id INT PRIMARY KEY, email VARCHAR(100));\nINSERT INTO accounts VALUES (1, 'a@example.com');\n",
);
const COMMENTED: (&str, &str) = (
    "1_accounts.sql",
    "-- Accounts, one per customer.\nCREATE TABLE accounts (\n    id INT PRIMARY KEY,\n    email VARCHAR(100) -- may be null for now\n);\n\nINSERT INTO accounts VALUES (1, 'a@example.com');\n",
);
const CHANGED: (&str, &str) = (
    "1_accounts.sql",
    "CREATE TABLE accounts (id INT PRIMARY KEY, email VARCHAR(200));\nINSERT INTO accounts VALUES (1, 'a@example.com');\n",
);

async fn checksum(db: &TestDb) -> String {
    db.history().await[0].3.clone()
}

async fn a_comment_edit_is_repaired_with_an_audit_row(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    runner
        .run(&db, &[FIRST], json!({}))
        .await
        .expect_variables();
    let before = checksum(&db).await;

    // apply refuses the edited file, and says what to do.
    let (_, refused) = failure(&runner.run(&db, &[COMMENTED], json!({})).await);
    assert!(
        refused.contains("was modified after it was applied"),
        "{refused}"
    );
    assert!(refused.contains("run `mode: repair`"), "{refused}");

    let run = runner
        .run(&db, &[COMMENTED], json!({"mode": "repair"}))
        .await;
    assert_eq!(run.expect_variables()["RepairedCount"], "1");
    let summary = run.summary_text();
    assert!(
        summary.contains("1 (accounts) `1_accounts.sql`: only comments or whitespace changed"),
        "{summary}"
    );
    assert_ne!(checksum(&db).await, before);
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations_repairs WHERE version = 1 AND reason = 'only comments or whitespace changed'").await,
        1
    );
    // The edited file is now the applied one: apply has nothing to do, and does not refuse.
    let again = runner.run(&db, &[COMMENTED], json!({})).await;
    assert_eq!(again.expect_variables()["AppliedCount"], "0");
}

#[tokio::test]
async fn postgres_a_comment_edit_is_repaired_with_an_audit_row() {
    a_comment_edit_is_repaired_with_an_audit_row(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_a_comment_edit_is_repaired_with_an_audit_row() {
    a_comment_edit_is_repaired_with_an_audit_row(Engine::MariaDb).await;
}

#[tokio::test]
async fn a_semantic_edit_is_refused_unless_accept_checksums_names_it() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    runner
        .run(&db, &[FIRST], json!({}))
        .await
        .expect_variables();
    let before = checksum(&db).await;

    let (kind, message) = failure(&runner.run(&db, &[CHANGED], json!({"mode": "repair"})).await);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("repair refused"), "{message}");
    assert!(message.contains("nothing was changed"), "{message}");
    assert!(
        message.contains("changed beyond comments and whitespace"),
        "{message}"
    );
    assert!(
        message.contains("name 1 in `accept_checksums`"),
        "{message}"
    );
    assert_eq!(checksum(&db).await, before, "nothing changed");
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations_repairs")
            .await,
        0
    );

    let run = runner
        .run(
            &db,
            &[CHANGED],
            json!({"mode": "repair", "accept_checksums": ["1"]}),
        )
        .await;
    assert_eq!(run.expect_variables()["RepairedCount"], "1");
    assert!(
        run.summary_text().contains("accepted by accept_checksums"),
        "{}",
        run.summary_text()
    );
    assert_ne!(checksum(&db).await, before);
    let job = db
        .count("SELECT count(*) FROM _sqlx_migrations_repairs WHERE version = 1 AND reason = 'accepted by accept_checksums' AND job_id <> ''")
        .await;
    assert_eq!(job, 1, "the audit row names the job");
}

#[tokio::test]
async fn a_migration_applied_by_sqlx_has_no_proof_and_needs_accept_checksums() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    runner
        .run(&db, &[FIRST], json!({}))
        .await
        .expect_variables();
    // As if sqlx had applied it: no fingerprint recorded.
    db.execute("DELETE FROM _sqlx_migrations_fingerprints")
        .await;
    let (_, message) = failure(
        &runner
            .run(&db, &[COMMENTED], json!({"mode": "repair"}))
            .await,
    );
    assert!(message.contains("has no recorded fingerprint"), "{message}");
}

#[tokio::test]
async fn accept_checksums_must_name_a_modified_applied_migration_and_only_in_repair() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    runner
        .run(&db, &[FIRST], json!({}))
        .await
        .expect_variables();
    let (kind, message) = failure(
        &runner
            .run(
                &db,
                &[FIRST],
                json!({"mode": "repair", "accept_checksums": [7]}),
            )
            .await,
    );
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("`accept_checksums` names 7"), "{message}");
    let (kind, message) = failure(
        &runner
            .run(&db, &[FIRST], json!({"accept_checksums": [1]}))
            .await,
    );
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("is for `mode: repair`"), "{message}");
    let (kind, _) = failure(
        &runner
            .run(
                &db,
                &[FIRST],
                json!({"mode": "repair", "accept_checksums": ["v1"]}),
            )
            .await,
    );
    assert_eq!(kind, "ConfigurationError");
}

#[tokio::test]
async fn nothing_to_repair_is_a_success_that_says_so() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    runner
        .run(&db, &[FIRST], json!({}))
        .await
        .expect_variables();
    let run = runner.run(&db, &[FIRST], json!({"mode": "repair"})).await;
    assert_eq!(run.expect_variables()["RepairedCount"], "0");
    assert!(
        run.summary_text().contains("Nothing to repair"),
        "{}",
        run.summary_text()
    );
}
