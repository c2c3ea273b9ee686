//! Data checks beside a migration (`…_pre.check.sql`, `…_post.check.sql`): a pre-check that
//! does not hold stops the run before the migration changes anything (and `plan` says so), a
//! post-check that does not hold rolls the migration back, and both name the file, the query
//! and what it returned. On the machine's PostgreSQL and MariaDB, through the binary.

mod common;

use common::{failure, Engine, Runner, TestDb};
use pipeline_testkit::JobRunAssertions;
use serde_json::json;

const ACCOUNTS: (&str, &str) = (
    "1_accounts.sql",
    "CREATE TABLE accounts (id INT PRIMARY KEY, email VARCHAR(100), balance INT NOT NULL);\nINSERT INTO accounts VALUES (1, 'a@example.com', 10), (2, NULL, 5);\n",
);

const REQUIRE_EMAIL: (&str, &str) = (
    "2_require_email.sql",
    "UPDATE accounts SET balance = balance + 1;\n",
);

async fn balances(db: &TestDb) -> i64 {
    let sql = match db.engine {
        Engine::Postgres => "SELECT SUM(balance)::bigint FROM accounts",
        _ => "SELECT CAST(SUM(balance) AS SIGNED) FROM accounts",
    };
    db.count(sql).await
}

async fn pre_check_stops_before_any_change(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    runner
        .run(&db, &[ACCOUNTS], json!({}))
        .await
        .expect_variables();
    let files = [
        ACCOUNTS,
        REQUIRE_EMAIL,
        (
            "2_require_email_pre.check.sql",
            "-- Every account has an email before the column becomes required.\nSELECT count(*) = 0 FROM accounts WHERE email IS NULL;\n",
        ),
    ];
    let (kind, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains(
            "pre-check `2_require_email_pre.check.sql` of migration 2 (require email) did not hold"
        ),
        "{message}"
    );
    assert!(message.contains("returned false"), "{message}");
    assert!(
        message.contains("email IS NULL"),
        "the query is named: {message}"
    );
    assert!(
        message.contains("The migration was not started"),
        "{message}"
    );
    assert_eq!(balances(&db).await, 15, "nothing changed");
    assert_eq!(db.count("SELECT count(*) FROM _sqlx_migrations").await, 1);

    // plan runs it too, and says apply would refuse.
    let (_, planned) = failure(&runner.run(&db, &files, json!({"mode": "plan"})).await);
    assert!(
        planned.contains("apply would refuse")
            && planned.contains("pre-check `2_require_email_pre.check.sql`"),
        "{planned}"
    );
}

#[tokio::test]
async fn postgres_a_pre_check_that_fails_stops_the_run_before_any_change() {
    pre_check_stops_before_any_change(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_a_pre_check_that_fails_stops_the_run_before_any_change() {
    pre_check_stops_before_any_change(Engine::MariaDb).await;
}

async fn post_check_rolls_back(engine: Engine) {
    let runner = Runner::default().await;
    let db = TestDb::fresh(engine).await;
    runner
        .run(&db, &[ACCOUNTS], json!({}))
        .await
        .expect_variables();
    let files = [
        ACCOUNTS,
        ("2_charge.sql", "UPDATE accounts SET balance = balance - 7;\n"),
        (
            "2_charge_post.check.sql",
            "SELECT count(*) = 2 FROM accounts;\nSELECT count(*) = 0 FROM accounts WHERE balance < 0;\n",
        ),
    ];
    let (_, message) = failure(&runner.run(&db, &files, json!({})).await);
    assert!(
        message
            .contains("migration 2 (charge) failed and was rolled back; nothing of it was applied"),
        "{message}"
    );
    assert!(
        message.contains("post-check `2_charge_post.check.sql` did not hold: `SELECT count(*) = 0 FROM accounts WHERE balance < 0` returned false"),
        "{message}"
    );
    assert_eq!(balances(&db).await, 15, "the charge was rolled back");
    assert_eq!(db.count("SELECT count(*) FROM _sqlx_migrations").await, 1);
}

#[tokio::test]
async fn postgres_a_post_check_that_fails_rolls_the_migration_back() {
    post_check_rolls_back(Engine::Postgres).await;
}

#[tokio::test]
async fn mariadb_a_post_check_that_fails_rolls_the_migration_back() {
    post_check_rolls_back(Engine::MariaDb).await;
}

#[tokio::test]
async fn checks_that_hold_let_the_migration_apply_and_plan_lists_them() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let files = [
        ACCOUNTS,
        REQUIRE_EMAIL,
        (
            "2_require_email_pre.check.sql",
            "SELECT count(*) = 2 FROM accounts",
        ),
        (
            "2_require_email_post.check.sql",
            "SELECT min(balance) >= 6 FROM accounts;",
        ),
    ];
    runner
        .run(&db, &[ACCOUNTS], json!({}))
        .await
        .expect_variables();
    let plan = runner.run(&db, &files, json!({"mode": "plan"})).await;
    plan.expect_variables();
    let summary = plan.summary_text();
    assert!(
        summary.contains(
            "pre-check `2_require_email_pre.check.sql` (migration 2 (require email)): holds"
        ),
        "{summary}"
    );
    assert!(
        summary.contains("post-check `2_require_email_post.check.sql`"),
        "{summary}"
    );
    let run = runner.run(&db, &files, json!({})).await;
    assert_eq!(run.expect_variables()["AppliedCount"], "1");
    assert_eq!(balances(&db).await, 17);
}

#[tokio::test]
async fn a_check_must_return_one_true_row_and_belong_to_a_migration() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Postgres).await;
    let two_rows = [
        ACCOUNTS,
        REQUIRE_EMAIL,
        (
            "2_require_email_pre.check.sql",
            "SELECT id > 0 FROM accounts",
        ),
    ];
    let (_, message) = failure(&runner.run(&db, &two_rows, json!({})).await);
    assert!(
        message.contains("returned 2 rows; a check returns exactly one"),
        "{message}"
    );

    let orphan = [ACCOUNTS, ("7_gone_pre.check.sql", "SELECT true")];
    let (kind, message) = failure(&runner.run(&db, &orphan, json!({})).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("`7_gone_pre.check.sql` checks migration 7, which is not in the folder"),
        "{message}"
    );
}
