//! `repair`: re-records the checksum of applied migrations whose files were edited after they
//! ran, never silently. A new checksum is taken when the file changed only in comments or
//! whitespace (its fingerprint, recorded when it was applied, is unchanged: `fingerprint`), or
//! when `accept_checksums` names the version; anything else refuses the whole repair before
//! any change. Each re-recorded checksum leaves an audit row in `_sqlx_migrations_repairs`
//! (version, old and new checksum, the job, why, when). Under the migration lock, in one
//! transaction.

use crate::database::{describe_sql_error, with_conn, Database};
use crate::fingerprint;
use crate::history::{self, AppliedMigration};
use crate::params::Params;
use crate::run_state::RunState;
use crate::source::{Migration, MigrationSet};
use crate::target::ConnectTarget;
use crate::time_budget::lock_session;
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use std::collections::BTreeMap;

/// One checksum to re-record, and why.
struct Repair<'a> {
    row: &'a AppliedMigration,
    /// The file as it is now: its checksum and fingerprint are recorded.
    migration: &'a Migration,
    new_checksum: &'a [u8],
    file: &'a str,
    reason: &'static str,
}

/// Repairs under the migration lock.
pub async fn repair(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
) -> Result<JobOutcome<RunState>, JobError> {
    let lock = lock_session(job, db).await?;
    let result = repair_locked(job, set, target, db).await;
    db.unlock(lock).await;
    result
}

async fn repair_locked(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
) -> Result<JobOutcome<RunState>, JobError> {
    history::ensure_table(db).await?;
    let applied = history::read(db).await?;
    let fingerprints = read_fingerprints(db).await?;
    let accepted = &job.params.accept_checksums;
    let mut repairs = Vec::new();
    let mut refused = Vec::new();
    for row in applied.iter().filter(|r| r.success) {
        let Some(migration) = set.migrations.get(&row.version) else {
            continue;
        };
        if migration.checksum == row.checksum {
            continue;
        }
        let proof = fingerprints.get(&row.version).map(|recorded| {
            fingerprint::of(&migration.sql, target.engine).as_ref() == Some(recorded)
        });
        let reason = if accepted.contains(&row.version) {
            "accepted by accept_checksums"
        } else {
            match proof {
                Some(true) => "only comments or whitespace changed",
                Some(false) => {
                    refused.push(format!(
                        "migration {} (`{}`) changed beyond comments and whitespace; restore the file and put the change in a new migration, or name {} in `accept_checksums` to accept the file as it is",
                        migration.label(), migration.file, row.version
                    ));
                    continue;
                }
                None => {
                    refused.push(format!(
                        "migration {} (`{}`) has no recorded fingerprint (applied by sqlx, or before this runner recorded them), so no edit can be proved harmless; name {} in `accept_checksums` to accept the file as it is",
                        migration.label(), migration.file, row.version
                    ));
                    continue;
                }
            }
        };
        repairs.push(Repair {
            row,
            migration,
            new_checksum: &migration.checksum,
            file: &migration.file,
            reason,
        });
    }
    let stray: Vec<String> = accepted
        .iter()
        .filter(|v| !repairs.iter().any(|r| r.row.version == **v))
        .map(|v| v.to_string())
        .collect();
    if !stray.is_empty() && refused.is_empty() {
        return Err(JobError::config(format!(
            "`accept_checksums` names {}, which {} not an applied migration whose file changed; nothing was repaired",
            stray.join(", "),
            if stray.len() == 1 { "is" } else { "are" }
        )));
    }
    if !refused.is_empty() {
        return Err(JobError::failed(format!(
            "repair refused for the {}; nothing was changed:\n- {}",
            target.describe(),
            refused.join("\n- ")
        )));
    }
    if repairs.is_empty() {
        return Ok(JobOutcome::Succeeded(
            JobSuccess::new(format!(
                "Nothing to repair: every applied migration's file matches its checksum in the {}.",
                target.describe()
            ))
            .variable("RepairedCount", 0),
        ));
    }
    record(db, &repairs, &job.id).await?;
    let lines: Vec<String> = repairs
        .iter()
        .map(|r| {
            format!(
                "{} ({}) `{}`: {} (sha384 {}… → {}…)",
                r.row.version,
                r.row.description,
                r.file,
                r.reason,
                &hex::encode(&r.row.checksum)[..12],
                &hex::encode(r.new_checksum)[..12]
            )
        })
        .collect();
    Ok(JobOutcome::Succeeded(
        JobSuccess::new(format!(
            "Repaired {} checksums in the {}, each with an audit row in {}:\n- {}",
            repairs.len(),
            target.describe(),
            history::REPAIRS,
            lines.join("\n- ")
        ))
        .variable("RepairedCount", repairs.len()),
    ))
}

/// The recorded fingerprints, by version.
async fn read_fingerprints(db: &mut Database) -> Result<BTreeMap<i64, Vec<u8>>, JobError> {
    let rows: Result<Vec<(i64, Vec<u8>)>, sqlx::Error> = with_conn!(db, conn => sqlx::query_as(
        "SELECT version, fingerprint FROM _sqlx_migrations_fingerprints"
    )
    .fetch_all(conn)
    .await);
    rows.map(|rows| rows.into_iter().collect()).map_err(|e| {
        JobError::failed(format!(
            "could not read {}: {}",
            history::FINGERPRINTS,
            describe_sql_error(&e)
        ))
    })
}

/// The new checksums, their audit rows and fingerprints, in one transaction.
async fn record(db: &mut Database, repairs: &[Repair<'_>], job_id: &str) -> Result<(), JobError> {
    let (update, audit) = match db {
        Database::Postgres(_) => (
            "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
            "INSERT INTO _sqlx_migrations_repairs (version, old_checksum, new_checksum, job_id, reason) VALUES ($1, $2, $3, $4, $5)",
        ),
        _ => (
            "UPDATE _sqlx_migrations SET checksum = ? WHERE version = ? AND checksum = ?",
            "INSERT INTO _sqlx_migrations_repairs (version, old_checksum, new_checksum, job_id, reason) VALUES (?, ?, ?, ?, ?)",
        ),
    };
    let failed = |e: sqlx::Error| {
        JobError::failed(format!(
            "the repair failed and was rolled back; nothing was changed: {}",
            describe_sql_error(&e)
        ))
    };
    db.execute("BEGIN").await.map_err(failed)?;
    let outcome: Result<(), sqlx::Error> = async {
        for repair in repairs {
            let updated = with_conn!(&mut *db, conn => sqlx::query(update)
                .bind(repair.new_checksum)
                .bind(repair.row.version)
                .bind(&repair.row.checksum)
                .execute(conn)
                .await
                .map(|done| done.rows_affected()))?;
            if updated != 1 {
                return Err(sqlx::Error::Protocol(format!(
                    "migration {}'s history row changed while repairing it",
                    repair.row.version
                )));
            }
            with_conn!(&mut *db, conn => sqlx::query(audit)
                .bind(repair.row.version)
                .bind(&repair.row.checksum)
                .bind(repair.new_checksum)
                .bind(job_id)
                .bind(repair.reason)
                .execute(conn)
                .await
                .map(|_| ()))?;
            // From now on the file as it is is what the migration did.
            history::record_fingerprint(db, repair.migration).await?;
        }
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => db.execute("COMMIT").await.map_err(failed),
        Err(e) => {
            let _ = db.execute("ROLLBACK").await;
            Err(failed(e))
        }
    }
}
