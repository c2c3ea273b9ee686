//! MySQL/MariaDB and SQLite migrations: the destructive and backward-incompatible class, read
//! from each statement's tokens (split and tokenized as the `mysql` client reads them), under
//! squawk's rule names so one policy reads the same on every engine.
//!
//! Not a SQL parser: the class is a dozen statement shapes (`DROP TABLE`, `RENAME TABLE`, the
//! operations of `ALTER TABLE`), and a general parser for two dialects was the largest part of
//! the Lambda package while refusing valid MySQL it did not know. Every statement is read as
//! far as its leading keywords; one that starts like a shape of the class but cannot be read
//! to the end of that shape (or whose quote or comment does not end) is reported as
//! `unparsed`, never passed silently.

use super::policy::UNPARSED;
use super::RawFinding;
use crate::source::Migration;
use crate::statements::{self, Dialect, Split, Token};
use pipeline_ext::job::JobError;

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
    let (pieces, whole) = match statements::split(&migration.sql, dialect) {
        Ok(Split::Statements(list)) => (
            list.into_iter()
                .map(|s| (s.line, s.sql))
                .collect::<Vec<_>>(),
            false,
        ),
        Ok(Split::Whole) => (vec![(1, migration.sql.clone())], true),
        Err(err) => {
            return Err(JobError::config(format!(
                "`{}` line {}: {}",
                migration.file, err.line, err.message
            )))
        }
    };
    let mut findings = Vec::new();
    for (line, sql) in pieces {
        let mut report = |rule: &'static str, message: String| {
            findings.push(RawFinding {
                line,
                rule: rule.into(),
                message,
                help: None,
            })
        };
        let tokens = match statements::tokens(&sql, dialect) {
            Ok(tokens) => tokens,
            Err(statements::Unterminated) => {
                report(
                    UNPARSED,
                    "a quote or comment in this statement does not end, so it was not checked."
                        .into(),
                );
                continue;
            }
        };
        let statements = if whole {
            compound_statements(&tokens)
        } else {
            vec![&tokens[..]]
        };
        for statement in statements {
            if let Err(Unreadable(expected)) = check_statement(statement, &mut report) {
                report(
                    UNPARSED,
                    format!("the linter could not read this statement (expected {expected}), so it was not checked."),
                );
            }
        }
    }
    Ok(findings)
}

/// The statements of a file sent whole: a stored program's body statements start after `;`
/// and after `BEGIN [NOT ATOMIC]`, `THEN`, `ELSE`, `DO`, `LOOP` and `REPEAT`. A body's DROP
/// runs when the program is called, often by the same migration.
fn compound_statements(tokens: &[Token]) -> Vec<&[Token]> {
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let opens = ["BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT"]
            .iter()
            .any(|k| token.is(k));
        if *token == Token::Symbol(';') || opens {
            statements.push(&tokens[start..i]);
            i += 1;
            if token.is("BEGIN")
                && tokens.get(i).is_some_and(|t| t.is("NOT"))
                && tokens.get(i + 1).is_some_and(|t| t.is("ATOMIC"))
            {
                i += 2;
            }
            start = i;
        } else {
            i += 1;
        }
    }
    statements.push(&tokens[start..]);
    statements
}

/// A statement of the class's shape that stops short of it: what was expected.
struct Unreadable(&'static str);

type Report<'a> = dyn FnMut(&'static str, String) + 'a;

fn check_statement(tokens: &[Token], report: &mut Report) -> Result<(), Unreadable> {
    let mut at = Cursor { tokens, pos: 0 };
    if at.eat("DROP") {
        check_drop(&mut at, report)
    } else if at.eat("RENAME") {
        if !(at.eat("TABLE") || at.eat("TABLES")) {
            return Ok(());
        }
        loop {
            let old = at
                .name()
                .ok_or(Unreadable("a table name after `RENAME TABLE`"))?;
            if !at.eat("TO") {
                return Err(Unreadable("`TO` and the new name"));
            }
            let new = at
                .name()
                .ok_or(Unreadable("the new table name after `TO`"))?;
            report(
                "renaming-table",
                format!(
                    "renaming table {old} to {new} breaks the release still using the old name."
                ),
            );
            if !at.eat_symbol(',') {
                return Ok(());
            }
        }
    } else if at.eat("ALTER") {
        while at.eat("ONLINE") || at.eat("OFFLINE") || at.eat("IGNORE") {}
        if !at.eat("TABLE") {
            return Ok(());
        }
        at.eat_all(&["IF", "EXISTS"]);
        let table = at
            .name()
            .ok_or(Unreadable("a table name after `ALTER TABLE`"))?;
        let rest = &tokens[at.pos..];
        if rest.is_empty() {
            return Err(Unreadable("an operation after the table name"));
        }
        for operation in top_level(rest, ',') {
            check_alter(&table, operation, report)?;
        }
        Ok(())
    } else {
        Ok(())
    }
}

fn check_drop(at: &mut Cursor, report: &mut Report) -> Result<(), Unreadable> {
    if at.eat("TEMPORARY") {
        // A temporary table lives in the session: dropping it loses nothing anyone else reads.
        return Ok(());
    }
    let (rule, what, consequence) = if at.eat("TABLE") || at.eat("TABLES") {
        (
            "ban-drop-table",
            "table",
            "loses its data and breaks the release still using it",
        )
    } else if at.eat("DATABASE") {
        ("ban-drop-database", "database", "loses all of its data")
    } else if at.eat("SCHEMA") {
        ("ban-drop-schema", "schema", "loses everything in it")
    } else if at.eat("VIEW") {
        (
            "ban-drop-view",
            "view",
            "breaks the release still reading it",
        )
    } else if at.eat("FUNCTION") {
        (
            "ban-drop-function",
            "function",
            "breaks the release still calling it",
        )
    } else {
        return Ok(());
    };
    at.eat_all(&["IF", "EXISTS"]);
    let mut names = vec![at.name().ok_or(Unreadable("a name after `DROP`"))?];
    while at.eat_symbol(',') {
        names.push(at.name().ok_or(Unreadable("a name after `,`"))?);
    }
    report(
        rule,
        format!("dropping {what} {} {consequence}.", names.join(", ")),
    );
    Ok(())
}

/// Words after `ADD`, `DROP` and `ALTER` in `ALTER TABLE` that name something other than a column.
const NOT_A_COLUMN: &[&str] = &[
    "INDEX",
    "KEY",
    "UNIQUE",
    "PRIMARY",
    "FOREIGN",
    "CONSTRAINT",
    "CHECK",
    "FULLTEXT",
    "SPATIAL",
    "PARTITION",
    "PERIOD",
    "SYSTEM",
    "DEFAULT",
];

fn check_alter(table: &str, operation: &[Token], report: &mut Report) -> Result<(), Unreadable> {
    let mut at = Cursor {
        tokens: operation,
        pos: 0,
    };
    if at.eat("DROP") {
        if at.eat_any(NOT_A_COLUMN) {
            return Ok(());
        }
        at.eat("COLUMN");
        at.eat_all(&["IF", "EXISTS"]);
        let column = at.name().ok_or(Unreadable("a column name after `DROP`"))?;
        report(
            "ban-drop-column",
            format!("dropping column {table}.{column} loses its data and breaks the release still using it."),
        );
    } else if at.eat("RENAME") {
        if at.eat("INDEX") || at.eat("KEY") {
            return Ok(());
        }
        let explicit_column = at.eat("COLUMN");
        if !explicit_column && (at.eat("TO") || at.eat("AS")) {
            let new = at.name().ok_or(Unreadable("the new table name"))?;
            return rename_table(table, &new, report);
        }
        let first = at.name().ok_or(Unreadable("a name after `RENAME`"))?;
        if !at.eat("TO") {
            if explicit_column {
                return Err(Unreadable("`TO` and the new column name"));
            }
            // MySQL's `RENAME new_name`: the table's.
            return rename_table(table, &first, report);
        }
        // `RENAME [COLUMN] a TO b` (SQLite takes it without `COLUMN`).
        let new = at
            .name()
            .ok_or(Unreadable("the new column name after `TO`"))?;
        report(
            "renaming-column",
            format!("renaming column {table}.{first} to {new} breaks the release still using the old name."),
        );
    } else if at.eat("CHANGE") {
        at.eat("COLUMN");
        at.eat_all(&["IF", "EXISTS"]);
        let old = at
            .name()
            .ok_or(Unreadable("a column name after `CHANGE`"))?;
        let new = at
            .name()
            .ok_or(Unreadable("the new column name after the old one"))?;
        // Column names are case-insensitive in MySQL.
        if !old.eq_ignore_ascii_case(&new) {
            report(
                "renaming-column",
                format!("`CHANGE` renames column {table}.{old} to {new}, which breaks the release still using the old name."),
            );
        } else {
            report(
                "changing-column-type",
                format!("`CHANGE` redefines column {table}.{old}: a new type, nullability or default can break the release still running, and may rewrite the table."),
            );
        }
    } else if at.eat("MODIFY") {
        at.eat("COLUMN");
        at.eat_all(&["IF", "EXISTS"]);
        let column = at
            .name()
            .ok_or(Unreadable("a column name after `MODIFY`"))?;
        report(
            "changing-column-type",
            format!("`MODIFY` redefines column {table}.{column}: a new type, nullability or default can break the release still running, and may rewrite the table."),
        );
    } else if at.eat("ALTER") {
        if at.eat_any(NOT_A_COLUMN) {
            return Ok(());
        }
        at.eat("COLUMN");
        let column = at.name().ok_or(Unreadable("a column name after `ALTER`"))?;
        if at.eat_all(&["SET", "DATA", "TYPE"]) || at.eat("TYPE") {
            report(
                "changing-column-type",
                format!("changing the type of {table}.{column} can break the release still running, and may rewrite the table."),
            );
        } else if at.eat_all(&["SET", "NOT", "NULL"]) {
            report(
                "adding-not-nullable-field",
                format!("making {table}.{column} NOT NULL breaks the release still writing NULLs to it."),
            );
        } else if at.eat_all(&["DROP", "DEFAULT"]) {
            report(
                "ban-drop-default",
                format!("dropping the default of {table}.{column} breaks the release still inserting rows without it."),
            );
        }
    } else if at.eat("ADD") {
        let explicit_column = at.eat("COLUMN");
        if !explicit_column && at.eat_any(NOT_A_COLUMN) {
            return Ok(());
        }
        at.eat_all(&["IF", "NOT", "EXISTS"]);
        if let Some(Token::Symbol('(')) = at.peek() {
            // `ADD [COLUMN] (a INT, b INT NOT NULL, INDEX (a))`
            let inner = parenthesized(&operation[at.pos..])
                .ok_or(Unreadable("`)` after the column definitions"))?;
            for definition in top_level(inner, ',') {
                let mut def = Cursor {
                    tokens: definition,
                    pos: 0,
                };
                if def.eat_any(NOT_A_COLUMN) {
                    continue;
                }
                add_column(table, &mut def, report)?;
            }
        } else {
            add_column(table, &mut at, report)?;
        }
    }
    Ok(())
}

fn rename_table(table: &str, new: &str, report: &mut Report) -> Result<(), Unreadable> {
    report(
        "renaming-table",
        format!("renaming table {table} to {new} breaks the release still using the old name."),
    );
    Ok(())
}

fn add_column(table: &str, at: &mut Cursor, report: &mut Report) -> Result<(), Unreadable> {
    let column = at.name().ok_or(Unreadable("a column name after `ADD`"))?;
    if is_required(&at.tokens[at.pos..]) {
        report(
            "adding-required-field",
            format!("adding {table}.{column} as NOT NULL without a default breaks the release still inserting rows without it (and fails on a table with rows)."),
        );
    }
    Ok(())
}

/// A column definition (after its name) that is NOT NULL with no value the database supplies
/// (a default, a generated expression, an auto-increment, `SERIAL`). Words inside parentheses
/// (`CHECK (x IS NOT NULL)`, `DECIMAL(10, 2)`) are not the column's.
fn is_required(definition: &[Token]) -> bool {
    let mut depth = 0usize;
    let mut not_null = false;
    let mut supplied = false;
    let mut previous_not = false;
    for token in definition {
        match token {
            Token::Symbol('(') => depth += 1,
            Token::Symbol(')') => depth = depth.saturating_sub(1),
            Token::Word(word) if depth == 0 => {
                let word = word.to_ascii_uppercase();
                if previous_not && word == "NULL" {
                    not_null = true;
                }
                if matches!(
                    word.as_str(),
                    "DEFAULT" | "AUTO_INCREMENT" | "AUTOINCREMENT" | "GENERATED" | "AS" | "SERIAL"
                ) {
                    supplied = true;
                }
                previous_not = word == "NOT";
                continue;
            }
            _ => {}
        }
        previous_not = false;
    }
    not_null && !supplied
}

/// Splits `tokens` at `separator`s outside parentheses.
fn top_level(tokens: &[Token], separator: char) -> Vec<&[Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Symbol('(') => depth += 1,
            Token::Symbol(')') => depth = depth.saturating_sub(1),
            Token::Symbol(c) if *c == separator && depth == 0 => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

/// What is between `tokens[0]` (an opening parenthesis) and its closing one.
fn parenthesized(tokens: &[Token]) -> Option<&[Token]> {
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Symbol('(') => depth += 1,
            Token::Symbol(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(&tokens[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Reads a statement's tokens from the front.
struct Cursor<'t> {
    tokens: &'t [Token],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Moves past the bare word `keyword` when it is next.
    fn eat(&mut self, keyword: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is(keyword));
        if found {
            self.pos += 1;
        }
        found
    }

    /// Moves past whichever of `keywords` is next.
    fn eat_any(&mut self, keywords: &[&str]) -> bool {
        keywords.iter().any(|k| self.eat(k))
    }

    /// Moves past `keywords` when all of them come next, in order; otherwise stays.
    fn eat_all(&mut self, keywords: &[&str]) -> bool {
        let found = keywords
            .iter()
            .enumerate()
            .all(|(i, k)| self.tokens.get(self.pos + i).is_some_and(|t| t.is(k)));
        if found {
            self.pos += keywords.len();
        }
        found
    }

    fn eat_symbol(&mut self, symbol: char) -> bool {
        let found = self.peek() == Some(&Token::Symbol(symbol));
        if found {
            self.pos += 1;
        }
        found
    }

    /// A name, qualified or not (`a`, `` `a`.`b` ``), shown as `` `a`.`b` ``.
    fn name(&mut self) -> Option<String> {
        let mut parts = vec![self.name_part()?];
        while self.tokens.get(self.pos) == Some(&Token::Symbol('.')) {
            self.pos += 1;
            parts.push(self.name_part()?);
        }
        Some(parts.join("."))
    }

    fn name_part(&mut self) -> Option<String> {
        let part = match self.peek()? {
            Token::Word(word) => word.clone(),
            // A string where a name goes is a name under MySQL's ANSI_QUOTES.
            Token::Quoted(name) | Token::Text(name) => name.clone(),
            Token::Symbol(_) => return None,
        };
        self.pos += 1;
        Some(format!("`{}`", part.replace('`', "``")))
    }
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
    fn a_statement_of_the_class_that_cannot_be_read_is_reported_not_skipped() {
        for sql in [
            "ALTER TABLE;",
            "DROP TABLE IF EXISTS;",
            "RENAME TABLE a;",
            "ALTER TABLE t DROP COLUMN;",
            "ALTER TABLE t RENAME COLUMN a;",
            "ALTER TABLE t ADD (a INT NOT NULL;",
            "SELECT 'never closed;",
            "DROP TABLE a /* never closed;",
        ] {
            assert_eq!(
                rules(sql, Flavor::MySql),
                vec![(1, UNPARSED.into())],
                "{sql}"
            );
        }
        assert_eq!(
            rules("ALTER TABLE;\nDROP TABLE x;", Flavor::Sqlite),
            vec![(1, UNPARSED.into()), (2, "ban-drop-table".into())]
        );
    }

    #[test]
    fn reads_mysql_a_general_parser_refused() {
        // Table options beside the operations, every DROP that is not a column, MariaDB's
        // IF EXISTS, executable comments (the server runs their code).
        let sql = "ALTER TABLE t ADD COLUMN x INT NOT NULL, ALGORITHM=INPLACE, LOCK=NONE;\n\
                   ALTER TABLE t DROP INDEX i, DROP PRIMARY KEY, DROP FOREIGN KEY fk, DROP CONSTRAINT c, DROP CHECK k, DROP y;\n\
                   ALTER TABLE t DROP COLUMN IF EXISTS z;\n\
                   /*!40101 DROP TABLE old */;\n\
                   ALTER ONLINE TABLE t MODIFY COLUMN IF EXISTS w BIGINT;";
        assert_eq!(
            rules(sql, Flavor::MySql),
            vec![
                (1, "adding-required-field".into()),
                (2, "ban-drop-column".into()),
                (3, "ban-drop-column".into()),
                (4, "ban-drop-table".into()),
                (5, "changing-column-type".into()),
            ]
        );
    }

    #[test]
    fn words_inside_parentheses_strings_and_comments_are_not_the_statement() {
        let sql = "ALTER TABLE t ADD COLUMN a INT CHECK (a IS NOT NULL);\n\
                   ALTER TABLE t ADD COLUMN b DECIMAL(10, 2) NOT NULL DEFAULT 0;\n\
                   INSERT INTO t (note) VALUES ('DROP TABLE t');\n\
                   -- DROP TABLE t;\n\
                   # ALTER TABLE t DROP COLUMN a;\n\
                   ALTER TABLE t ADD (c INT NOT NULL, d INT, INDEX (c), e INT NOT NULL GENERATED ALWAYS AS (c + 1));\n\
                   ALTER TABLE t ADD INDEX (a), ADD UNIQUE KEY u (b), ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES p (id);\n\
                   DROP TEMPORARY TABLE scratch;";
        assert_eq!(
            rules(sql, Flavor::MySql),
            vec![(6, "adding-required-field".into())]
        );
    }

    #[test]
    fn quoted_keywords_are_names() {
        let got = lint_messages(
            "ALTER TABLE `order` DROP `index`;\nDROP TABLE `drop`, `db`.`t``x`;",
            Flavor::MySql,
        );
        assert_eq!(
            got,
            vec![
                "dropping column `order`.`index` loses its data and breaks the release still using it.".to_string(),
                "dropping table `drop`, `db`.`t``x` loses its data and breaks the release still using it.".to_string(),
            ]
        );
    }

    #[test]
    fn reads_sqlite_renames_with_and_without_column() {
        let sql = "ALTER TABLE a RENAME b TO c;\nALTER TABLE \"a\" RENAME TO [d];\nALTER TABLE a RENAME COLUMN x TO y;";
        assert_eq!(
            lint_messages(sql, Flavor::Sqlite),
            vec![
                "renaming column `a`.`b` to `c` breaks the release still using the old name."
                    .to_string(),
                "renaming table `a` to `d` breaks the release still using the old name."
                    .to_string(),
                "renaming column `a`.`x` to `y` breaks the release still using the old name."
                    .to_string(),
            ]
        );
    }

    #[test]
    fn a_change_that_keeps_the_name_in_another_case_is_a_redefinition() {
        assert_eq!(
            rules("ALTER TABLE t CHANGE Total total BIGINT;", Flavor::MySql),
            vec![(1, "changing-column-type".into())]
        );
    }

    #[test]
    fn a_stored_program_sent_whole_is_read_statement_by_statement() {
        let sql = "CREATE PROCEDURE p() BEGIN DROP TABLE a; IF x THEN ALTER TABLE b DROP c; ELSE RENAME TABLE d TO e; END IF; END";
        assert_eq!(
            rules(sql, Flavor::MySql),
            vec![
                (1, "ban-drop-table".into()),
                (1, "ban-drop-column".into()),
                (1, "renaming-table".into())
            ]
        );
        assert_eq!(
            rules("BEGIN NOT ATOMIC DROP VIEW v; END;", Flavor::MySql),
            vec![(1, "ban-drop-view".into())]
        );
    }

    fn lint_messages(sql: &str, flavor: Flavor) -> Vec<String> {
        let mut builder = MigrationSetBuilder::default();
        builder.add("1_m.sql", sql.as_bytes().to_vec()).unwrap();
        let set = builder.finish().unwrap();
        lint(&set.migrations[&1], flavor)
            .unwrap()
            .into_iter()
            .map(|f| f.message)
            .collect()
    }

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
                                    ColumnOption::Default(_) | ColumnOption::Generated { .. } => {
                                        true
                                    }
                                    ColumnOption::DialectSpecific(tokens) => {
                                        tokens.iter().any(|t| {
                                            t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")
                                        })
                                    }
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
            proptest::collection::vec((name.clone(), name.clone()), 1..3).prop_map(
                |pairs| format!(
                    "RENAME TABLE {}",
                    pairs
                        .iter()
                        .map(|(a, b)| format!("{a} TO {b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            ),
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
        fn never_panics(sql in "(ALTER|TABLE|DROP|a|b|COLUMN|RENAME|TO|\\(|\\)|;| |'|`|NOT|NULL|/\\*!|\\*/|\n){0,40}") {
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
}
