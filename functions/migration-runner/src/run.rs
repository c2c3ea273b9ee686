//! The modes over one connection: `apply` (locked, resumable) here, `plan` and `verify`
//! (read-only: no lock, no history table created) in `inspect`, `revert` in `revert`.

use crate::database::{Database, MigrationLock};
use crate::params::{Mode, Params};
use crate::plan::{version_text, MigrationPlan};
use crate::snapshot::{self, SnapshotRecord, SnapshotStep};
use crate::source::MigrationSet;
use crate::target::ConnectTarget;
use crate::{history, inspect, lint, revert, Clients};
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime};

/// How many recent history rows judge how long a migration may take.
const RECENT_DURATIONS: usize = 20;
/// Time kept back before each migration; below it the run hands over to the next invocation.
/// A quarter of the run's time, at most this; `MIGRATION_TIME_MARGIN_SECONDS` overrides it.
const MAX_TIME_MARGIN: Duration = Duration::from_secs(60);
/// The applied-migration lines carried in the continuation token.
const MAX_STATE_LINE_CHARS: usize = 1_200;

/// Carried across invocations of one job: what earlier invocations applied, for the summary
/// and `AppliedCount`. The database's history stays the source of truth for what is pending.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub applied: u32,
    pub from_version: Option<i64>,
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub more: u32,
    /// The restore point taken before the first migration, once started.
    #[serde(default)]
    pub snapshot: Option<SnapshotRecord>,
}

impl RunState {
    pub(crate) fn record(&mut self, line: String) {
        self.applied += 1;
        let used: usize = self.lines.iter().map(|l| l.len() + 8).sum();
        if self.more == 0 && used + line.len() <= MAX_STATE_LINE_CHARS {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn listing(&self) -> String {
        let mut text: String = self.lines.iter().map(|l| format!("\n- {l}")).collect();
        if self.more > 0 {
            text.push_str(&format!("\n- … and {} more", self.more));
        }
        text
    }
}

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
    };
    db.close().await;
    outcome
}

/// Bounds the session's statements by the time left, then takes the migration lock.
pub async fn lock_session(
    job: &Job<Params, RunState>,
    db: &mut Database,
) -> Result<MigrationLock, JobError> {
    limit_to_time_left(job, db).await?;
    let lock_wait = job.params.lock_timeout().min(job.remaining());
    db.lock(lock_wait).await
}

/// A statement must end (and fail cleanly) before the Lambda does: set again before each
/// migration, as the time left shrinks.
pub async fn limit_to_time_left(
    job: &Job<Params, RunState>,
    db: &mut Database,
) -> Result<(), JobError> {
    let params = &job.params;
    let statement_timeout = params
        .statement_timeout()
        .min(job.remaining().saturating_sub(Duration::from_secs(2)))
        .max(Duration::from_secs(1));
    db.limit_session(
        statement_timeout,
        params.lock_timeout().max(Duration::from_secs(1)),
    )
    .await
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
        let source = target.snapshot_source(&params.backup)?;
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
        if index > 0 {
            limit_to_time_left(job, db).await?;
        }
        tracing::info!(version = migration.version, description = %migration.description, "applying migration");
        let took = history::apply(db, migration).await.map_err(|e| {
            let mut e = if state.applied == 0 {
                e
            } else {
                JobError::failed(format!(
                    "{}\nApplied before the failure (kept):{}",
                    e.message,
                    state.listing()
                ))
            };
            e.message.push_str(&restore_point);
            e
        })?;
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

/// The time a migration may need before it starts: the margin, or the longest recent
/// migration with a quarter to spare.
pub(crate) fn time_needed(margin: Duration, longest: Duration) -> Duration {
    margin.max(longest.mul_f64(1.25) + Duration::from_secs(1))
}

pub(crate) fn time_margin(remaining_at_start: Duration) -> Duration {
    std::env::var("MIGRATION_TIME_MARGIN_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| MAX_TIME_MARGIN.min(remaining_at_start / 4))
}
