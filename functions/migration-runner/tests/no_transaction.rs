//! `CREATE INDEX CONCURRENTLY` and its kin need a migration outside a transaction: applied
//! when the file says `-- migrate:no-transaction`, refused by the lint before anything runs
//! when it does not, and a failure part-way leaves the history dirty with the INVALID index
//! PostgreSQL left behind named. On the machine's PostgreSQL, through the binary.

mod common;

use common::{failure, Engine, Runner, TestDb};
use pipeline_testkit::JobRunAssertions;
use serde_json::json;

const ACCOUNTS: (&str, &str) = (
    "1_accounts.sql",
    "CREATE TABLE accounts (id INT PRIMARY KEY, email TEXT NOT NULL);\nINSERT INTO accounts VALUES (1, 'a@example.com'), (2, 'b@example.com');\n",
);

async fn valid_index(db: &TestDb, name: &str) -> i64 {
    db.count(&format!(
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = '{name}' AND i.indisvalid"
    ))
    .await
}

#[tokio::test]
async fn a_concurrent_index_is_built_by_a_no_transaction_migration() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        ACCOUNTS,
        (
            "2_index_email.sql",
            "-- Built without blocking writes.\n-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n",
        ),
    ];
    let run = runner.run(&db, &files, json!({})).await;
    assert_eq!(run.expect_variables()["AppliedCount"], "2");
    assert_eq!(valid_index(&db, "accounts_email").await, 1);
    assert_eq!(
        db.count("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .await,
        2
    );
}

#[tokio::test]
async fn concurrently_inside_a_transaction_is_refused_by_the_lint_before_anything_runs() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        ACCOUNTS,
        (
            "2_index_email.sql",
            "CREATE INDEX CONCURRENTLY accounts_email ON accounts (email);\n",
        ),
    ];
    let (_, message) = failure(
        &runner
            .run(&db, &files, json!({"lint": {"warn": ["other"]}}))
            .await,
    );
    assert!(
        message
            .contains("`2_index_email.sql` line 1: ban-concurrent-index-creation-in-transaction"),
        "{message}"
    );
    assert!(
        message.contains("mark the file `-- migrate:no-transaction`"),
        "{message}"
    );
    let tables = db.tables().await;
    assert!(
        !tables.contains(&"accounts".to_string()),
        "nothing ran: {tables:?}"
    );
}

#[tokio::test]
async fn a_failed_concurrent_index_leaves_the_history_dirty_naming_the_invalid_index() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        ACCOUNTS,
        ("2_duplicate.sql", "INSERT INTO accounts VALUES (3, 'a@example.com');\n"),
        (
            "3_unique_email.sql",
            "-- migrate:no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY accounts_email ON accounts (email);\n",
        ),
    ];
    let (_, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert!(
        message.contains("migration 3 (unique email) failed part-way"),
        "{message}"
    );
    assert!(message.contains("23505"), "the duplicate key: {message}");
    assert!(
        message.contains("it ran outside a transaction (`no-transaction`)"),
        "{message}"
    );
    assert!(
        message.contains("the INVALID index public.accounts_email (on accounts)"),
        "{message}"
    );
    assert!(
        message.contains("`DROP INDEX CONCURRENTLY public.accounts_email;`"),
        "{message}"
    );
    let history = db.history().await;
    assert_eq!(
        history.last().map(|r| (r.0, r.2)),
        Some((3, false)),
        "{history:?}"
    );
    assert_eq!(valid_index(&db, "accounts_email").await, 0);

    // Never recorded as applied: the next run refuses until it is repaired.
    let (_, again) = failure(&runner.run(&db, &files, json!({})).await);
    assert!(
        again.contains("migration 3 (unique email) is recorded as failed"),
        "{again}"
    );
}
