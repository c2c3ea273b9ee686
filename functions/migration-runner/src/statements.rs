//! Splitting a MySQL/MariaDB migration into statements the way the `mysql` client does, so a
//! failure can name the statement that failed (the server's multi-statement errors do not
//! say which one) and the linter can read one statement at a time.
//!
//! The client's rules, kept here: `--` starts a comment only when followed by whitespace,
//! `#` always does, `/* … */` is a comment but `/*! … */`, `/*M! … */` (executable comments)
//! and `/*+ … */` (optimizer hints) are code the server runs; quotes `'…'` and `"…"` take
//! backslash escapes and doubled quotes, backticks doubled backticks; `DELIMITER x` at the
//! start of a statement changes the terminator and is not sent to the server.

/// One statement and the line of the file it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// The line it starts on.
    pub line: usize,
    /// Its text.
    pub sql: String,
}

impl Statement {
    /// The statement's first line, shortened, for error messages.
    pub fn excerpt(&self) -> String {
        let first = self
            .sql
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("--"))
            .unwrap_or("");
        let mut text: String = first.chars().take(100).collect();
        if first.chars().count() > 100 || self.sql.trim().lines().count() > 1 {
            text.push('…');
        }
        text
    }
}

/// How a file is sent to the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// One statement at a time, as the `mysql` client sends them.
    Statements(Vec<Statement>),
    /// The file holds a stored program (`CREATE PROCEDURE … BEGIN …; END`, `BEGIN NOT ATOMIC`)
    /// with no `DELIMITER`: only the server can tell where its body ends, so the whole file is
    /// sent as one multi-statement query, as `sqlx migrate` sends every file.
    Whole,
}

/// Why a file cannot be split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitError {
    /// The line where the problem is.
    pub line: usize,
    /// What it is.
    pub message: String,
}

/// The quoting rules of the dialect being split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// MySQL and MariaDB: backslash escapes in strings, `#` comments, `DELIMITER`.
    MySql,
    /// SQLite: strings are literal (no backslash escapes); no `DELIMITER`.
    Sqlite,
}

/// Splits `sql` into statements (see the module documentation for the rules).
pub fn split(sql: &str, dialect: Dialect) -> Result<Split, SplitError> {
    let mut scanner = Scanner {
        bytes: sql.as_bytes(),
        sql,
        dialect,
        i: 0,
        line: 1,
    };
    let mut statements = Vec::new();
    let mut delimiter = ";".to_string();
    let mut compound_under_semicolon = false;
    let mut custom_delimiter = false;
    while let Some(start) = scanner.skip_trivia() {
        let first_line = scanner.line;
        if dialect == Dialect::MySql && scanner.at_word("DELIMITER") && scanner.word_ends_at(9) {
            delimiter = scanner.delimiter_command(first_line)?;
            custom_delimiter = true;
            continue;
        }
        let end = scanner.statement_end(&delimiter);
        let text = sql[start..end].trim_end();
        if !text.is_empty() {
            if delimiter == ";" && is_compound(text, dialect) {
                compound_under_semicolon = true;
            }
            statements.push(Statement {
                line: first_line,
                sql: text.to_string(),
            });
        }
        scanner.skip_delimiter(&delimiter);
    }
    if compound_under_semicolon && !custom_delimiter {
        return Ok(Split::Whole);
    }
    Ok(Split::Statements(statements))
}

/// Walks a migration's bytes, skipping quotes and comments.
struct Scanner<'a> {
    /// The migration's bytes.
    bytes: &'a [u8],
    /// The same, as text.
    sql: &'a str,
    /// Whose quoting and comment rules apply.
    dialect: Dialect,
    /// The position.
    i: usize,
    /// The line at the position.
    line: usize,
}

impl Scanner<'_> {
    /// The byte `offset` ahead.
    fn peek(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.i + offset).copied()
    }

    /// Moves one byte, counting lines.
    fn advance(&mut self) {
        if self.bytes[self.i] == b'\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    /// Skips whitespace and comments; returns where code starts, or `None` at the end.
    fn skip_trivia(&mut self) -> Option<usize> {
        while self.i < self.bytes.len() {
            if self.bytes[self.i].is_ascii_whitespace() {
                self.advance();
            } else if self.at_line_comment() {
                self.skip_line();
            } else if self.at_block_comment() {
                self.skip_block_comment();
            } else {
                return Some(self.i);
            }
        }
        None
    }

    /// A `--` or `#` comment starts here.
    fn at_line_comment(&self) -> bool {
        match self.peek(0) {
            Some(b'#') => self.dialect == Dialect::MySql,
            // MySQL needs whitespace after `--`; SQLite does not.
            Some(b'-') => {
                self.peek(1) == Some(b'-')
                    && (self.dialect == Dialect::Sqlite
                        || self.peek(2).is_none_or(|c| c.is_ascii_whitespace()))
            }
            _ => false,
        }
    }

    /// A comment the server ignores: not `/*!`, `/*M!` or `/*+`, which it runs.
    fn at_block_comment(&self) -> bool {
        if self.peek(0) != Some(b'/') || self.peek(1) != Some(b'*') {
            return false;
        }
        if self.dialect == Dialect::Sqlite {
            return true;
        }
        let executable = matches!(self.peek(2), Some(b'!' | b'+'))
            || (self.peek(2) == Some(b'M') && self.peek(3) == Some(b'!'));
        !executable
    }

    /// Skips to the end of the line.
    fn skip_line(&mut self) {
        while self.i < self.bytes.len() && self.bytes[self.i] != b'\n' {
            self.i += 1;
        }
    }

    /// Skips a `/* */` comment.
    fn skip_block_comment(&mut self) {
        self.i += 2;
        while self.i < self.bytes.len() {
            if self.bytes[self.i] == b'*' && self.peek(1) == Some(b'/') {
                self.i += 2;
                return;
            }
            self.advance();
        }
    }

    /// Moves past a quoted string or name; false when the input ends before its closing quote.
    fn skip_quoted(&mut self, quote: u8) -> bool {
        self.i += 1;
        while self.i < self.bytes.len() {
            let byte = self.bytes[self.i];
            if byte == b'\\' && quote != b'`' && self.dialect == Dialect::MySql {
                self.i += 1;
                if self.i < self.bytes.len() {
                    self.advance();
                }
                continue;
            }
            if byte == quote {
                if self.peek(1) == Some(quote) {
                    self.i += 2;
                    continue;
                }
                self.i += 1;
                return true;
            }
            self.advance();
        }
        false
    }

    /// `word` (case-insensitive) starts here, as a whole word.
    fn at_word(&self, word: &str) -> bool {
        self.bytes.len() >= self.i + word.len()
            && self.bytes[self.i..self.i + word.len()].eq_ignore_ascii_case(word.as_bytes())
    }

    /// A word of `len` bytes ends here.
    fn word_ends_at(&self, len: usize) -> bool {
        self.peek(len).is_none_or(|c| c.is_ascii_whitespace())
    }

    /// Reads `DELIMITER x` (the rest of the line is the command) and returns `x`.
    fn delimiter_command(&mut self, line: usize) -> Result<String, SplitError> {
        let start = self.i;
        self.skip_line();
        let command = &self.sql[start..self.i];
        let value = command[9..].split_whitespace().next().unwrap_or("");
        if value.is_empty() || value.contains('\\') {
            return Err(SplitError {
                line,
                message: "`DELIMITER` must be followed by the new delimiter (e.g. `DELIMITER //`), without backslashes".into(),
            });
        }
        Ok(value.to_string())
    }

    /// Moves to the next `delimiter` outside quotes and comments (or the end), returning it.
    fn statement_end(&mut self, delimiter: &str) -> usize {
        while self.i < self.bytes.len() {
            if self.bytes[self.i..].starts_with(delimiter.as_bytes()) {
                return self.i;
            }
            match self.bytes[self.i] {
                quote @ (b'\'' | b'"' | b'`') => {
                    self.skip_quoted(quote);
                }
                b'[' if self.dialect == Dialect::Sqlite => self.skip_quoted_until(b']'),
                _ if self.at_line_comment() => self.skip_line(),
                _ if self.at_block_comment() => self.skip_block_comment(),
                _ => self.advance(),
            }
        }
        self.i
    }

    /// Skips to after the closing quote, doubled quotes and escapes included.
    fn skip_quoted_until(&mut self, close: u8) {
        while self.i < self.bytes.len() && self.bytes[self.i] != close {
            self.advance();
        }
        self.i = (self.i + 1).min(self.bytes.len());
    }

    /// Skips a `DELIMITER` line's delimiter.
    fn skip_delimiter(&mut self, delimiter: &str) {
        if self.bytes[self.i.min(self.bytes.len())..].starts_with(delimiter.as_bytes()) {
            self.i += delimiter.len();
        }
    }
}

/// A stored program or compound block, whose body holds `;`s: only the server (or a
/// `DELIMITER`) can tell where it ends.
fn is_compound(statement: &str, dialect: Dialect) -> bool {
    let words = code_words(statement, dialect, 12);
    let Some(first) = words.first() else {
        return false;
    };
    if first == "BEGIN" {
        return words.get(1).is_some_and(|w| w == "NOT");
    }
    if first != "CREATE" {
        return false;
    }
    for word in &words[1..] {
        match word.as_str() {
            "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT" | "PACKAGE" => return true,
            "TABLE" | "VIEW" | "INDEX" | "UNIQUE" | "FULLTEXT" | "SPATIAL" | "DATABASE"
            | "SCHEMA" | "USER" | "ROLE" | "SEQUENCE" | "SERVER" | "TEMPORARY" | "TABLESPACE" => {
                return false
            }
            _ => {}
        }
    }
    false
}

/// The first `limit` bare words of a statement, upper-cased, outside quotes and comments (up
/// to a quote or comment that does not end).
fn code_words(statement: &str, dialect: Dialect, limit: usize) -> Vec<String> {
    let (tokens, _) = scan_tokens(statement, dialect, Some(limit));
    tokens
        .into_iter()
        .filter_map(|token| match token {
            Token::Word(word) => Some(word.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

/// One token of a statement, outside comments, for the linter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// A bare word as written: a keyword, an unquoted name or a number.
    Word(String),
    /// A quoted name (`` `x` ``; `"x"` and `[x]` on SQLite), without its quotes.
    Quoted(String),
    /// A string literal (`'x'`; `"x"` on MySQL, unless `ANSI_QUOTES` makes it a name), unquoted.
    Text(String),
    /// Any other character: `(`, `)`, `,`, `.`, `=`…
    Symbol(char),
}

impl Token {
    /// True for the bare word `keyword`, in any case (a quoted name is never a keyword).
    pub fn is(&self, keyword: &str) -> bool {
        matches!(self, Token::Word(word) if word.eq_ignore_ascii_case(keyword))
    }
}

/// A quote or comment that does not end before the statement does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unterminated;

/// The tokens of one statement (as [`split`] returns them). Comments are dropped; the code of
/// MySQL's executable comments (`/*!40101 … */`, `/*M! … */`) and hints (`/*+ … */`) is kept,
/// as the server reads it.
pub fn tokens(statement: &str, dialect: Dialect) -> Result<Vec<Token>, Unterminated> {
    match scan_tokens(statement, dialect, None) {
        (tokens, true) => Ok(tokens),
        (_, false) => Err(Unterminated),
    }
}

/// The tokens up to `words` bare words (all when `None`), and whether every quote and comment
/// met on the way ended.
fn scan_tokens(statement: &str, dialect: Dialect, words: Option<usize>) -> (Vec<Token>, bool) {
    let mut scanner = Scanner {
        bytes: statement.as_bytes(),
        sql: statement,
        dialect,
        i: 0,
        line: 1,
    };
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80;
    let mut tokens = Vec::new();
    let mut word_count = 0;
    while scanner.i < scanner.bytes.len() && words.is_none_or(|limit| word_count < limit) {
        let byte = scanner.bytes[scanner.i];
        let start = scanner.i;
        if byte.is_ascii_whitespace() {
            scanner.i += 1;
        } else if is_word(byte) {
            while scanner.peek(0).is_some_and(is_word) {
                scanner.i += 1;
            }
            tokens.push(Token::Word(statement[start..scanner.i].to_string()));
            word_count += 1;
        } else if matches!(byte, b'\'' | b'"' | b'`') {
            if !scanner.skip_quoted(byte) {
                return (tokens, false);
            }
            let inner = unquote(&statement[start + 1..scanner.i - 1], byte, dialect);
            tokens.push(match byte {
                b'`' => Token::Quoted(inner),
                b'"' if dialect == Dialect::Sqlite => Token::Quoted(inner),
                _ => Token::Text(inner),
            });
        } else if byte == b'[' && dialect == Dialect::Sqlite {
            let Some(len) = statement[start..].find(']') else {
                return (tokens, false);
            };
            tokens.push(Token::Quoted(statement[start + 1..start + len].to_string()));
            scanner.i = start + len + 1;
        } else if scanner.at_line_comment() {
            scanner.skip_line();
        } else if scanner.at_block_comment() {
            let closed = statement[start + 2..].contains("*/");
            scanner.skip_block_comment();
            if !closed {
                return (tokens, false);
            }
        } else if byte == b'/' && scanner.peek(1) == Some(b'*') {
            // An executable comment's or hint's marker (`/*!40101`, `/*M!100100`, `/*+`): its
            // code is read, its version is not.
            scanner.i += 2;
            if scanner.peek(0) == Some(b'M') && scanner.peek(1) == Some(b'!') {
                scanner.i += 1;
            }
            scanner.i += 1;
            while scanner.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                scanner.i += 1;
            }
        } else if byte == b'*' && scanner.peek(1) == Some(b'/') {
            // The end of an executable comment.
            scanner.i += 2;
        } else {
            tokens.push(Token::Symbol(char::from(byte)));
            scanner.i += 1;
        }
    }
    (tokens, true)
}

/// The text between a pair of quotes: doubled quotes and (MySQL strings) backslash escapes undone.
fn unquote(inner: &str, quote: u8, dialect: Dialect) -> String {
    let quote = char::from(quote);
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote && chars.peek() == Some(&quote) {
            chars.next();
        } else if c == '\\' && quote != '`' && dialect == Dialect::MySql {
            if let Some(next) = chars.next() {
                text.push(next);
                continue;
            }
        }
        text.push(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sqls(sql: &str) -> Vec<(usize, String)> {
        match split(sql, Dialect::MySql).expect("splittable") {
            Split::Statements(list) => list.into_iter().map(|s| (s.line, s.sql)).collect(),
            Split::Whole => panic!("sent whole"),
        }
    }

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let sql = "-- header; not a statement\nCREATE TABLE a (x text DEFAULT ';');\n\n/* ; */ INSERT INTO a VALUES ('it''s; fine'), (\"q;\");\n# trailing; comment\nUPDATE `we;ird` SET x = 'a\\';b'";
        assert_eq!(
            sqls(sql),
            vec![
                (2, "CREATE TABLE a (x text DEFAULT ';')".to_string()),
                (
                    4,
                    "INSERT INTO a VALUES ('it''s; fine'), (\"q;\")".to_string()
                ),
                (6, "UPDATE `we;ird` SET x = 'a\\';b'".to_string()),
            ]
        );
    }

    #[test]
    fn executable_comments_are_statements_the_server_runs() {
        let sql = "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */;\n/*M!100100 SET @x = 1 */;\n/* plain; */\nSELECT /*+ MAX_EXECUTION_TIME(1000) */ 1;\n";
        assert_eq!(
            sqls(sql),
            vec![
                (1, "/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */".to_string()),
                (2, "/*M!100100 SET @x = 1 */".to_string()),
                (4, "SELECT /*+ MAX_EXECUTION_TIME(1000) */ 1".to_string()),
            ]
        );
    }

    #[test]
    fn double_dash_needs_a_space_to_be_a_comment() {
        assert_eq!(
            sqls("UPDATE t SET x = 1--1;\n-- real; comment\nSELECT 2;"),
            vec![
                (1, "UPDATE t SET x = 1--1".to_string()),
                (3, "SELECT 2".to_string())
            ]
        );
    }

    #[test]
    fn delimiter_commands_split_stored_programs_as_the_mysql_client_does() {
        let sql = "CREATE TABLE t (x INT);\nDELIMITER //\nCREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND//\ndelimiter ;\nCALL p();\n";
        assert_eq!(
            sqls(sql),
            vec![
                (1, "CREATE TABLE t (x INT)".to_string()),
                (
                    3,
                    "CREATE PROCEDURE p()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND".to_string()
                ),
                (9, "CALL p()".to_string()),
            ]
        );
        let err = split("DELIMITER\nSELECT 1;", Dialect::MySql).unwrap_err();
        assert_eq!(err.line, 1);
    }

    #[test]
    fn stored_programs_without_delimiter_go_to_the_server_whole() {
        for sql in [
            "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
            "CREATE OR REPLACE PROCEDURE p() BEGIN SELECT 1; END;",
            "CREATE DEFINER=`root`@`%` TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END;",
            "CREATE TABLE a (x INT);\nCREATE AGGREGATE FUNCTION f(x INT) RETURNS INT BEGIN RETURN 1; END;",
            "BEGIN NOT ATOMIC SELECT 1; END;",
        ] {
            assert_eq!(split(sql, Dialect::MySql).unwrap(), Split::Whole, "{sql}");
        }
        // Words that only look like programs are names.
        assert_eq!(sqls("CREATE TABLE event (id INT); SELECT 1;").len(), 2);
    }

    #[test]
    fn a_file_of_only_comments_has_no_statements() {
        assert!(sqls("-- nothing here\n/* still nothing; */\n").is_empty());
    }

    #[test]
    fn sqlite_strings_take_no_backslash_escapes() {
        let Split::Statements(list) =
            split("INSERT INTO t VALUES ('a\\');\nSELECT 1;", Dialect::Sqlite).unwrap()
        else {
            panic!()
        };
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn tokens_drop_comments_and_keep_executable_code() {
        let got = tokens(
            "ALTER /* plain */ TABLE `we``ird` -- note\n /*!40101 DROP */ \"b\", ADD x INT DEFAULT 'it''s'",
            Dialect::MySql,
        )
        .unwrap();
        let words = |w: &str| Token::Word(w.to_string());
        assert_eq!(
            got,
            vec![
                words("ALTER"),
                words("TABLE"),
                Token::Quoted("we`ird".into()),
                words("DROP"),
                Token::Text("b".into()),
                Token::Symbol(','),
                words("ADD"),
                words("x"),
                words("INT"),
                words("DEFAULT"),
                Token::Text("it's".into()),
            ]
        );
        assert_eq!(
            tokens("DROP TABLE \"a\", [b c]", Dialect::Sqlite).unwrap()[2..],
            [
                Token::Quoted("a".into()),
                Token::Symbol(','),
                Token::Quoted("b c".into())
            ]
        );
        assert!(tokens("#x\nDROP", Dialect::Sqlite).unwrap()[0] == Token::Symbol('#'));
        // Markers and versions are not code; a word right after the marker is.
        for (sql, first) in [
            ("/*M!100100 DROP TABLE a */", "DROP"),
            ("/*!MODIFY*/", "MODIFY"),
            ("/*+MAX_EXECUTION_TIME(1)*/", "MAX_EXECUTION_TIME"),
        ] {
            assert_eq!(
                tokens(sql, Dialect::MySql).unwrap()[0],
                Token::Word(first.into()),
                "{sql}"
            );
        }
    }

    #[test]
    fn tokens_refuse_what_does_not_end() {
        for sql in ["DROP TABLE `a", "SELECT 'x", "SELECT /* x", "DROP TABLE [a"] {
            assert_eq!(tokens(sql, Dialect::Sqlite), Err(Unterminated), "{sql}");
        }
        assert_eq!(tokens("SELECT 'x\\'", Dialect::MySql), Err(Unterminated));
        assert!(tokens("SELECT 'x\\'", Dialect::Sqlite).is_ok());
    }

    proptest! {
        #[test]
        fn never_panics_and_statements_come_from_the_input(sql in "[a-zA-Z0-9 ;'\"`#/*!é§\\-\\\\\n]{0,200}") {
            for dialect in [Dialect::MySql, Dialect::Sqlite] {
                if let Ok(Split::Statements(list)) = split(&sql, dialect) {
                    let mut last = 0;
                    for statement in list {
                        prop_assert!(!statement.sql.is_empty());
                        prop_assert!(statement.line >= last);
                        last = statement.line;
                        prop_assert!(sql.contains(&statement.sql));
                        // Every piece tokenizes or says where it does not end; never a panic.
                        let _ = tokens(&statement.sql, dialect);
                    }
                }
                let _ = tokens(&sql, dialect);
            }
        }

        #[test]
        fn plain_statements_round_trip(parts in proptest::collection::vec("[a-z]{1,8}( [a-z0-9]{1,8}){0,4}", 1..10)) {
            prop_assume!(parts.iter().all(|p| !is_compound(p, Dialect::MySql)));
            let sql = parts.iter().map(|p| format!("{p};\n")).collect::<String>();
            let got: Vec<String> = sqls(&sql).into_iter().map(|(_, s)| s).collect();
            prop_assert_eq!(got, parts);
        }
    }
}
