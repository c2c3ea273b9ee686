//! The restore point before apply: an RDS snapshot taken through the real SDK, against
//! pipeline-local's RDS (which copies SQLite files) and against moto_server's.

mod common;

use common::*;
use pipeline_local::faults::Fault;
use pipeline_testkit::MotoServer;
use serde_json::json;
use std::time::Duration;

fn backup() -> serde_json::Value {
    json!({"backup": {"snapshot": true, "wait": true}})
}

/// A SQLite test database that pipeline-local's RDS knows as DB instance `app-db`.
async fn sqlite_instance(runner: &Runner) -> TestDb {
    let mut db = TestDb::fresh(Engine::Sqlite).await;
    db.secret["dbInstanceIdentifier"] = json!("app-db");
    let file = db.secret["dbname"].as_str().unwrap().to_string();
    runner
        .function
        .aws
        .rds
        .add_instance("app-db", "sqlite", Some(std::path::Path::new(&file)));
    db
}

/// No migration ran: no history rows and no table but the (empty) history table.
async fn assert_nothing_applied(db: &TestDb) {
    assert!(db.history().await.is_empty());
    let tables = db.tables().await;
    assert!(tables.iter().all(|t| t == "_sqlx_migrations"), "{tables:?}");
}

fn rds_calls(runner: &Runner, operation: &str) -> usize {
    runner.function.aws.calls.count("rds", operation)
}

#[tokio::test]
async fn takes_a_snapshot_waits_for_it_then_applies() {
    let runner = Runner::default().await;
    let db = sqlite_instance(&runner).await;
    runner.function.aws.rds.set_looks_while_creating(1);
    db.execute("CREATE TABLE kept (id INTEGER PRIMARY KEY); INSERT INTO kept VALUES (7);")
        .await;

    // The plan says what apply will do first, and takes nothing.
    let mut plan_params = backup();
    plan_params["mode"] = json!("plan");
    let plan = runner.run(&db, &schema(), plan_params).await;
    assert!(
        summary(&plan).contains("Backup: apply takes an RDS snapshot of the DB instance `app-db` first and waits until it is available."),
        "{}",
        summary(&plan)
    );
    assert!(runner.function.aws.rds.snapshots().is_empty());

    let run = runner.run(&db, &schema(), backup()).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "3", "{}", summary(&run));
    // Invocation 1 starts the snapshot, 2 sees it creating, 3 sees it available and applies.
    assert_eq!(run.invocations.len(), 3, "{}", summary(&run));
    let first = run.results()[0]["executionDetails"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        first.starts_with("Taking snapshot `migrate-app-db-"),
        "{first}"
    );
    assert!(first.contains("creating"), "{first}");
    let snapshots = runner.function.aws.rds.snapshots();
    assert_eq!(snapshots.len(), 1);
    let snapshot = &snapshots[0];
    assert_eq!(vars["SnapshotId"], snapshot.id.as_str());
    assert_eq!(snapshot.status, "available");
    assert!(summary(&run).contains(&format!(
        "Restore point: snapshot `{}` of the DB instance `app-db`",
        snapshot.id
    )));
    // The copy was taken before the first statement: the old table, none of the new ones.
    let copy = snapshot.file.as_ref().unwrap();
    let restored = TestDb::at_sqlite_file(copy);
    // The history table exists (the runner reads it before anything) but is empty.
    assert_eq!(
        restored.tables().await,
        vec!["_sqlx_migrations".to_string(), "kept".to_string()]
    );
    assert!(restored.history().await.is_empty());
    assert_eq!(restored.count("SELECT id FROM kept").await, 7);
    assert!(db.tables().await.contains(&"orders".to_string()));

    // Nothing pending: no snapshot.
    let again = runner.run(&db, &schema(), backup()).await;
    assert_eq!(variables(&again)["AppliedCount"], "0");
    assert_eq!(variables(&again)["SnapshotId"], "none");
    assert_eq!(runner.function.aws.rds.snapshots().len(), 1);
    assert_eq!(rds_calls(&runner, "CreateDBSnapshot"), 1);
}

#[tokio::test]
async fn a_retried_job_finds_its_snapshot_instead_of_taking_a_second() {
    let runner = Runner::default().await;
    let db = sqlite_instance(&runner).await;
    // The first attempt starts the snapshot, then cannot look at it.
    runner
        .function
        .aws
        .faults
        .add(Fault::new("rds", "DescribeDBSnapshots", "AccessDenied", 403).times(1));
    let (kind, message) = failure(&runner.run(&db, &schema(), backup()).await);
    assert_eq!(kind, "PermissionError", "{message}");
    assert!(message.contains("Nothing was applied"), "{message}");
    assert!(message.contains("rds:DescribeDBSnapshots"), "{message}");
    assert_nothing_applied(&db).await;

    let retry = runner.run(&db, &schema(), backup()).await;
    let vars = variables(&retry);
    assert_eq!(vars["AppliedCount"], "3", "{}", summary(&retry));
    let snapshots = runner.function.aws.rds.snapshots();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(vars["SnapshotId"], snapshots[0].id.as_str());
    // The retry asked for the same snapshot and was told it exists.
    let creates = runner.function.aws.calls.of("rds", "CreateDBSnapshot");
    assert_eq!(creates.len(), 2);
    assert_eq!(creates[1].status, 400);
}

#[tokio::test]
async fn refuses_before_anything_when_the_instance_is_not_available() {
    let runner = Runner::default().await;
    let db = sqlite_instance(&runner).await;
    runner.function.aws.rds.set_status("app-db", "stopped");
    let (kind, message) = failure(&runner.run(&db, &schema(), backup()).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("the DB instance `app-db` is `stopped`; a snapshot needs it `available`, so nothing was applied"),
        "{message}"
    );
    assert!(runner.function.aws.rds.snapshots().is_empty());
    assert_nothing_applied(&db).await;
}

#[tokio::test]
async fn a_quota_error_is_explained_and_nothing_is_applied() {
    let runner = Runner::default().await;
    let db = sqlite_instance(&runner).await;
    runner.function.aws.faults.add(Fault::new(
        "rds",
        "CreateDBSnapshot",
        "SnapshotQuotaExceeded",
        400,
    ));
    let (kind, message) = failure(&runner.run(&db, &schema(), backup()).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("manual snapshot quota is used up"),
        "{message}"
    );
    assert_nothing_applied(&db).await;
}

#[tokio::test]
async fn without_an_identifier_backup_is_a_configuration_error() {
    let runner = Runner::default().await;
    let db = TestDb::fresh(Engine::Sqlite).await;
    let (kind, message) = failure(&runner.run(&db, &schema(), backup()).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(message.contains("dbInstanceIdentifier"), "{message}");
    assert_nothing_applied(&db).await;
}

/// Creates the RDS instance or cluster on moto, and a runner and Postgres database pointing
/// at it through the secret's identifier key.
async fn on_moto(moto: &MotoServer, create: &str, key: &str, id: &str) -> (Runner, TestDb) {
    let (id_flag, engine, extra): (&str, &str, &[&str]) = if create == "create-db-cluster" {
        ("--db-cluster-identifier", "aurora-postgresql", &[])
    } else {
        (
            "--db-instance-identifier",
            "postgres",
            &[
                "--db-instance-class",
                "db.t3.micro",
                "--allocated-storage",
                "20",
            ],
        )
    };
    let mut args = vec!["rds", create, id_flag, id, "--engine", engine];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[
        "--master-username",
        "admin",
        "--master-user-password",
        "not-the-real-one",
    ]);
    moto.cli(&args);
    let runner = Runner::start(
        Duration::from_secs(60),
        &[("AWS_ENDPOINT_URL_RDS", moto.url.as_str())],
    )
    .await;
    let mut db = TestDb::fresh(Engine::Postgres).await;
    db.secret[key] = json!(id);
    (runner, db)
}

/// moto_server as the independent RDS: the SDK calls and answers are those of the real protocol.
#[tokio::test]
async fn postgres_snapshot_against_moto_server() {
    let moto = MotoServer::start();
    let (runner, db) = on_moto(
        &moto,
        "create-db-instance",
        "dbInstanceIdentifier",
        "shop-db",
    )
    .await;

    let run = runner.run(&db, &schema(), backup()).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "3", "{}", summary(&run));
    let id = vars["SnapshotId"].as_str().unwrap().to_string();
    assert!(id.starts_with("migrate-shop-db-"), "{id}");
    let listed = moto.cli(&[
        "rds",
        "describe-db-snapshots",
        "--db-instance-identifier",
        "shop-db",
        "--snapshot-type",
        "manual",
    ]);
    let snapshots = listed["DBSnapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{listed}");
    assert_eq!(snapshots[0]["DBSnapshotIdentifier"], id.as_str());

    // Nothing pending: no second snapshot.
    let again = runner.run(&db, &schema(), backup()).await;
    assert_eq!(variables(&again)["SnapshotId"], "none");
    let listed = moto.cli(&[
        "rds",
        "describe-db-snapshots",
        "--db-instance-identifier",
        "shop-db",
        "--snapshot-type",
        "manual",
    ]);
    assert_eq!(listed["DBSnapshots"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn aurora_cluster_snapshot_against_moto_server_and_a_stopped_cluster_refused() {
    let moto = MotoServer::start();
    let (runner, db) = on_moto(
        &moto,
        "create-db-cluster",
        "dbClusterIdentifier",
        "aurora-shop",
    )
    .await;

    moto.cli(&[
        "rds",
        "stop-db-cluster",
        "--db-cluster-identifier",
        "aurora-shop",
    ]);
    let (kind, message) = failure(&runner.run(&db, &schema(), backup()).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("the DB cluster `aurora-shop` is `stopped`"),
        "{message}"
    );
    assert_nothing_applied(&db).await;

    moto.cli(&[
        "rds",
        "start-db-cluster",
        "--db-cluster-identifier",
        "aurora-shop",
    ]);
    let run = runner.run(&db, &schema(), backup()).await;
    let vars = variables(&run);
    assert_eq!(vars["AppliedCount"], "3", "{}", summary(&run));
    let listed = moto.cli(&[
        "rds",
        "describe-db-cluster-snapshots",
        "--db-cluster-identifier",
        "aurora-shop",
        "--snapshot-type",
        "manual",
    ]);
    let snapshots = listed["DBClusterSnapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "{listed}");
    assert_eq!(
        snapshots[0]["DBClusterSnapshotIdentifier"],
        vars["SnapshotId"]
    );
    assert!(summary(&run).contains("restore-db-cluster-from-snapshot"));
}
