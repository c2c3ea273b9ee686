//! PostgreSQL migrations through squawk's linter, with its default rule set.

use super::policy::UNPARSED;
use super::{line_of, RawFinding};
use crate::source::Migration;
use squawk_linter::{Linter, Rule};
use squawk_syntax::{ast, SourceFile};

pub(super) fn lint(migration: &Migration) -> Vec<RawFinding> {
    let parse = SourceFile::parse(&migration.sql);
    // The runner sets `statement_timeout` and `lock_timeout` on its session itself.
    let mut linter = Linter::with_rules(
        &[],
        &[
            Rule::RequireTimeoutSettings,
            Rule::RequireLockTimeout,
            Rule::RequireStatementTimeout,
        ],
    );
    // The runner wraps each migration in a transaction unless it opts out, which changes
    // what squawk reports (CONCURRENTLY in a transaction, robust statements outside one).
    linter.settings.assume_in_transaction = !migration.no_transaction;
    let mut findings: Vec<RawFinding> = parse
        .errors()
        .into_iter()
        .take(1)
        .map(|error| RawFinding {
            line: line_of(&migration.sql, usize::from(error.range().start())),
            rule: UNPARSED.into(),
            message: format!(
                "the linter could not parse this ({}), so the statements from here on were not checked.",
                error.message()
            ),
            help: None,
        })
        .collect();
    findings.extend(
        linter
            .lint(&parse, &migration.sql)
            .into_iter()
            .map(|violation| RawFinding {
                line: line_of(&migration.sql, usize::from(violation.text_range.start())),
                rule: violation.code.to_string(),
                message: ensure_period(violation.message),
                help: violation.help,
            }),
    );
    // squawk reports CONCURRENTLY in a transaction only in files of several statements (it
    // assumes a lone statement runs on its own); this runner wraps every migration not marked
    // `no-transaction` in a transaction, where PostgreSQL refuses it whatever the count.
    let rule = Rule::BanConcurrentIndexCreationInTransaction.to_string();
    if !migration.no_transaction && !findings.iter().any(|f| f.rule == rule) {
        for stmt in parse.tree().stmts() {
            let concurrently = match &stmt {
                ast::Stmt::CreateIndex(create) => create.concurrently_token(),
                _ => None,
            };
            if let Some(token) = concurrently {
                findings.push(RawFinding {
                    line: line_of(&migration.sql, usize::from(token.text_range().start())),
                    rule: rule.clone(),
                    message:
                        "`CONCURRENTLY` cannot run inside the transaction this migration runs in."
                            .into(),
                    help: Some("Build the index outside any transactions.".into()),
                });
            }
        }
    }
    findings.sort_by_key(|f| f.line);
    findings
}

fn ensure_period(mut text: String) -> String {
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}
