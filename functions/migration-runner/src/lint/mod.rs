//! Linting pending migrations before they run: squawk's rules on PostgreSQL, the destructive
//! and backward-incompatible class parsed with `sqlparser` on MySQL/MariaDB and SQLite.
//! A finding names the file, the line, the rule and what to do instead; the policy decides
//! whether it denies or warns; `-- lint:allow <rule>: <reason>` in a file allows one rule in
//! that file, and the reason is shown.

mod allow;
mod policy;
mod portable;
mod postgres;

pub use policy::{Class, Level, LintParams, LintPolicy};

use crate::engine::Engine;
use crate::source::Migration;
use pipeline_ext::job::JobError;
use std::fmt;

/// One thing the linter found in one migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The migration file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// The rule.
    pub rule: String,
    /// What is wrong.
    pub message: String,
    /// What to do instead.
    pub help: String,
    /// How it counts.
    pub level: Level,
    /// The reason of the file's `-- lint:allow` for this rule, when there is one.
    pub allowed: Option<String>,
}

impl Finding {
    /// Whether it counts at `level` (an allowed one does not).
    fn counts_as(&self, level: Level) -> bool {
        self.allowed.is_none() && self.level == level
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = Class::of(&self.rule).name();
        match &self.allowed {
            Some(reason) => write!(
                f,
                "`{}` line {}: {} ({class}) allowed: {reason}",
                self.file, self.line, self.rule
            ),
            None => write!(
                f,
                "`{}` line {}: {} ({class}, {}): {} Instead: {}",
                self.file, self.line, self.rule, self.level, self.message, self.help
            ),
        }
    }
}

/// Every finding of the pending migrations, in file and line order.
#[derive(Clone, Debug, Default)]
pub struct LintReport {
    /// Every finding.
    pub findings: Vec<Finding>,
}

impl LintReport {
    /// Findings that refuse the run.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.counts_as(Level::Deny))
    }

    /// Findings that only warn.
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.counts_as(Level::Warn))
    }

    /// Findings allowed by a comment.
    pub fn allowed(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.allowed.is_some())
    }

    /// The report as summary lines: errors, then warnings, then what was allowed.
    pub fn lines(&self) -> Vec<String> {
        self.errors()
            .map(|f| format!("error: {f}"))
            .chain(self.warnings().map(|f| format!("warning: {f}")))
            .chain(self.allowed().map(|f| format!("allowed: {f}")))
            .collect()
    }

    /// One line: counts and the rules involved.
    pub fn tally(&self) -> String {
        let rules = |items: Vec<&Finding>| {
            let mut names: Vec<&str> = items.iter().map(|f| f.rule.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            if names.is_empty() {
                String::new()
            } else {
                format!(" ({})", names.join(", "))
            }
        };
        let errors: Vec<&Finding> = self.errors().collect();
        let warnings: Vec<&Finding> = self.warnings().collect();
        let allowed: Vec<&Finding> = self.allowed().collect();
        let mut text = format!(
            "lint: {} errors{}, {} warnings{}",
            errors.len(),
            rules(errors.clone()),
            warnings.len(),
            rules(warnings.clone())
        );
        if !allowed.is_empty() {
            let reasons: Vec<String> = allowed
                .iter()
                .map(|f| format!("{}: {}", f.rule, f.allowed.as_deref().unwrap_or("")))
                .collect();
            text.push_str(&format!(
                ", {} allowed ({})",
                allowed.len(),
                reasons.join("; ")
            ));
        }
        text
    }
}

/// Lints each migration for `engine` under `policy`.
pub fn check(
    migrations: &[&Migration],
    engine: Engine,
    policy: &LintPolicy,
) -> Result<LintReport, JobError> {
    let mut report = LintReport::default();
    for migration in migrations {
        let allows = allow::parse(&migration.file, &migration.sql)?;
        let raw = match engine {
            Engine::Postgres => postgres::lint(migration),
            Engine::MySql => portable::lint(migration, portable::Flavor::MySql)?,
            Engine::Sqlite => portable::lint(migration, portable::Flavor::Sqlite)?,
        };
        for found in raw {
            let level = policy.level(&found.rule);
            if level == Level::Off {
                continue;
            }
            report.findings.push(Finding {
                file: migration.file.clone(),
                line: found.line,
                allowed: allows.reason_for(&found.rule).map(str::to_string),
                help: help_for(&found.rule)
                    .map(str::to_string)
                    .or(found.help)
                    .unwrap_or_else(|| format!("see https://squawkhq.com/docs/{}", found.rule)),
                rule: found.rule,
                message: found.message,
                level,
            });
        }
    }
    Ok(report)
}

/// What an engine's linter reports, before the policy and the allows are applied.
struct RawFinding {
    /// The line.
    line: usize,
    /// The rule.
    rule: String,
    /// What is wrong.
    message: String,
    /// How to fix it.
    help: Option<String>,
}

/// What to do instead, for the rules that block a release.
fn help_for(rule: &str) -> Option<&'static str> {
    Some(match rule {
        "ban-drop-column" => "stop reading and writing the column in one release, drop it in a migration of a later one (or allow it with `-- lint:allow ban-drop-column: <why>`)",
        "ban-drop-table" => "stop using the table in one release, drop it in a migration of a later one (or allow it with `-- lint:allow ban-drop-table: <why>`)",
        "renaming-column" => "add the new column, write both, backfill, switch reads, then drop the old column in a later release",
        "renaming-table" => "create the new table (or a view with the new name), move readers and writers over, then drop the old name in a later release",
        "changing-column-type" => "add a column of the new type, write both, backfill, switch reads, then drop the old column in a later release",
        "adding-required-field" => "add the column nullable or with a default, backfill, then add NOT NULL in a later migration",
        "adding-not-nullable-field" => "add a `CHECK (column IS NOT NULL) NOT VALID` constraint, validate it in a later migration, then set NOT NULL",
        "require-concurrent-index-creation" => "a plain `CREATE INDEX` blocks writes to the table while it builds: use `CREATE INDEX CONCURRENTLY` in a migration marked `-- migrate:no-transaction` (or sqlx's `-- no-transaction` as its first line)",
        "ban-concurrent-index-creation-in-transaction" => "PostgreSQL refuses `CONCURRENTLY` inside a transaction: mark the file `-- migrate:no-transaction` (or sqlx's `-- no-transaction` as its first line), and keep that statement alone in its file",
        "constraint-missing-not-valid" => "add the constraint `NOT VALID`, then `VALIDATE CONSTRAINT` in a later migration",
        policy::UNPARSED => "check the statement by hand; it was not linted",
        _ => return None,
    })
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
