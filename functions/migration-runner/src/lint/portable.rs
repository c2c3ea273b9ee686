//! MySQL/MariaDB and SQLite migrations: the destructive and backward-incompatible class,
//! found in `sqlparser`'s syntax tree one statement at a time (split as the `mysql` client
//! splits), under squawk's rule names so one policy reads the same on every engine.

use super::policy::UNPARSED;
use super::RawFinding;
use crate::source::Migration;
use crate::statements::{self, Dialect, Split};
use pipeline_ext::job::JobError;
use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ColumnDef, ColumnOption, ObjectType, Statement,
};
use sqlparser::dialect::{MySqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    MySql,
    Sqlite,
}

pub(super) fn lint(migration: &Migration, flavor: Flavor) -> Result<Vec<RawFinding>, JobError> {
    let dialect = match flavor {
        Flavor::MySql => Dialect::MySql,
        Flavor::Sqlite => Dialect::Sqlite,
    };
    let pieces = match statements::split(&migration.sql, dialect) {
        Ok(Split::Statements(list)) => list
            .into_iter()
            .map(|s| (s.line, s.sql))
            .collect::<Vec<_>>(),
        Ok(Split::Whole) => vec![(1, migration.sql.clone())],
        Err(err) => {
            return Err(JobError::config(format!(
                "`{}` line {}: {}",
                migration.file, err.line, err.message
            )))
        }
    };
    let mut findings = Vec::new();
    for (line, sql) in pieces {
        let parsed = match flavor {
            Flavor::MySql => Parser::parse_sql(&MySqlDialect {}, &sql),
            Flavor::Sqlite => Parser::parse_sql(&SQLiteDialect {}, &sql),
        };
        match parsed {
            Ok(parsed) => {
                for statement in &parsed {
                    check_statement(statement, &mut |rule, message| {
                        findings.push(RawFinding {
                            line,
                            rule: rule.into(),
                            message,
                            help: None,
                        })
                    });
                }
            }
            Err(err) => findings.push(RawFinding {
                line,
                rule: UNPARSED.into(),
                message: format!(
                    "the linter could not parse this statement ({err}), so it was not checked."
                ),
                help: None,
            }),
        }
    }
    Ok(findings)
}

fn check_statement(statement: &Statement, report: &mut dyn FnMut(&'static str, String)) {
    match statement {
        Statement::Drop {
            object_type, names, ..
        } => {
            let names = names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ");
            match object_type {
                ObjectType::Table => report(
                    "ban-drop-table",
                    format!("dropping table {names} loses its data and breaks the release still using it."),
                ),
                ObjectType::Database => report(
                    "ban-drop-database",
                    format!("dropping database {names} loses all of its data."),
                ),
                ObjectType::Schema => report(
                    "ban-drop-schema",
                    format!("dropping schema {names} loses everything in it."),
                ),
                ObjectType::View | ObjectType::MaterializedView => report(
                    "ban-drop-view",
                    format!("dropping view {names} breaks the release still reading it."),
                ),
                _ => {}
            }
        }
        Statement::DropFunction(drop) => report(
            "ban-drop-function",
            format!("dropping function {drop} breaks the release still calling it."),
        ),
        Statement::RenameTable(renames) => {
            for rename in renames {
                report(
                    "renaming-table",
                    format!(
                        "renaming table `{}` to `{}` breaks the release still using the old name.",
                        rename.old_name, rename.new_name
                    ),
                );
            }
        }
        Statement::AlterTable(alter) => {
            let table = &alter.name;
            for operation in &alter.operations {
                check_alter(&table.to_string(), operation, report);
            }
        }
        _ => {}
    }
}

fn check_alter(
    table: &str,
    operation: &AlterTableOperation,
    report: &mut dyn FnMut(&'static str, String),
) {
    match operation {
        AlterTableOperation::DropColumn { column_names, .. } => {
            for column in column_names {
                report(
                    "ban-drop-column",
                    format!("dropping column `{table}`.`{column}` loses its data and breaks the release still using it."),
                );
            }
        }
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => report(
            "renaming-column",
            format!("renaming column `{table}`.`{old_column_name}` to `{new_column_name}` breaks the release still using the old name."),
        ),
        AlterTableOperation::RenameTable { table_name } => report(
            "renaming-table",
            format!("renaming table `{table}` to {table_name} breaks the release still using the old name."),
        ),
        AlterTableOperation::ChangeColumn {
            old_name, new_name, ..
        } if old_name.value != new_name.value => report(
            "renaming-column",
            format!("`CHANGE` renames column `{table}`.`{old_name}` to `{new_name}`, which breaks the release still using the old name."),
        ),
        AlterTableOperation::ChangeColumn { old_name, .. } => report(
            "changing-column-type",
            format!("`CHANGE` redefines column `{table}`.`{old_name}`: a new type, nullability or default can break the release still running, and may rewrite the table."),
        ),
        AlterTableOperation::ModifyColumn { col_name, .. } => report(
            "changing-column-type",
            format!("`MODIFY` redefines column `{table}`.`{col_name}`: a new type, nullability or default can break the release still running, and may rewrite the table."),
        ),
        AlterTableOperation::AlterColumn { column_name, op } => match op {
            AlterColumnOperation::SetDataType { data_type, .. } => report(
                "changing-column-type",
                format!("changing the type of `{table}`.`{column_name}` to {data_type} can break the release still running, and may rewrite the table."),
            ),
            AlterColumnOperation::SetNotNull => report(
                "adding-not-nullable-field",
                format!("making `{table}`.`{column_name}` NOT NULL breaks the release still writing NULLs to it."),
            ),
            AlterColumnOperation::DropDefault => report(
                "ban-drop-default",
                format!("dropping the default of `{table}`.`{column_name}` breaks the release still inserting rows without it."),
            ),
            _ => {}
        },
        AlterTableOperation::AddColumn { column_def, .. } if is_required(column_def) => report(
            "adding-required-field",
            format!("adding `{table}`.`{}` as NOT NULL without a default breaks the release still inserting rows without it (and fails on a table with rows).", column_def.name),
        ),
        _ => {}
    }
}

/// NOT NULL with no value the database supplies (default, generated, auto-increment).
fn is_required(column: &ColumnDef) -> bool {
    let options: Vec<&ColumnOption> = column.options.iter().map(|o| &o.option).collect();
    let not_null = options.iter().any(|o| matches!(o, ColumnOption::NotNull));
    let supplied = options.iter().any(|o| match o {
        ColumnOption::Default(_)
        | ColumnOption::Materialized(_)
        | ColumnOption::Alias(_)
        | ColumnOption::Generated { .. } => true,
        ColumnOption::DialectSpecific(tokens) => tokens.iter().any(|t| {
            let text = t.to_string().to_ascii_uppercase();
            text == "AUTO_INCREMENT" || text == "AUTOINCREMENT"
        }),
        _ => false,
    });
    not_null && !supplied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::MigrationSetBuilder;
    use proptest::prelude::*;

    fn rules(sql: &str, flavor: Flavor) -> Vec<(usize, String)> {
        let mut builder = MigrationSetBuilder::default();
        builder.add("1_m.sql", sql.as_bytes().to_vec()).unwrap();
        let set = builder.finish().unwrap();
        lint(&set.migrations[&1], flavor)
            .unwrap()
            .into_iter()
            .map(|f| (f.line, f.rule))
            .collect()
    }

    #[test]
    fn finds_the_destructive_and_incompatible_class_on_mysql() {
        let sql = "CREATE TABLE a (id INT);\nALTER TABLE a DROP COLUMN b;\nALTER TABLE a RENAME COLUMN c TO d;\nALTER TABLE a MODIFY e BIGINT;\nALTER TABLE a CHANGE f g INT;\nRENAME TABLE a TO b;\nALTER TABLE b ADD COLUMN h INT NOT NULL;\nALTER TABLE b ADD COLUMN i INT NOT NULL DEFAULT 0;\nALTER TABLE b ADD COLUMN j INT NOT NULL AUTO_INCREMENT;\nDROP TABLE b;\n";
        assert_eq!(
            rules(sql, Flavor::MySql),
            vec![
                (2, "ban-drop-column".into()),
                (3, "renaming-column".into()),
                (4, "changing-column-type".into()),
                (5, "renaming-column".into()),
                (6, "renaming-table".into()),
                (7, "adding-required-field".into()),
                (10, "ban-drop-table".into()),
            ]
        );
    }

    #[test]
    fn finds_drops_and_renames_on_sqlite() {
        let sql = "ALTER TABLE a DROP COLUMN b;\n-- a comment\nALTER TABLE a RENAME TO c;\nCREATE TABLE d (x TEXT NOT NULL);";
        assert_eq!(
            rules(sql, Flavor::Sqlite),
            vec![(1, "ban-drop-column".into()), (3, "renaming-table".into())]
        );
    }

    #[test]
    fn a_statement_the_parser_cannot_read_is_reported_not_skipped() {
        assert_eq!(
            rules("SELEKT 1;\nDROP TABLE x;", Flavor::MySql),
            vec![(1, UNPARSED.into()), (2, "ban-drop-table".into())]
        );
    }

    proptest! {
        #[test]
        fn never_panics(sql in "(ALTER|TABLE|DROP|a|b|COLUMN|RENAME|TO|\\(|\\)|;| |'|`|NOT|NULL|/\\*!|\\*/|\n){0,40}") {
            let mut builder = MigrationSetBuilder::default();
            builder.add("1_m.sql", sql.as_bytes().to_vec()).unwrap();
            let set = builder.finish().unwrap();
            let _ = lint(&set.migrations[&1], Flavor::MySql);
            let _ = lint(&set.migrations[&1], Flavor::Sqlite);
        }
    }
}
