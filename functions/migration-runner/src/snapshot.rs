//! The restore point taken before the first statement of an apply (README, "Snapshot"): an
//! RDS snapshot of the database's instance (`CreateDBSnapshot`) or Aurora cluster
//! (`CreateDBClusterSnapshot`), taken only when something is pending.
//!
//! The snapshot's name is derived from the database, the day (UTC), what is applied and what
//! is pending, so a retried job finds the snapshot its first attempt took (`…AlreadyExists` of
//! a snapshot of the same database is ours) instead of taking a second. Waiting for
//! `available` never blocks an invocation: each one looks once and hands over through the
//! continuation token.

use crate::history::AppliedMigration;
use crate::params::BackupParams;
use crate::source::Migration;
use crate::target::ConnectTarget;
use aws_sdk_rds::config::http::HttpResponse;
use aws_sdk_rds::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_rds::types::Tag;
use aws_sdk_rds::Client;
use pipeline_ext::job::JobError;
use pipeline_ext::sdk::SdkFailure;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// The tag every snapshot the runner takes carries, with the hash of what it was taken for.
const TAG_KEY: &str = "pipeline-ext:migration-runner";

/// What a snapshot is taken of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotSource {
    /// An RDS DB instance: `CreateDBSnapshot`.
    Instance(String),
    /// An Aurora cluster: `CreateDBClusterSnapshot`.
    Cluster(String),
}

impl SnapshotSource {
    /// What `backup.snapshot` snapshots on `target`: the parameters' identifiers, else the
    /// secret's.
    pub fn of(target: &ConnectTarget, backup: &BackupParams) -> Result<Self, JobError> {
        Self::resolve(
            backup,
            target.rds_instance.as_deref(),
            target.rds_cluster.as_deref(),
        )
    }

    /// The cluster when one is named (Aurora takes cluster snapshots only), else the instance;
    /// each from the parameters or the secret, which must agree when both give one.
    pub fn resolve(
        backup: &BackupParams,
        secret_instance: Option<&str>,
        secret_cluster: Option<&str>,
    ) -> Result<Self, JobError> {
        let cluster = agree(
            "db_cluster_identifier",
            backup.db_cluster_identifier.as_deref(),
            secret_cluster,
        )?;
        let instance = agree(
            "db_instance_identifier",
            backup.db_instance_identifier.as_deref(),
            secret_instance,
        )?;
        let source = match (cluster, instance) {
            (Some(cluster), _) => SnapshotSource::Cluster(cluster.to_string()),
            (None, Some(instance)) => SnapshotSource::Instance(instance.to_string()),
            (None, None) => return Err(JobError::config(
                "`backup.snapshot` needs the database's RDS identifier: the secret's `dbInstanceIdentifier` or `dbClusterIdentifier` (RDS-managed secrets carry it), or `backup.db_instance_identifier` / `backup.db_cluster_identifier`",
            )),
        };
        check_identifier(source.identifier())?;
        Ok(source)
    }

    /// The instance or cluster identifier.
    pub fn identifier(&self) -> &str {
        match self {
            SnapshotSource::Instance(id) | SnapshotSource::Cluster(id) => id,
        }
    }

    /// `DB instance `app``, for messages.
    pub fn describe(&self) -> String {
        match self {
            SnapshotSource::Instance(id) => format!("DB instance `{id}`"),
            SnapshotSource::Cluster(id) => format!("DB cluster `{id}`"),
        }
    }

    /// How to bring the snapshot back, for the summary.
    pub fn restore_hint(&self, snapshot_id: &str) -> String {
        match self {
            SnapshotSource::Instance(_) => format!(
                "restore with `aws rds restore-db-instance-from-db-snapshot --db-snapshot-identifier {snapshot_id} --db-instance-identifier <new-instance>`"
            ),
            SnapshotSource::Cluster(_) => format!(
                "restore with `aws rds restore-db-cluster-from-snapshot --snapshot-identifier {snapshot_id} --db-cluster-identifier <new-cluster> --engine <engine>`"
            ),
        }
    }
}

/// The parameters' identifier and the secret's, which must agree when both are given.
fn agree<'a>(
    key: &str,
    from_params: Option<&'a str>,
    from_secret: Option<&'a str>,
) -> Result<Option<&'a str>, JobError> {
    match (from_params, from_secret) {
        (Some(a), Some(b)) if a != b => Err(JobError::config(format!(
            "`backup.{key}` is `{a}` but the database secret names `{b}`; give it in one place"
        ))),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

/// RDS identifiers: 1–63 letters, digits and hyphens, a letter first, no `--`, no trailing `-`.
fn check_identifier(id: &str) -> Result<(), JobError> {
    let valid = (1..=63).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.contains("--")
        && !id.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(JobError::config(format!(
            "`{id}` is not an RDS identifier (1–63 letters, digits and hyphens, starting with a letter)"
        )))
    }
}

/// The snapshot this job took, carried in the continuation token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// The snapshot's identifier.
    pub id: String,
    /// What it is of.
    pub source: SnapshotSource,
    /// RDS reported it `available`.
    pub available: bool,
}

/// Where the snapshot stands after one look.
#[derive(Debug)]
pub enum SnapshotStep {
    /// Applying may start.
    Ready(SnapshotRecord),
    /// Still being created; look again in the next invocation.
    Waiting {
        /// The snapshot.
        record: SnapshotRecord,
        /// Its status.
        status: String,
        /// Its progress, when RDS says.
        percent: Option<i32>,
    },
}

/// The snapshot's name: `migrate-<database>-<yyyymmdd>-<hash>`, the hash over the database,
/// the applied history and the pending migrations. Same day, same database, same history,
/// same pending set: same name, which is what makes a retry find its snapshot.
pub fn snapshot_id(
    source: &SnapshotSource,
    history: &[AppliedMigration],
    pending: &[&Migration],
    now: SystemTime,
) -> String {
    let mut hash = Sha256::new();
    hash.update(format!("{source:?}\n"));
    for row in history {
        hash.update(format!(
            "applied {} {} {}\n",
            row.version,
            row.success,
            hex(&row.checksum)
        ));
    }
    for migration in pending {
        hash.update(format!(
            "pending {} {}\n",
            migration.version,
            hex(&migration.checksum)
        ));
    }
    let digest = hash.finalize();
    format!(
        "migrate-{}-{}-{}",
        source.identifier().to_ascii_lowercase(),
        utc_date(now),
        &hex(&digest)[..12]
    )
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `yyyymmdd` in UTC (days to civil date, after Howard Hinnant's algorithm).
fn utc_date(now: SystemTime) -> String {
    let days = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default() as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}")
}

/// Starts the snapshot (or finds the one a previous attempt started) and reports where it is.
/// The database must be `available`; any refusal is reported before anything is applied.
pub async fn start(
    client: &Client,
    source: &SnapshotSource,
    id: &str,
    wait: bool,
) -> Result<SnapshotStep, JobError> {
    check_source_available(client, source).await?;
    let created = match source {
        SnapshotSource::Instance(instance) => client
            .create_db_snapshot()
            .db_snapshot_identifier(id)
            .db_instance_identifier(instance)
            .tags(our_tag())
            .send()
            .await
            .map(|out| {
                out.db_snapshot().map(|s| {
                    (
                        s.status().unwrap_or("creating").to_string(),
                        s.percent_progress(),
                    )
                })
            })
            .map_err(|e| already_exists_or(e, "CreateDBSnapshot", source)),
        SnapshotSource::Cluster(cluster) => client
            .create_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(id)
            .db_cluster_identifier(cluster)
            .tags(our_tag())
            .send()
            .await
            .map(|out| {
                out.db_cluster_snapshot().map(|s| {
                    (
                        s.status().unwrap_or("creating").to_string(),
                        s.percent_progress(),
                    )
                })
            })
            .map_err(|e| already_exists_or(e, "CreateDBClusterSnapshot", source)),
    };
    let record = SnapshotRecord {
        id: id.to_string(),
        source: source.clone(),
        available: false,
    };
    match created {
        Ok(Some((status, percent))) => {
            tracing::info!(snapshot = id, status = %status, "snapshot started");
            step(record, status, percent, wait)
        }
        // Created without a description, or it existed: ask for it.
        Ok(None) | Err(Created::AlreadyExists) => poll(client, record, wait).await,
        Err(Created::Failed(error)) => Err(error),
    }
}

/// Looks at the snapshot once.
pub async fn poll(
    client: &Client,
    record: SnapshotRecord,
    wait: bool,
) -> Result<SnapshotStep, JobError> {
    let id = record.id.as_str();
    let (status, percent, of) = match &record.source {
        SnapshotSource::Instance(_) => {
            let out = client
                .describe_db_snapshots()
                .db_snapshot_identifier(id)
                .send()
                .await
                .map_err(|e| rds_error("DescribeDBSnapshots", id, &e))?;
            let snapshot = out.db_snapshots().first().ok_or_else(|| vanished(id))?;
            (
                snapshot.status().unwrap_or_default().to_string(),
                snapshot.percent_progress(),
                snapshot.db_instance_identifier().map(str::to_string),
            )
        }
        SnapshotSource::Cluster(_) => {
            let out = client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(id)
                .send()
                .await
                .map_err(|e| rds_error("DescribeDBClusterSnapshots", id, &e))?;
            let snapshot = out
                .db_cluster_snapshots()
                .first()
                .ok_or_else(|| vanished(id))?;
            (
                snapshot.status().unwrap_or_default().to_string(),
                snapshot.percent_progress(),
                snapshot.db_cluster_identifier().map(str::to_string),
            )
        }
    };
    if !of
        .as_deref()
        .is_some_and(|of| of.eq_ignore_ascii_case(record.source.identifier()))
    {
        return Err(JobError::failed(format!(
            "a snapshot named `{id}` exists but is of `{}`, not the {}; nothing was applied",
            of.unwrap_or_default(),
            record.source.describe()
        )));
    }
    step(record, status, percent, wait)
}

/// What to do next given the snapshot's status.
fn step(
    mut record: SnapshotRecord,
    status: String,
    percent: Option<i32>,
    wait: bool,
) -> Result<SnapshotStep, JobError> {
    match status.as_str() {
        "available" => {
            record.available = true;
            Ok(SnapshotStep::Ready(record))
        }
        "creating" | "pending" | "backing-up" | "copying" if !wait => Ok(SnapshotStep::Ready(record)),
        "creating" | "pending" | "backing-up" | "copying" => Ok(SnapshotStep::Waiting {
            record,
            status,
            percent,
        }),
        other => Err(JobError::failed(format!(
            "snapshot `{}` of the {} is `{other}`, not `available`; nothing was applied (the RDS events of the {} say why)",
            record.id,
            record.source.describe(),
            record.source.describe()
        ))),
    }
}

/// The snapshot is gone.
fn vanished(id: &str) -> JobError {
    JobError::failed(format!(
        "snapshot `{id}` was started but RDS no longer lists it (deleted?); nothing was applied"
    ))
}

/// The tag that marks our snapshots.
fn our_tag() -> Tag {
    Tag::builder().key(TAG_KEY).value("restore-point").build()
}

/// Refuses a source that is not `available`.
async fn check_source_available(client: &Client, source: &SnapshotSource) -> Result<(), JobError> {
    let status = match source {
        SnapshotSource::Instance(id) => {
            let out = client
                .describe_db_instances()
                .db_instance_identifier(id)
                .send()
                .await
                .map_err(|e| rds_error("DescribeDBInstances", id, &e))?;
            out.db_instances()
                .first()
                .and_then(|i| i.db_instance_status())
                .unwrap_or_default()
                .to_string()
        }
        SnapshotSource::Cluster(id) => {
            let out = client
                .describe_db_clusters()
                .db_cluster_identifier(id)
                .send()
                .await
                .map_err(|e| rds_error("DescribeDBClusters", id, &e))?;
            out.db_clusters()
                .first()
                .and_then(|c| c.status())
                .unwrap_or_default()
                .to_string()
        }
    };
    if status == "available" {
        Ok(())
    } else {
        Err(JobError::failed(format!(
            "the {} is `{status}`; a snapshot needs it `available`, so nothing was applied (start it or wait for it, then retry)",
            source.describe()
        )))
    }
}

/// How a create call ended other than with a new snapshot.
enum Created {
    /// A snapshot with that id exists.
    AlreadyExists,
    /// The call failed.
    Failed(JobError),
}

/// `AlreadyExists` for RDS's already-exists faults, else the failure.
fn already_exists_or<E>(
    error: SdkError<E, HttpResponse>,
    operation: &'static str,
    source: &SnapshotSource,
) -> Created
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match error.code() {
        Some("DBSnapshotAlreadyExists" | "DBClusterSnapshotAlreadyExistsFault") => {
            Created::AlreadyExists
        }
        _ => Created::Failed(rds_error(operation, source.identifier(), &error)),
    }
}

/// An RDS refusal, worded for the person who runs the pipeline, always before anything is applied.
fn rds_error<E>(
    operation: &'static str,
    resource: &str,
    error: &SdkError<E, HttpResponse>,
) -> JobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = SdkFailure::from_sdk("RDS", operation, error).on(resource);
    let code = failure.code().to_string();
    let (hint, config) = if failure.is_permission() {
        (format!(" The function's role may not call rds:{operation} on it: deploy the template with DatabaseInstanceIdentifier or DatabaseClusterIdentifier set, which grants the snapshot calls on that database only."), false)
    } else {
        match code.as_str() {
            "SnapshotQuotaExceeded" | "SnapshotQuotaExceededFault" => (" The account's manual snapshot quota is used up: delete old snapshots (the runner's are named `migrate-…`) or ask AWS for a higher quota.".to_string(), false),
            "DBInstanceNotFound" | "DBInstanceNotFoundFault" | "DBClusterNotFoundFault" => (" Check the identifier (the secret's dbInstanceIdentifier/dbClusterIdentifier or `backup`).".to_string(), true),
            "InvalidDBInstanceState" | "InvalidDBInstanceStateFault" | "InvalidDBClusterStateFault" => (" A snapshot needs the database `available`.".to_string(), false),
            _ => (String::new(), false),
        }
    };
    let message = format!("{failure}.{hint} Nothing was applied.");
    if failure.is_permission() {
        JobError::permission(message)
    } else if config {
        JobError::config(message)
    } else {
        JobError::failed(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_date_matches_known_days() {
        let at = |secs: u64| utc_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "19700101");
        assert_eq!(at(951_782_400), "20000229");
        assert_eq!(at(1_795_305_600), "20261122");
        assert_eq!(at(1_795_391_999), "20261122");
    }

    #[test]
    fn the_cluster_wins_and_parameters_must_agree_with_the_secret() {
        let backup = BackupParams::default();
        assert_eq!(
            SnapshotSource::resolve(&backup, Some("db-1"), Some("aurora-1")).unwrap(),
            SnapshotSource::Cluster("aurora-1".into())
        );
        let named = BackupParams {
            db_instance_identifier: Some("other".into()),
            ..BackupParams::default()
        };
        let err = SnapshotSource::resolve(&named, Some("db-1"), None).unwrap_err();
        assert!(
            err.message.contains("give it in one place"),
            "{}",
            err.message
        );
        let err = SnapshotSource::resolve(&backup, None, None).unwrap_err();
        assert!(
            err.message.contains("dbInstanceIdentifier"),
            "{}",
            err.message
        );
        for bad in ["1db", "db--1", "db-", "db_1", ""] {
            let named = BackupParams {
                db_instance_identifier: Some(bad.into()),
                ..BackupParams::default()
            };
            assert!(
                SnapshotSource::resolve(&named, None, None).is_err(),
                "{bad}"
            );
        }
    }

    fn migration(version: i64, checksum: u8) -> Migration {
        Migration {
            version,
            description: "m".into(),
            file: format!("{version}_m.sql"),
            sql: String::new(),
            checksum: vec![checksum; 48],
            no_transaction: false,
            lock_timeout: None,
            statement_timeout: None,
            pre_checks: Vec::new(),
            post_checks: Vec::new(),
            down: None,
        }
    }

    #[test]
    fn the_snapshot_id_is_stable_for_a_retry_and_changes_with_what_is_pending() {
        let source = SnapshotSource::Instance("App-DB".into());
        let now = UNIX_EPOCH + Duration::from_secs(1_795_305_600);
        let (a, b) = (migration(1, 1), migration(2, 2));
        let first = snapshot_id(&source, &[], &[&a, &b], now);
        assert_eq!(first, snapshot_id(&source, &[], &[&a, &b], now));
        assert!(first.starts_with("migrate-app-db-20261122-"), "{first}");
        assert_ne!(first, snapshot_id(&source, &[], &[&b], now));
        let next_day = now + Duration::from_secs(86_400);
        assert_ne!(first, snapshot_id(&source, &[], &[&a, &b], next_day));
        assert!(check_identifier(&first[..first.len().min(63)]).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn snapshot_ids_are_valid_rds_identifiers(
            source in "[a-zA-Z][a-zA-Z0-9]{0,20}(-[a-zA-Z0-9]{1,8}){0,4}",
            secs in 0u64..8_000_000_000,
            versions in proptest::collection::vec(0i64..i64::MAX, 0..20),
        ) {
            let source = SnapshotSource::Instance(source);
            let pending: Vec<Migration> =
                versions.iter().map(|v| migration(*v, (*v % 251) as u8)).collect();
            let refs: Vec<&Migration> = pending.iter().collect();
            let id = snapshot_id(&source, &[], &refs, UNIX_EPOCH + Duration::from_secs(secs));
            proptest::prop_assert!(id.len() <= 255);
            proptest::prop_assert!(id.starts_with("migrate-"));
            proptest::prop_assert!(id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", id);
            proptest::prop_assert!(!id.contains("--") && !id.ends_with('-'), "{}", id);
        }

        #[test]
        fn utc_dates_are_well_formed_and_never_go_back(a in 0u64..8_000_000_000, step in 0u64..100_000_000) {
            let day = |secs: u64| utc_date(UNIX_EPOCH + Duration::from_secs(secs));
            let (first, later) = (day(a), day(a + step));
            proptest::prop_assert_eq!(first.len(), 8);
            let month: u32 = first[4..6].parse().unwrap();
            let dom: u32 = first[6..8].parse().unwrap();
            proptest::prop_assert!((1..=12).contains(&month) && (1..=31).contains(&dom), "{}", first);
            proptest::prop_assert!(later >= first, "{} then {}", first, later);
        }
    }
}
