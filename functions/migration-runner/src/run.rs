//! The three modes over one connection: `apply` (locked, resumable), `plan` and `verify`
//! (read-only: no lock, no history table created).

use crate::database::Database;
use crate::history;
use crate::params::{Mode, Params};
use crate::plan::MigrationPlan;
use crate::source::MigrationSet;
use crate::target::ConnectTarget;
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
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
    pub from_version: i64,
    #[serde(default)]
    pub lines: Vec<String>,
    #[serde(default)]
    pub more: u32,
}

impl RunState {
    fn record(&mut self, line: String) {
        self.applied += 1;
        let used: usize = self.lines.iter().map(|l| l.len() + 8).sum();
        if self.more == 0 && used + line.len() <= MAX_STATE_LINE_CHARS {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    fn listing(&self) -> String {
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
) -> Result<JobOutcome<RunState>, JobError> {
    let mut db = Database::connect(target, CONNECT_TIMEOUT.min(job.remaining())).await?;
    let outcome = match job.params.mode {
        Mode::Apply => apply(job, set, target, &mut db).await,
        Mode::Plan | Mode::Verify => inspect(job, set, target, &mut db).await,
    };
    db.close().await;
    outcome
}

async fn apply(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
) -> Result<JobOutcome<RunState>, JobError> {
    let params = &job.params;
    // A statement must end (and fail cleanly) before the Lambda does.
    let statement_timeout = params
        .statement_timeout()
        .min(job.remaining().saturating_sub(Duration::from_secs(2)))
        .max(Duration::from_secs(1));
    db.limit_session(
        statement_timeout,
        params.lock_timeout().max(Duration::from_secs(1)),
    )
    .await?;
    let lock_wait = params.lock_timeout().min(job.remaining());
    let lock = db.lock(lock_wait).await?;
    let result = apply_locked(job, set, target, db).await;
    db.unlock(lock).await;
    result
}

async fn apply_locked(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
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
    let mut state = job.state.clone().unwrap_or(RunState {
        from_version: plan.schema_version,
        ..RunState::default()
    });
    let margin = time_margin(job.remaining());
    let total = plan.pending.len();
    let mut schema_version = plan.schema_version;
    for (index, migration) in plan.pending.iter().enumerate() {
        // At least one migration per invocation, so a short timeout still makes progress.
        if index > 0 && job.remaining() < margin {
            let done = state.applied as usize;
            let summary = format!(
                "Applied {} of {} migrations so far to the {}; continuing in the next invocation.{}",
                done,
                done + total - index,
                target.describe(),
                state.listing()
            );
            let percent = (done * 100 / (done + total - index).max(1)).min(99) as u8;
            return Ok(JobOutcome::Continue {
                state,
                summary,
                percent_complete: Some(percent),
            });
        }
        tracing::info!(version = migration.version, description = %migration.description, "applying migration");
        let took = history::apply(db, migration).await.map_err(|e| {
            if state.applied == 0 {
                e
            } else {
                JobError::failed(format!(
                    "{}\nApplied before the failure (kept):{}",
                    e.message,
                    state.listing()
                ))
            }
        })?;
        tracing::info!(
            version = migration.version,
            took_ms = took.as_millis() as u64,
            "migration applied"
        );
        state.record(format!("{}: {} ms", migration.label(), took.as_millis()));
        schema_version = schema_version.max(migration.version);
    }
    let summary = if state.applied == 0 {
        format!(
            "Nothing to apply: the {} is at schema version {schema_version} ({} migrations applied).",
            target.describe(),
            plan.applied_count
        )
    } else {
        format!(
            "Applied {} migrations to the {}; schema version {} → {schema_version}.{}",
            state.applied,
            target.describe(),
            state.from_version,
            state.listing()
        )
    };
    Ok(JobOutcome::Succeeded(
        JobSuccess::new(summary)
            .variable("SchemaVersion", schema_version)
            .variable("AppliedCount", state.applied)
            .variable("PendingCount", 0),
    ))
}

async fn inspect(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
) -> Result<JobOutcome<RunState>, JobError> {
    let params = &job.params;
    let history = history::read(db).await?;
    let plan = MigrationPlan::new(
        set,
        &history,
        params.target_version,
        params.allow_out_of_order,
    );
    let pending_lines: Vec<String> = plan
        .pending
        .iter()
        .map(|m| {
            format!(
                "{} `{}` sha384:{}{}",
                m.label(),
                m.file,
                hex::encode(&m.checksum),
                if m.no_transaction {
                    " (no-transaction)"
                } else {
                    ""
                }
            )
        })
        .collect();
    match params.mode {
        Mode::Verify => {
            let mut problems: Vec<String> = plan.problems.iter().map(|p| p.to_string()).collect();
            problems.extend(
                plan.pending
                    .iter()
                    .map(|m| format!("migration {} is pending", m.label())),
            );
            if !problems.is_empty() {
                return Err(JobError::failed(format!(
                    "verification failed for the {}:\n{}",
                    target.describe(),
                    problems.join("\n")
                )));
            }
            Ok(JobOutcome::Succeeded(
                JobSuccess::new(format!(
                    "Verified the {}: schema version {}, all {} migrations applied and unmodified.",
                    target.describe(),
                    plan.schema_version,
                    plan.applied_count
                ))
                .variable("SchemaVersion", plan.schema_version)
                .variable("AppliedCount", 0)
                .variable("PendingCount", 0),
            ))
        }
        _ => {
            if !plan.problems.is_empty() {
                return Err(JobError::failed(format!(
                    "apply would refuse the {}:\n{}",
                    target.describe(),
                    plan.problems_message()
                )));
            }
            let summary = if pending_lines.is_empty() {
                format!(
                    "Plan: nothing pending; the {} is at schema version {}.",
                    target.describe(),
                    plan.schema_version
                )
            } else {
                format!(
                    "Plan: {} pending migrations for the {} (schema version {}); nothing was changed:\n- {}",
                    pending_lines.len(),
                    target.describe(),
                    plan.schema_version,
                    pending_lines.join("\n- ")
                )
            };
            Ok(JobOutcome::Succeeded(
                JobSuccess::new(summary)
                    .variable("SchemaVersion", plan.schema_version)
                    .variable("AppliedCount", 0)
                    .variable("PendingCount", plan.pending.len()),
            ))
        }
    }
}

fn time_margin(remaining_at_start: Duration) -> Duration {
    std::env::var("MIGRATION_TIME_MARGIN_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or_else(|| MAX_TIME_MARGIN.min(remaining_at_start / 4))
}
