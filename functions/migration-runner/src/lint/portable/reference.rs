//! The lint against sqlparser's syntax tree (the general parser it replaced, a dev-dependency
//! only), and properties: no panic on any input, case and comments change nothing.

use super::tests::rules;
use super::*;
use crate::source::MigrationSetBuilder;
use proptest::prelude::*;

/// The rules sqlparser's syntax tree gives for `sql` (the checker this lint replaced), or
/// `None` when sqlparser cannot parse it.
fn reference_rules(sql: &str) -> Option<Vec<&'static str>> {
    use sqlparser::ast::{
        AlterColumnOperation, AlterTableOperation, ColumnOption, ObjectType, Statement,
    };
    let parsed =
        sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::MySqlDialect {}, sql).ok()?;
    let mut found = Vec::new();
    for statement in parsed {
        match statement {
            Statement::Drop { object_type, .. } => found.extend(match object_type {
                ObjectType::Table => Some("ban-drop-table"),
                ObjectType::Database => Some("ban-drop-database"),
                ObjectType::Schema => Some("ban-drop-schema"),
                ObjectType::View => Some("ban-drop-view"),
                _ => None,
            }),
            Statement::RenameTable(renames) => {
                found.extend(renames.iter().map(|_| "renaming-table"))
            }
            Statement::AlterTable(alter) => {
                for operation in alter.operations {
                    found.extend(match operation {
                        AlterTableOperation::DropColumn { column_names, .. } => {
                            column_names.iter().map(|_| "ban-drop-column").collect()
                        }
                        AlterTableOperation::RenameColumn { .. } => vec!["renaming-column"],
                        AlterTableOperation::RenameTable { .. } => vec!["renaming-table"],
                        AlterTableOperation::ChangeColumn {
                            old_name, new_name, ..
                        } => {
                            if old_name.value.eq_ignore_ascii_case(&new_name.value) {
                                vec!["changing-column-type"]
                            } else {
                                vec!["renaming-column"]
                            }
                        }
                        AlterTableOperation::ModifyColumn { .. } => {
                            vec!["changing-column-type"]
                        }
                        AlterTableOperation::AlterColumn { op, .. } => match op {
                            AlterColumnOperation::SetDataType { .. } => {
                                vec!["changing-column-type"]
                            }
                            AlterColumnOperation::SetNotNull => {
                                vec!["adding-not-nullable-field"]
                            }
                            AlterColumnOperation::DropDefault => vec!["ban-drop-default"],
                            _ => vec![],
                        },
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            let options: Vec<_> =
                                column_def.options.iter().map(|o| &o.option).collect();
                            let not_null =
                                options.iter().any(|o| matches!(o, ColumnOption::NotNull));
                            let supplied = options.iter().any(|o| match o {
                                ColumnOption::Default(_) | ColumnOption::Generated { .. } => true,
                                ColumnOption::DialectSpecific(tokens) => tokens
                                    .iter()
                                    .any(|t| t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")),
                                _ => false,
                            });
                            if not_null && !supplied {
                                vec!["adding-required-field"]
                            } else {
                                vec![]
                            }
                        }
                        _ => vec![],
                    });
                }
            }
            _ => {}
        }
    }
    Some(found)
}

/// A MySQL statement from the shapes the lint reads and some it must leave alone, with
/// names (some quoted, some reserved words in backticks) and keywords in any case.
fn statement() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        "[a-z][a-z0-9_]{0,6}".prop_filter("not a keyword", |n| !KEYWORDS
            .contains(&n.to_ascii_uppercase().as_str())),
        "[a-z]{1,5}".prop_map(|n| format!("`{n}`")),
        Just("`drop`".to_string()),
        Just("`select`".to_string()),
    ];
    let column_def = (
        prop_oneof![
            Just("INT"),
            Just("VARCHAR(20)"),
            Just("DECIMAL(10, 2)"),
            Just("TEXT")
        ],
        prop_oneof![Just(""), Just(" NOT NULL"), Just(" NULL")],
        prop_oneof![
            Just(""),
            Just(" DEFAULT 0"),
            Just(" AUTO_INCREMENT"),
            Just(" COMMENT 'NOT NULL'")
        ],
    )
        .prop_map(|(ty, null, extra)| format!("{ty}{null}{extra}"));
    let operation = prop_oneof![
        name.clone().prop_map(|c| format!("DROP COLUMN {c}")),
        name.clone().prop_map(|c| format!("DROP {c}")),
        name.clone().prop_map(|i| format!("DROP INDEX {i}")),
        (name.clone(), name.clone()).prop_map(|(a, b)| format!("RENAME COLUMN {a} TO {b}")),
        name.clone().prop_map(|t| format!("RENAME TO {t}")),
        (name.clone(), column_def.clone()).prop_map(|(c, d)| format!("MODIFY {c} {d}")),
        (name.clone(), name.clone(), column_def.clone())
            .prop_map(|(a, b, d)| format!("CHANGE COLUMN {a} {b} {d}")),
        (name.clone(), column_def.clone()).prop_map(|(c, d)| format!("CHANGE {c} {c} {d}")),
        (name.clone(), column_def.clone()).prop_map(|(c, d)| format!("ADD COLUMN {c} {d}")),
        (name.clone(), column_def.clone()).prop_map(|(c, d)| format!("ADD {c} {d}")),
        (name.clone(), name.clone()).prop_map(|(i, c)| format!("ADD INDEX {i} ({c})")),
        name.clone()
            .prop_map(|c| format!("ALTER COLUMN {c} DROP DEFAULT")),
        name.clone()
            .prop_map(|c| format!("ALTER COLUMN {c} SET DEFAULT 1")),
    ];
    prop_oneof![
        (
            prop_oneof![
                Just("TABLE"),
                Just("VIEW"),
                Just("DATABASE"),
                Just("SCHEMA")
            ],
            any::<bool>(),
            proptest::collection::vec(name.clone(), 1..3)
        )
            .prop_map(|(kind, if_exists, names)| format!(
                "DROP {kind} {}{}",
                if if_exists { "IF EXISTS " } else { "" },
                names.join(", ")
            )),
        proptest::collection::vec((name.clone(), name.clone()), 1..3).prop_map(|pairs| format!(
            "RENAME TABLE {}",
            pairs
                .iter()
                .map(|(a, b)| format!("{a} TO {b}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (name.clone(), proptest::collection::vec(operation, 1..4))
            .prop_map(|(t, ops)| format!("ALTER TABLE {t} {}", ops.join(", "))),
        (name.clone(), column_def).prop_map(|(t, d)| format!("CREATE TABLE {t} (id {d})")),
        name.clone()
            .prop_map(|t| format!("INSERT INTO {t} VALUES ('DROP TABLE x')")),
        name.prop_map(|t| format!("SELECT * FROM {t}")),
    ]
}

const KEYWORDS: &[&str] = &[
    "ADD",
    "ALTER",
    "AS",
    "CHANGE",
    "CHECK",
    "COLUMN",
    "CONSTRAINT",
    "DATABASE",
    "DEFAULT",
    "DROP",
    "EXISTS",
    "FOREIGN",
    "FULLTEXT",
    "IF",
    "INDEX",
    "KEY",
    "MODIFY",
    "NOT",
    "NULL",
    "PARTITION",
    "PERIOD",
    "PRIMARY",
    "RENAME",
    "SCHEMA",
    "SET",
    "SPATIAL",
    "SYSTEM",
    "TABLE",
    "TABLES",
    "TO",
    "TYPE",
    "UNIQUE",
    "VIEW",
];

/// Upper, lower or mixed case for every bare word, and comments between some tokens.
fn respell(sql: &str, seed: u64) -> String {
    let mut out = String::new();
    let mut n = seed;
    let mut in_quote: Option<char> = None;
    for c in sql.chars() {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        match in_quote {
            Some(q) if c == q => in_quote = None,
            Some(_) => {}
            None if c == '`' || c == '\'' => in_quote = Some(c),
            None if c == ' ' && n >> 61 == 0 => {
                out.push_str(" /* x; 'y' */ ");
                continue;
            }
            None if c.is_ascii_alphabetic() => {
                out.push(if n >> 63 == 0 {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                });
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

proptest! {
    #[test]
    fn never_panics(sql in "(ALTER|TABLE|DROP|ADD|CHANGE|MODIFY|IF|EXISTS|BEGIN|THEN|a|b|é|COLUMN|RENAME|TO|\\(|\\)|\\[|\\]|,|\\.|;| |'|\"|`|NOT|NULL|/\\*!|/\\*M!|/\\*|\\*/|--|#|\n){0,60}") {
        let mut builder = MigrationSetBuilder::default();
        builder.add("1_m.sql", sql.as_bytes().to_vec()).unwrap();
        let set = builder.finish().unwrap();
        let _ = lint(&set.migrations[&1], Flavor::MySql);
        let _ = lint(&set.migrations[&1], Flavor::Sqlite);
    }

    /// On every statement sqlparser reads, the lint finds what sqlparser's tree shows.
    #[test]
    fn agrees_with_sqlparser_on_what_it_parses(sql in statement()) {
        let reference = reference_rules(&sql);
        prop_assume!(reference.is_some());
        let ours: Vec<String> = rules(&format!("{sql};"), Flavor::MySql).into_iter().map(|(_, r)| r).collect();
        prop_assert_eq!(ours, reference.unwrap(), "{}", sql);
    }

    /// Case and comments do not change what the lint finds.
    #[test]
    fn case_and_comments_change_nothing(sql in statement(), seed in any::<u64>()) {
        let plain = rules(&format!("{sql};"), Flavor::MySql);
        let respelled = respell(&sql, seed);
        prop_assert_eq!(rules(&format!("{respelled};"), Flavor::MySql), plain, "{}", respelled);
    }
}
