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

/// Which SQL dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flavor {
    /// MySQL and MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

/// The findings of one migration.
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
        for statement in compound_statements(&tokens) {
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

/// The statements in one piece: a stored program's, trigger's or event's body statements
/// start after `;` (a file sent whole, or a `DELIMITER` piece) and after `BEGIN [NOT ATOMIC]`,
/// `THEN`, `ELSE`, `DO`, `LOOP` and `REPEAT`. A body's DROP runs when the program is called
/// or the event fires, often in the same release. In a plain statement these words start
/// nothing the lint reads (`CASE … THEN x ELSE y END`).
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

/// Where a finding goes: rule and message.
type Report<'a> = dyn FnMut(&'static str, String) + 'a;

/// Checks one statement.
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
            rename_table(&old, &new, report);
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

/// `DROP TABLE`/`DROP COLUMN`… findings.
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

/// `ALTER TABLE` findings, operation by operation.
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
            rename_table(table, &new, report);
            return Ok(());
        }
        let first = at.name().ok_or(Unreadable("a name after `RENAME`"))?;
        if !at.eat("TO") {
            if explicit_column {
                return Err(Unreadable("`TO` and the new column name"));
            }
            // MySQL's `RENAME new_name`: the table's.
            rename_table(table, &first, report);
            return Ok(());
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

/// A renamed table.
fn rename_table(table: &str, new: &str, report: &mut Report) {
    report(
        "renaming-table",
        format!("renaming table {table} to {new} breaks the release still using the old name."),
    );
}

/// An added column that is `NOT NULL` without a default.
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
    /// The tokens.
    tokens: &'t [Token],
    /// The position.
    pos: usize,
}

impl Cursor<'_> {
    /// The next token.
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

    /// Consumes `symbol` when it is next.
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

    /// One part of a name, unquoted.
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
mod reference;
#[cfg(test)]
mod tests;
