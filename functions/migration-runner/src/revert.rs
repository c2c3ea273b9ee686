//! `revert`: runs `.down.sql` files from the highest applied version down to, not including,
//! `target_version` (sqlx's `migrate revert --target-version`), under the same lock and with
//! the same refusals as `apply`, handing over to the next invocation when time runs short.

use crate::database::Database;
use crate::history::{self, AppliedMigration};
use crate::params::Params;
use crate::plan::{version_text, MigrationPlan, Problem};
use crate::run_state::RunState;
use crate::source::{Migration, MigrationSet};
use crate::target::ConnectTarget;
use crate::time_budget::{limit_to_time_left, lock_session, time_margin, time_needed};
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};
use std::time::Duration;

pub async fn revert(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
) -> Result<JobOutcome<RunState>, JobError> {
    if job.params.dry_run {
        let history = history::read(db).await?;
        let steps = revert_steps(job, set, &history, target)?;
        return Ok(JobOutcome::Succeeded(dry_run_summary(
            job, &steps, &history, target,
        )));
    }
    let lock = lock_session(job, db).await?;
    let result = revert_locked(job, set, target, db).await;
    db.unlock(lock).await;
    result
}

/// The applied migrations to revert, highest first, after every refusal has been checked.
fn revert_steps<'a>(
    job: &Job<Params, RunState>,
    set: &'a MigrationSet,
    history: &[AppliedMigration],
    target: &ConnectTarget,
) -> Result<Vec<&'a Migration>, JobError> {
    let target_version = job.params.target_version.unwrap_or(0);
    let plan = MigrationPlan::new(set, history, None, true);
    let mut problems: Vec<String> = plan
        .problems
        .iter()
        .filter(|p| !matches!(p, Problem::OutOfOrder { .. }))
        .map(Problem::to_string)
        .collect();
    let applied: Vec<&AppliedMigration> = history.iter().filter(|r| r.success).collect();
    if target_version != 0 && !applied.iter().any(|r| r.version == target_version) {
        problems.push(format!(
            "`target_version` {target_version} is not applied to the database (applied: {}); give an applied version, or 0 to revert everything",
            describe_versions(&applied)
        ));
    }
    let in_range: Vec<&AppliedMigration> = applied
        .iter()
        .rev()
        .filter(|r| r.version > target_version)
        .copied()
        .collect();
    let mut steps = Vec::new();
    let mut no_down = Vec::new();
    for row in &in_range {
        // Rows missing from the artifact are already refused above as unknown.
        if let Some(migration) = set.migrations.get(&row.version) {
            if migration.down.is_none() {
                no_down.push(format!("{} (`{}`)", migration.label(), migration.file));
            }
            steps.push(migration);
        }
    }
    if !no_down.is_empty() {
        problems.push(format!(
            "these migrations have no `.down.sql`, so they cannot be reverted: {}",
            no_down.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(JobError::failed(format!(
            "refusing to revert the {} to version {target_version}; nothing was changed:\n{}",
            target.describe(),
            problems.join("\n")
        )));
    }
    Ok(steps)
}

fn describe_versions(rows: &[&AppliedMigration]) -> String {
    match rows {
        [] => "none".into(),
        [only] => only.version.to_string(),
        [first, .., last] => format!(
            "{} versions, {} to {}",
            rows.len(),
            first.version,
            last.version
        ),
    }
}

async fn revert_locked(
    job: &Job<Params, RunState>,
    set: &MigrationSet,
    target: &ConnectTarget,
    db: &mut Database,
) -> Result<JobOutcome<RunState>, JobError> {
    let history = history::read(db).await?;
    let steps = revert_steps(job, set, &history, target)?;
    let highest = history
        .iter()
        .filter(|r| r.success)
        .map(|r| r.version)
        .max();
    let mut state = job.state.clone().unwrap_or(RunState {
        from_version: highest,
        ..RunState::default()
    });
    let total = steps.len();
    let margin = time_margin(job.remaining());
    let mut longest = Duration::ZERO;
    for (index, migration) in steps.iter().enumerate() {
        let needed = time_needed(margin, longest);
        if index > 0 && job.remaining() < needed {
            let done = state.applied as usize;
            return Ok(JobOutcome::Continue {
                summary: format!(
                    "Reverted {done} of {} migrations so far on the {}; continuing in the next invocation.{}",
                    done + total - index,
                    target.describe(),
                    state.listing()
                ),
                percent_complete: Some((done * 100 / (done + total - index).max(1)).min(99) as u8),
                state,
            });
        }
        if index > 0 {
            limit_to_time_left(job, db).await?;
        }
        let Some(down) = &migration.down else {
            unreachable!("revert_steps refuses migrations without a down file");
        };
        tracing::info!(version = migration.version, file = %down.file, "reverting migration");
        let took = history::revert(db, migration, down).await.map_err(|e| {
            if state.applied == 0 {
                e
            } else {
                JobError::failed(format!(
                    "{}\nReverted before the failure (kept):{}",
                    e.message,
                    state.listing()
                ))
            }
        })?;
        longest = longest.max(took);
        state.record(format!(
            "{} with `{}`: {} ms",
            migration.label(),
            down.file,
            took.as_millis()
        ));
    }
    let after = history::read(db).await?;
    let schema_version = after.iter().filter(|r| r.success).map(|r| r.version).max();
    let summary = if state.applied == 0 {
        format!(
            "Nothing to revert: the {} is at schema version {}.",
            target.describe(),
            version_text(schema_version)
        )
    } else {
        format!(
            "Reverted {} migrations on the {}; schema version {} → {}.{}",
            state.applied,
            target.describe(),
            version_text(state.from_version),
            version_text(schema_version),
            state.listing()
        )
    };
    let pending = set
        .migrations
        .keys()
        .filter(|v| !after.iter().any(|r| r.version == **v))
        .count();
    Ok(JobOutcome::Succeeded(
        JobSuccess::new(summary)
            .variable("SchemaVersion", version_text(schema_version))
            .variable("RevertedCount", state.applied)
            .variable("AppliedCount", 0)
            .variable("PendingCount", pending),
    ))
}

fn dry_run_summary(
    job: &Job<Params, RunState>,
    steps: &[&Migration],
    history: &[AppliedMigration],
    target: &ConnectTarget,
) -> JobSuccess {
    let highest = history
        .iter()
        .filter(|r| r.success)
        .map(|r| r.version)
        .max();
    let lines: Vec<String> = steps
        .iter()
        .filter_map(|m| {
            m.down
                .as_ref()
                .map(|d| format!("{} with `{}`", m.label(), d.file))
        })
        .collect();
    let summary = if lines.is_empty() {
        format!(
            "Revert plan: nothing to revert; the {} is at schema version {}.",
            target.describe(),
            version_text(highest)
        )
    } else {
        format!(
            "Revert plan: {} migrations to revert on the {} (schema version {} → {}), highest first; nothing was changed:\n- {}",
            lines.len(),
            target.describe(),
            version_text(highest),
            job.params.target_version.unwrap_or(0),
            lines.join("\n- ")
        )
    };
    JobSuccess::new(summary)
        .variable("SchemaVersion", version_text(highest))
        .variable("RevertedCount", 0)
        .variable("PendingRevertCount", lines.len())
}
