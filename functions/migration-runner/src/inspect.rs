//! `plan` and `verify`: read-only (no lock, no history table created).

use crate::checks::{self, When};
use crate::database::Database;
use crate::history;
use crate::lint::{self, LintReport};
use crate::params::{Mode, Params};
use crate::plan::MigrationPlan;
use crate::run_state::RunState;
use crate::source::MigrationSet;
use crate::target::ConnectTarget;
use pipeline_ext::job::{Job, JobError, JobOutcome, JobSuccess};

/// Longest `PlanSummary` (CodePipeline allows 1,000 characters per output variable).
const MAX_PLAN_SUMMARY_CHARS: usize = 1_000;

pub async fn inspect(
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
    match params.mode {
        Mode::Verify => verify(params, &plan, target),
        _ => {
            let report = lint::check(&plan.pending, target.engine, &params.lint_policy()?)?;
            let checked = pre_checks(db, &plan).await;
            if let Some((migration, check, why)) = checked.first_failure {
                return Err(JobError::failed(format!(
                    "apply would refuse the {}: pre-check `{check}` of migration {migration} does not hold: {why}",
                    target.describe()
                )));
            }
            let mut outcome = plan_outcome(&plan, &report, target)?;
            if let (JobOutcome::Succeeded(success), false) =
                (&mut outcome, checked.lines.is_empty())
            {
                success
                    .summary
                    .push_str(&format!("\nData checks:\n- {}", checked.lines.join("\n- ")));
            }
            // What `apply` would do first; a missing identifier fails here as it would there.
            if params.backup.snapshot {
                let source = crate::snapshot::SnapshotSource::of(target, &params.backup)?;
                if let JobOutcome::Succeeded(success) = &mut outcome {
                    if !plan.pending.is_empty() {
                        success.summary.push_str(&format!(
                            "\nBackup: apply takes an RDS snapshot of the {} first{}.",
                            source.describe(),
                            if params.backup.wait {
                                " and waits until it is available"
                            } else {
                                ""
                            }
                        ));
                    }
                }
            }
            Ok(outcome)
        }
    }
}

/// What the pre-checks of the pending migrations say about the database as it is.
struct PreChecks {
    /// One line per check.
    lines: Vec<String>,
    /// The first pending migration's first check that does not hold: apply would stop there.
    first_failure: Option<(String, String, String)>,
}

/// Runs every pending migration's pre-checks (read-only queries) against the database as it
/// is; a later migration's check may depend on the migrations before it, so only the first
/// pending migration's checks decide whether apply would refuse.
async fn pre_checks(db: &mut Database, plan: &MigrationPlan<'_>) -> PreChecks {
    let mut checked = PreChecks {
        lines: Vec::new(),
        first_failure: None,
    };
    for (index, migration) in plan.pending.iter().enumerate() {
        for check in &migration.pre_checks {
            let line = match checks::run(db, check).await {
                Ok(()) => format!("{} `{}` (migration {}): holds", When::Pre.name(), check.file, migration.label()),
                Err(why) if index == 0 => {
                    checked.first_failure.get_or_insert((migration.label(), check.file.clone(), why.clone()));
                    format!("{} `{}` (migration {}): does not hold: {why}", When::Pre.name(), check.file, migration.label())
                }
                Err(why) => format!(
                    "{} `{}` (migration {}): does not hold yet ({why}); it runs after the migrations before it",
                    When::Pre.name(), check.file, migration.label()
                ),
            };
            checked.lines.push(line);
        }
        for check in &migration.post_checks {
            checked.lines.push(format!(
                "{} `{}` (migration {}): runs after the migration, before it commits",
                When::Post.name(),
                check.file,
                migration.label()
            ));
        }
    }
    checked
}

fn verify(
    params: &Params,
    plan: &MigrationPlan,
    target: &ConnectTarget,
) -> Result<JobOutcome<RunState>, JobError> {
    let mut problems: Vec<String> = plan.problems.iter().map(|p| p.to_string()).collect();
    problems.extend(
        plan.pending
            .iter()
            .map(|m| format!("migration {} is pending", m.label())),
    );
    if let (Some(expected), Some(applied)) = (params.target_version, plan.schema_version) {
        if applied > expected {
            problems.push(format!(
                "the database is at schema version {applied}, above `target_version` {expected}"
            ));
        }
    }
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
            plan.schema_version_text(),
            plan.applied_count
        ))
        .variable("SchemaVersion", plan.schema_version_text())
        .variable("AppliedCount", 0)
        .variable("PendingCount", 0),
    ))
}

fn plan_outcome(
    plan: &MigrationPlan,
    report: &LintReport,
    target: &ConnectTarget,
) -> Result<JobOutcome<RunState>, JobError> {
    if !plan.problems.is_empty() {
        return Err(JobError::failed(format!(
            "apply would refuse the {}:\n{}",
            target.describe(),
            plan.problems_message()
        )));
    }
    let lint_lines = report.lines();
    if report.errors().next().is_some() {
        return Err(JobError::failed(format!(
            "apply would refuse the {}: the lint policy denies {} changes:\n- {}",
            target.describe(),
            report.errors().count(),
            lint_lines.join("\n- ")
        )));
    }
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
    let mut summary = if pending_lines.is_empty() {
        format!(
            "Plan: nothing pending; the {} is at schema version {}.",
            target.describe(),
            plan.schema_version_text()
        )
    } else {
        format!(
            "Plan: {} pending migrations for the {} (schema version {}); nothing was changed:\n- {}",
            pending_lines.len(),
            target.describe(),
            plan.schema_version_text(),
            pending_lines.join("\n- ")
        )
    };
    if !lint_lines.is_empty() {
        summary.push_str(&format!(
            "\n{}:\n- {}",
            report.tally(),
            lint_lines.join("\n- ")
        ));
    }
    Ok(JobOutcome::Succeeded(
        JobSuccess::new(summary)
            .variable("SchemaVersion", plan.schema_version_text())
            .variable("AppliedCount", 0)
            .variable("PendingCount", plan.pending.len())
            .variable("LintErrors", report.errors().count())
            .variable("LintWarnings", report.warnings().count())
            .variable("PlanSummary", one_line_summary(plan, report, target)),
    ))
}

/// The plan in one line an approval's custom data can quote (`#{Migrate.PlanSummary}`).
fn one_line_summary(plan: &MigrationPlan, report: &LintReport, target: &ConnectTarget) -> String {
    let pending = match (plan.pending.first(), plan.pending.last()) {
        (Some(first), Some(last)) if first.version == last.version => {
            format!("1 pending migration ({})", first.label())
        }
        (Some(first), Some(last)) => format!(
            "{} pending migrations ({} → {})",
            plan.pending.len(),
            first.version,
            last.version
        ),
        _ => "nothing pending".to_string(),
    };
    let text = format!(
        "{pending} on the {} at schema version {}; {}",
        target.describe(),
        plan.schema_version_text(),
        report.tally()
    );
    truncate_line(&text, MAX_PLAN_SUMMARY_CHARS)
}

/// One line of at most `max` characters, cut with an ellipsis.
fn truncate_line(text: &str, max: usize) -> String {
    let line = text.replace(['\n', '\r'], " ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::version_text;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn plan_summaries_are_one_line_within_the_limit(text in "(.|\n){0,3000}") {
            let line = truncate_line(&text, MAX_PLAN_SUMMARY_CHARS);
            prop_assert!(line.chars().count() <= MAX_PLAN_SUMMARY_CHARS);
            prop_assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn version_text_tells_nothing_applied_from_version_zero() {
        assert_eq!(version_text(None), "none");
        assert_eq!(version_text(Some(0)), "0");
    }
}
