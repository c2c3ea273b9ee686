//! A database in another account: `role_arn` makes the secret's read and the RDS snapshot
//! calls as that account's role (the local Secrets Manager and RDS keep each account's own),
//! while the migrations still come from the artifact with the job's credentials.

mod common;

use common::*;
use serde_json::json;

const ROLE: &str = "arn:aws:iam::222222222222:role/pipeline-migrations";
const TARGET: &str = "222222222222";

/// A SQLite database the target account's RDS knows as `prod-db`.
async fn production_database(runner: &Runner) -> TestDb {
    let mut db = TestDb::fresh(Engine::Sqlite).await;
    db.secret["dbInstanceIdentifier"] = json!("prod-db");
    let file = db.secret["dbname"].as_str().unwrap().to_string();
    runner.function.aws.rds.add_instance_in(
        TARGET,
        "prod-db",
        "sqlite",
        Some(std::path::Path::new(&file)),
    );
    runner
        .function
        .aws
        .sts
        .add_role(ROLE, Some("tooling-42"))
        .unwrap();
    db
}

/// No migration ran: no table at all, not even the history.
async fn assert_nothing_ran(db: &TestDb) {
    let tables = db.tables().await;
    assert!(tables.is_empty(), "{tables:?}");
}

/// The roles that signed each call of `service`'s `operation`.
fn signers(runner: &Runner, service: &str, operation: &str) -> Vec<String> {
    let aws = &runner.function.aws;
    aws.calls
        .of(service, operation)
        .iter()
        .map(|call| {
            call.access_key
                .as_deref()
                .and_then(|key| aws.sts.session_of(key))
                .map(|s| s.role_arn)
                .unwrap_or_else(|| "(own role)".into())
        })
        .collect()
}

#[tokio::test]
async fn reads_the_secret_and_takes_the_snapshot_in_the_target_account_as_its_role() {
    let runner = Runner::default().await;
    let db = production_database(&runner).await;
    let run = runner
        .run_in_account(
            TARGET,
            &db,
            &schema(),
            json!({"role_arn": ROLE, "external_id": "tooling-42",
                   "backup": {"snapshot": true, "wait": true}}),
        )
        .await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "3", "{}", summary(&run));
    let snapshots = runner.function.aws.rds.snapshots();
    assert_eq!(snapshots.len(), 1);
    assert_eq!(snapshots[0].account, TARGET);
    assert_eq!(snapshots[0].of, "prod-db");
    for (service, operation) in [
        ("secretsmanager", "GetSecretValue"),
        ("rds", "CreateDBSnapshot"),
        ("rds", "DescribeDBSnapshots"),
    ] {
        let signed = signers(&runner, service, operation);
        assert!(!signed.is_empty(), "{service} {operation}");
        assert!(
            signed.iter().all(|r| r == ROLE),
            "{service} {operation}: {signed:?}"
        );
    }
    assert_eq!(db.history().await.len(), 3);
}

#[tokio::test]
async fn without_the_role_the_other_accounts_secret_is_refused_and_nothing_runs() {
    let runner = Runner::default().await;
    let db = production_database(&runner).await;
    let run = runner
        .run_in_account(
            TARGET,
            &db,
            &schema(),
            json!({"backup": {"snapshot": true}}),
        )
        .await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "PermissionError", "{message}");
    assert!(message.contains("AccessDenied"), "{message}");
    assert!(runner.function.aws.rds.snapshots().is_empty());
    assert_nothing_ran(&db).await;
}

#[tokio::test]
async fn a_trust_policy_without_us_is_a_permission_error_naming_the_role() {
    let runner = Runner::default().await;
    let db = production_database(&runner).await;
    let run = runner
        .run_in_account(
            TARGET,
            &db,
            &schema(),
            json!({"role_arn": "arn:aws:iam::222222222222:role/someone-elses", "external_id": "tooling-42"}),
        )
        .await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "PermissionError");
    assert!(
        message.contains("cannot assume arn:aws:iam::222222222222:role/someone-elses")
            && message.contains("trust policy"),
        "{message}"
    );
    assert_nothing_ran(&db).await;
}
