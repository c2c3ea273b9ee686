//! A local RDS endpoint (awsQuery, as the real service and its SDK speak it) for
//! migration-runner's restore point: DB instances and Aurora clusters to describe, snapshots
//! of them to create and describe.
//!
//! A snapshot is `creating` for a set number of looks (`DescribeDBSnapshots`), then
//! `available`, so a run shows the continuation a real snapshot causes. An instance backed by
//! a SQLite file is really copied when its snapshot is taken, so a restore can be shown: the
//! copy is [`LocalSnapshot::file`].

use crate::calls::CallLog;
use crate::faults::Faults;
use crate::service::{AwsJson, AwsQuery, JsonService, ServiceError};
use crate::sts::LOCAL_ACCOUNT;
use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How many `Describe…Snapshots` calls see a new snapshot `creating` unless told otherwise.
const DEFAULT_LOOKS_WHILE_CREATING: u32 = 1;

/// The local RDS endpoint's state: instances, clusters, snapshots.
#[derive(Clone)]
pub struct LocalRds {
    /// Instances, clusters, snapshots.
    state: Arc<Mutex<RdsState>>,
    /// Where SQLite snapshots are copied.
    snapshot_dir: PathBuf,
    /// Every call answered.
    calls: CallLog,
    /// Planned failures.
    faults: Faults,
    /// Which account a caller's credentials act in.
    accounts: crate::sts::Accounts,
}

/// The endpoint's state.
#[derive(Default)]
struct RdsState {
    /// Instances and clusters by identifier.
    databases: BTreeMap<String, LocalDatabase>,
    /// Snapshots by identifier.
    snapshots: BTreeMap<String, LocalSnapshot>,
    /// How many looks a new snapshot stays `creating` (default 1).
    looks_while_creating: Option<u32>,
}

/// A DB instance or Aurora cluster.
struct LocalDatabase {
    /// An Aurora cluster.
    cluster: bool,
    /// Its engine.
    engine: String,
    /// Its status.
    status: String,
    /// The SQLite file it is, for a real snapshot.
    sqlite_file: Option<PathBuf>,
    /// The account it is in; `None`: the one the process's own role sees.
    account: Option<String>,
}

impl LocalDatabase {
    /// Whether a caller acting in `account` sees it.
    fn seen_from(&self, account: &str) -> bool {
        match &self.account {
            Some(own) => own == account,
            None => account == LOCAL_ACCOUNT,
        }
    }
}

/// A snapshot the endpoint holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalSnapshot {
    /// Its identifier.
    pub id: String,
    /// The instance or cluster it is of.
    pub of: String,
    /// Of an Aurora cluster.
    pub cluster: bool,
    /// `creating`, then `available`.
    pub status: String,
    /// The copy of the SQLite database, for instances backed by one.
    pub file: Option<PathBuf>,
    /// `Describe…Snapshots` calls left while `creating`.
    looks_left: u32,
    /// The account of the caller that took it.
    pub account: String,
}

impl LocalRds {
    /// Snapshots of SQLite-backed instances are copied into `snapshot_dir`.
    pub fn new(snapshot_dir: &Path, calls: CallLog, faults: Faults) -> Self {
        Self {
            state: Arc::default(),
            snapshot_dir: snapshot_dir.to_path_buf(),
            calls,
            faults,
            accounts: crate::sts::Accounts::default(),
        }
    }

    /// Answers each call with the databases and snapshots of the account its signer acts in.
    pub fn with_accounts(mut self, sts: crate::sts::LocalSts) -> Self {
        self.accounts = crate::sts::Accounts::from_sts(sts);
        self
    }

    /// Declares an `available` DB instance, optionally backed by a SQLite file.
    pub fn add_instance(&self, id: &str, engine: &str, sqlite_file: Option<&Path>) {
        self.add(id, false, engine, sqlite_file, None);
    }

    /// As [`LocalRds::add_instance`], in `account` (seen only by callers acting there).
    pub fn add_instance_in(
        &self,
        account: &str,
        id: &str,
        engine: &str,
        sqlite_file: Option<&Path>,
    ) {
        self.add(id, false, engine, sqlite_file, Some(account));
    }

    /// Declares an `available` Aurora cluster.
    pub fn add_cluster(&self, id: &str, engine: &str) {
        self.add(id, true, engine, None, None);
    }

    /// Adds an instance or a cluster.
    fn add(
        &self,
        id: &str,
        cluster: bool,
        engine: &str,
        sqlite_file: Option<&Path>,
        account: Option<&str>,
    ) {
        self.with(|s| {
            s.databases.insert(
                id.to_ascii_lowercase(),
                LocalDatabase {
                    cluster,
                    engine: engine.to_string(),
                    status: "available".into(),
                    sqlite_file: sqlite_file.map(Path::to_path_buf),
                    account: account.map(str::to_owned),
                },
            );
        });
    }

    /// Sets an instance's or cluster's status (`stopped`, `modifying`…).
    pub fn set_status(&self, id: &str, status: &str) {
        self.with(|s| {
            if let Some(db) = s.databases.get_mut(&id.to_ascii_lowercase()) {
                db.status = status.to_string();
            }
        });
    }

    /// How many looks see a new snapshot `creating` before it is `available`.
    pub fn set_looks_while_creating(&self, looks: u32) {
        self.with(|s| s.looks_while_creating = Some(looks));
    }

    /// Every snapshot, by identifier.
    pub fn snapshots(&self) -> Vec<LocalSnapshot> {
        self.with(|s| s.snapshots.values().cloned().collect())
    }

    /// The endpoint's routes (awsQuery).
    pub fn router(&self) -> Router {
        crate::service::router(self.clone(), self.calls.clone(), self.faults.clone())
    }

    /// Runs `f` on the state, under its lock.
    fn with<T>(&self, f: impl FnOnce(&mut RdsState) -> T) -> T {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }

    /// `DescribeDBInstances`/`DescribeDBClusters`.
    fn describe_database(
        &self,
        account: &str,
        request: &Value,
        cluster: bool,
    ) -> Result<Value, ServiceError> {
        let key = if cluster {
            "DBClusterIdentifier"
        } else {
            "DBInstanceIdentifier"
        };
        let wanted = field(request, key).map(|s| s.to_ascii_lowercase());
        self.with(|s| {
            let mut found = Vec::new();
            for (id, db) in &s.databases {
                if db.cluster != cluster
                    || !db.seen_from(account)
                    || wanted.as_ref().is_some_and(|w| w != id)
                {
                    continue;
                }
                found.push(if cluster {
                    json!({"DBClusterIdentifier": id, "Engine": db.engine, "Status": db.status})
                } else {
                    json!({"DBInstanceIdentifier": id, "Engine": db.engine, "DBInstanceStatus": db.status})
                });
            }
            if found.is_empty() && wanted.is_some() {
                return Err(not_found(cluster, &wanted.unwrap_or_default()));
            }
            Ok(if cluster {
                json!({"DBClusters": {"DBCluster": found}})
            } else {
                json!({"DBInstances": {"DBInstance": found}})
            })
        })
    }

    /// `CreateDBSnapshot`/`CreateDBClusterSnapshot`.
    fn create_snapshot(
        &self,
        account: &str,
        request: &Value,
        cluster: bool,
    ) -> Result<Value, ServiceError> {
        let (id_key, of_key) = if cluster {
            ("DBClusterSnapshotIdentifier", "DBClusterIdentifier")
        } else {
            ("DBSnapshotIdentifier", "DBInstanceIdentifier")
        };
        let id = field(request, id_key)
            .ok_or_else(|| ServiceError::missing_member(id_key))?
            .to_ascii_lowercase();
        let of = field(request, of_key)
            .ok_or_else(|| ServiceError::missing_member(of_key))?
            .to_ascii_lowercase();
        self.with(|s| {
            let db = s
                .databases
                .get(&of)
                .filter(|db| db.cluster == cluster && db.seen_from(account))
                .ok_or_else(|| not_found(cluster, &of))?;
            if s.snapshots.contains_key(&id) {
                let code = if cluster {
                    "DBClusterSnapshotAlreadyExistsFault"
                } else {
                    "DBSnapshotAlreadyExists"
                };
                return Err(ServiceError::client(
                    code,
                    format!("Cannot create the snapshot because a snapshot with the identifier {id} already exists."),
                ));
            }
            if db.status != "available" {
                let code = if cluster {
                    "InvalidDBClusterStateFault"
                } else {
                    "InvalidDBInstanceState"
                };
                return Err(ServiceError::client(
                    code,
                    format!("{of} is not currently in the available state."),
                ));
            }
            let file = match &db.sqlite_file {
                Some(source) => Some(copy_sqlite(source, &self.snapshot_dir, &id)?),
                None => None,
            };
            let snapshot = LocalSnapshot {
                id: id.clone(),
                of,
                cluster,
                status: "creating".into(),
                file,
                looks_left: s.looks_while_creating.unwrap_or(DEFAULT_LOOKS_WHILE_CREATING),
                account: account.to_string(),
            };
            let described = describe_snapshot(&snapshot, &db.engine);
            s.snapshots.insert(id, snapshot);
            Ok(if cluster {
                json!({"DBClusterSnapshot": described})
            } else {
                json!({"DBSnapshot": described})
            })
        })
    }

    /// `DescribeDBSnapshots`/`DescribeDBClusterSnapshots`.
    fn describe_snapshots(
        &self,
        account: &str,
        request: &Value,
        cluster: bool,
    ) -> Result<Value, ServiceError> {
        let id_key = if cluster {
            "DBClusterSnapshotIdentifier"
        } else {
            "DBSnapshotIdentifier"
        };
        let wanted = field(request, id_key).map(|s| s.to_ascii_lowercase());
        self.with(|s| {
            let mut found = Vec::new();
            let engines: BTreeMap<String, String> = s
                .databases
                .iter()
                .map(|(id, db)| (id.clone(), db.engine.clone()))
                .collect();
            for (id, snapshot) in s.snapshots.iter_mut() {
                if snapshot.cluster != cluster
                    || snapshot.account != account
                    || wanted.as_ref().is_some_and(|w| w != id)
                {
                    continue;
                }
                // Each look brings a creating snapshot closer to available.
                if snapshot.status == "creating" {
                    if snapshot.looks_left == 0 {
                        snapshot.status = "available".into();
                    } else {
                        snapshot.looks_left -= 1;
                    }
                }
                let engine = engines.get(&snapshot.of).cloned().unwrap_or_default();
                found.push(describe_snapshot(snapshot, &engine));
            }
            if found.is_empty() {
                if let Some(id) = wanted {
                    let code = if cluster {
                        "DBClusterSnapshotNotFoundFault"
                    } else {
                        "DBSnapshotNotFound"
                    };
                    return Err(ServiceError::new(
                        StatusCode::NOT_FOUND,
                        code,
                        format!("Snapshot {id} not found."),
                    ));
                }
            }
            Ok(if cluster {
                json!({"DBClusterSnapshots": {"DBClusterSnapshot": found}})
            } else {
                json!({"DBSnapshots": {"DBSnapshot": found}})
            })
        })
    }
}

impl JsonService for LocalRds {
    const NAME: &'static str = "rds";
    const TARGET_PREFIX: &'static str = "";
    const AWS_JSON: AwsJson = AwsJson::V1_0;
    const AWS_QUERY: Option<AwsQuery> = Some(AwsQuery {
        xmlns: "http://rds.amazonaws.com/doc/2014-10-31/",
    });

    fn dispatch(&self, operation: &str, request: &Value) -> Result<Value, ServiceError> {
        self.dispatch_as(operation, request, None)
    }

    fn dispatch_as(
        &self,
        operation: &str,
        request: &Value,
        caller: Option<&str>,
    ) -> Result<Value, ServiceError> {
        let account = self.accounts.of(caller)?;
        let account = account.as_str();
        match operation {
            "DescribeDBInstances" => self.describe_database(account, request, false),
            "DescribeDBClusters" => self.describe_database(account, request, true),
            "CreateDBSnapshot" => self.create_snapshot(account, request, false),
            "CreateDBClusterSnapshot" => self.create_snapshot(account, request, true),
            "DescribeDBSnapshots" => self.describe_snapshots(account, request, false),
            "DescribeDBClusterSnapshots" => self.describe_snapshots(account, request, true),
            other => Err(ServiceError::unknown_operation(other)),
        }
    }

    fn fault_key(&self, request: &Value) -> Option<String> {
        [
            "DBInstanceIdentifier",
            "DBClusterIdentifier",
            "DBSnapshotIdentifier",
            "DBClusterSnapshotIdentifier",
        ]
        .iter()
        .find_map(|key| field(request, key).map(str::to_string))
    }
}

/// A request parameter.
fn field<'a>(request: &'a Value, key: &str) -> Option<&'a str> {
    request
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `DBInstanceNotFound`/`DBClusterNotFoundFault`.
fn not_found(cluster: bool, id: &str) -> ServiceError {
    if cluster {
        ServiceError::new(
            StatusCode::NOT_FOUND,
            "DBClusterNotFoundFault",
            format!("DBCluster {id} not found."),
        )
    } else {
        ServiceError::new(
            StatusCode::NOT_FOUND,
            "DBInstanceNotFound",
            format!("DBInstance {id} not found."),
        )
    }
}

/// A snapshot as `Describe…Snapshots` shows it.
fn describe_snapshot(snapshot: &LocalSnapshot, engine: &str) -> Value {
    let percent = if snapshot.status == "available" {
        100
    } else {
        0
    };
    if snapshot.cluster {
        json!({"DBClusterSnapshotIdentifier": snapshot.id, "DBClusterIdentifier": snapshot.of,
               "Engine": engine, "Status": snapshot.status, "PercentProgress": percent,
               "SnapshotType": "manual"})
    } else {
        json!({"DBSnapshotIdentifier": snapshot.id, "DBInstanceIdentifier": snapshot.of,
               "Engine": engine, "Status": snapshot.status, "PercentProgress": percent,
               "SnapshotType": "manual"})
    }
}

/// Copies the database file (and its write-ahead log, when there is one) as the restore point.
fn copy_sqlite(source: &Path, dir: &Path, id: &str) -> Result<PathBuf, ServiceError> {
    let fail = |e: std::io::Error| {
        ServiceError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            format!("copying {} failed: {e}", source.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let copy = dir.join(format!("{id}.sqlite"));
    if source.exists() {
        std::fs::copy(source, &copy).map_err(fail)?;
    } else {
        std::fs::write(&copy, b"").map_err(fail)?;
    }
    let wal = PathBuf::from(format!("{}-wal", source.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display())).map_err(fail)?;
    }
    Ok(copy)
}
