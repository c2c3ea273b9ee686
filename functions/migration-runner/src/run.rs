//! The modes over one connection: `apply` (locked, resumable) here, `plan` and `verify`
//! (read-only: no lock, no history table created) in `inspect`, `revert` in `revert`.

use crate::checks;
use crate::database::Database;
use crate::history::ApplyError;
use crate::params::{Mode, Params};
use crate::plan::{version_text, MigrationPlan};
use crate::run_state::RunState;
use crate::snapshot::{self, SnapshotStep};
use crate::source::MigrationSet;
use crate::target::ConnectTarget;
use crate::time_budget::{jittered, lock_session, time_margin, time_needed, SessionLimits};
use crate::{history, inspect, lint, repair, revert, Clients};
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use std::time::SystemTime;

/// How many recent history rows judge how long a migration may take.
const RECENT_DURATIONS: usize = 20;
pub async fn run(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    mut db: Database,
    clients: &Clients,
) -> Result<JobOutcome<RunState>, JobError> {
    let outcome = match job.params.mode {
        Mode::Apply if !job.params.dry_run => apply(job, set, target, &mut db, clients).await,
        Mode::Apply | Mode::Plan | Mode::Verify => {
            inspect::inspect(job, set, target, &mut db).await
        }
        Mode::Revert => revert::revert(job, set, target, &mut db).await,
        Mode::Repair => repair::repair(job, set, target, &mut db).await,
    };
    db.close().await;
    outcome
}

async fn apply(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
    clients: &Clients,
) -> Result<JobOutcome<RunState>, JobError> {
    let lock = lock_session(job, db).await?;
    let result = apply_locked(job, set, target, db, clients).await;
    db.unlock(lock).await;
    result
}

async fn apply_locked(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
    clients: &Clients,
) -> Result<JobOutcome<RunState>, JobError> {
    let params = &job.params;
    history::ensure_table(db).await?;
    let history = history::read(db).await?;
    let plan = MigrationPlan::new(
        set,
        &history,
        params.target_version,
        params.allow_out_of_order,
    );
    if !plan.problems.is_empty() {
        return Err(JobError::failed(format!(
            "refusing to apply to the {}:\n{}",
            target.describe(),
            plan.problems_message()
        )));
    }
    let report = lint::check(&plan.pending, target.engine, &params.lint_policy()?)?;
    if report.errors().next().is_some() {
        return Err(JobError::failed(format!(
            "refusing to apply to the {}: the lint policy denies {} changes; nothing was applied:\n- {}",
            target.describe(),
            report.errors().count(),
            report.lines().join("\n- ")
        )));
    }
    let mut state = job.state.clone().unwrap_or(RunState {
        from_version: plan.schema_version,
        ..RunState::default()
    });
    if params.backup.snapshot {
        let source = crate::snapshot::SnapshotSource::of(target, &params.backup)?;
        if !plan.pending.is_empty() {
            let step = match state.snapshot.clone() {
                Some(record) if record.available || !params.backup.wait => {
                    SnapshotStep::Ready(record)
                }
                Some(record) => snapshot::poll(&clients.rds, record, true).await?,
                None => {
                    let id =
                        snapshot::snapshot_id(&source, &history, &plan.pending, SystemTime::now());
                    snapshot::start(&clients.rds, &source, &id, params.backup.wait).await?
                }
            };
            match step {
                SnapshotStep::Ready(record) => state.snapshot = Some(record),
                SnapshotStep::Waiting {
                    record,
                    status,
                    percent,
                } => {
                    let summary = format!(
                        "Taking snapshot `{}` of the {} before applying {} migrations to the {}: {status}{}; the migrations start once it is available.",
                        record.id,
                        record.source.describe(),
                        plan.pending.len(),
                        target.describe(),
                        percent.map(|p| format!(" ({p}%)")).unwrap_or_default()
                    );
                    state.snapshot = Some(record);
                    return Ok(JobOutcome::Continue {
                        state,
                        summary,
                        percent_complete: Some(0),
                    });
                }
            }
        }
    }
    let restore_point = state
        .snapshot
        .as_ref()
        .map(|r| {
            format!(
                "\nRestore point: snapshot `{}` of the {}{}; {}.",
                r.id,
                r.source.describe(),
                if r.available {
                    ""
                } else {
                    " (still being created when the migrations started)"
                },
                r.source.restore_hint(&r.id)
            )
        })
        .unwrap_or_default();
    let margin = time_margin(job.remaining());
    // What one migration may take, judged by the recent history and by this run.
    let mut longest = history
        .iter()
        .rev()
        .filter(|r| r.success)
        .take(RECENT_DURATIONS)
        .map(|r| r.execution_time)
        .max()
        .unwrap_or_default();
    let total = plan.pending.len();
    let mut schema_version = plan.schema_version;
    let mut limits = SessionLimits::default();
    for (index, migration) in plan.pending.iter().enumerate() {
        let needed = time_needed(margin, longest);
        // At least one migration per invocation, so a short timeout still makes progress.
        if index > 0 && job.remaining() < needed {
            let done = state.applied as usize;
            let summary = format!(
                "Applied {} of {} migrations so far to the {}; continuing in the next invocation ({} s left, the next may need {} s).{}",
                done,
                done + total - index,
                target.describe(),
                job.remaining().as_secs(),
                needed.as_secs(),
                state.listing()
            );
            let percent = (done * 100 / (done + total - index).max(1)).min(99) as u8;
            return Ok(JobOutcome::Continue {
                state,
                summary,
                percent_complete: Some(percent),
            });
        }
        limits.apply(job, db, migration).await?;
        for check in &migration.pre_checks {
            if let Err(why) = checks::run(db, check).await {
                let mut message = format!(
                    "pre-check `{}` of migration {} did not hold: {why}. The migration was not started",
                    check.file,
                    migration.label()
                );
                if state.applied > 0 {
                    message.push_str(&format!("\nApplied before it (kept):{}", state.listing()));
                }
                message.push_str(&restore_point);
                return Err(JobError::failed(message));
            }
        }
        let took = loop {
            limits.apply(job, db, migration).await?;
            tracing::info!(version = migration.version, description = %migration.description, "applying migration");
            let applied = history::apply(db, migration).await;
            limits.after(migration);
            let err = match applied {
                Ok(took) => {
                    state.lock_waits = 0;
                    break took;
                }
                Err(err) => err,
            };
            let lock_timeout = matches!(err, ApplyError::LockTimeout(_));
            let retry = lock_timeout && state.lock_waits < job.params.lock_retries;
            let mut err = JobError::from(err);
            if lock_timeout {
                err.message.push_str(&lock_wait_source(job, migration));
            }
            if !retry {
                let mut e = err;
                if state.lock_waits > 0 {
                    e.message.push_str(&format!(
                        " (gave up after {} attempts; `lock_retries` is {})",
                        state.lock_waits + 1,
                        job.params.lock_retries
                    ));
                }
                if state.applied > 0 {
                    e.message = format!(
                        "{}\nApplied before the failure (kept):{}",
                        e.message,
                        state.listing()
                    );
                }
                e.message.push_str(&restore_point);
                return Err(e);
            }
            state.lock_waits += 1;
            let wait = jittered(job.params.lock_retry_backoff(state.lock_waits));
            let why = err.message;
            if job.remaining() < wait + needed {
                let done = state.applied as usize;
                let summary = format!(
                    "Migration {} met a held table lock (attempt {} of {}); trying again in the next invocation: {why}",
                    migration.label(),
                    state.lock_waits,
                    job.params.lock_retries + 1,
                );
                let percent = (done * 100 / (done + total - index).max(1)).min(99) as u8;
                return Ok(JobOutcome::Continue {
                    state,
                    summary,
                    percent_complete: Some(percent),
                });
            }
            tracing::warn!(
                version = migration.version,
                attempt = state.lock_waits,
                wait_ms = wait.as_millis() as u64,
                reason = %why,
                "a table lock is held elsewhere; trying the migration again"
            );
            tokio::time::sleep(wait).await;
        };
        tracing::info!(
            version = migration.version,
            took_ms = took.as_millis() as u64,
            "migration applied"
        );
        longest = longest.max(took);
        state.record(format!("{}: {} ms", migration.label(), took.as_millis()));
        schema_version =
            Some(schema_version.map_or(migration.version, |v| v.max(migration.version)));
    }
    let lint_lines = if report.findings.is_empty() {
        String::new()
    } else {
        format!("\n{}:\n- {}", report.tally(), report.lines().join("\n- "))
    };
    let summary = if state.applied == 0 {
        format!(
            "Nothing to apply: the {} is at schema version {} ({} migrations applied).",
            target.describe(),
            version_text(schema_version),
            plan.applied_count
        )
    } else {
        format!(
            "Applied {} migrations to the {}; schema version {} → {}.{}{lint_lines}{restore_point}",
            state.applied,
            target.describe(),
            version_text(state.from_version),
            version_text(schema_version),
            state.listing()
        )
    };
    Ok(JobOutcome::Succeeded(
        JobSuccess::new(summary)
            .variable("SchemaVersion", version_text(schema_version))
            .variable("AppliedCount", state.applied)
            .variable("PendingCount", 0)
            .variable("LintErrors", 0)
            .variable("LintWarnings", report.warnings().count())
            .variable(
                "SnapshotId",
                state.snapshot.as_ref().map_or("none", |r| r.id.as_str()),
            ),
    ))
}

/// How long each statement of `migration` could wait for a table lock, and which setting
/// said so, for a lock-timeout failure.
fn lock_wait_source(job: &Job<Params, RunState>, migration: &crate::source::Migration) -> String {
    match migration.lock_timeout {
        Some(wait) => format!(
            " (each statement may wait {} ms for a table lock: `-- migrate:lock_timeout` in `{}`)",
            wait.as_millis(),
            migration.file
        ),
        None => format!(
            " (each statement may wait {} ms for a table lock: `table_lock_timeout_ms`)",
            job.params.table_lock_timeout().as_millis()
        ),
    }
}
