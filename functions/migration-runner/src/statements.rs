//! Splitting a MySQL/MariaDB migration into statements, so that a failure can name the
//! statement that failed (the server's multi-statement errors do not say which one).

/// One statement and the line of the file it starts on (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub line: usize,
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

/// Splits on `;` outside quotes, backticks and comments. Returns `None` for SQL that only the
/// server can split: stored programs (`CREATE PROCEDURE/FUNCTION/TRIGGER/EVENT`, whose
/// `BEGIN … END` bodies hold semicolons), MariaDB's `BEGIN NOT ATOMIC` and the client-only
/// `DELIMITER` command.
pub fn split(sql: &str) -> Option<Vec<Statement>> {
    if needs_the_server_to_split(sql) {
        return None;
    }
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    // Where the current statement's first code byte is, and its line.
    let mut code_start: Option<(usize, usize)> = None;
    let mut line = 1;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        let comment = byte == b'#'
            || (byte == b'-' && bytes.get(i + 1) == Some(&b'-'))
            || (byte == b'/' && bytes.get(i + 1) == Some(&b'*'));
        if !byte.is_ascii_whitespace() && !comment && byte != b';' && code_start.is_none() {
            code_start = Some((i, line));
        }
        match byte {
            b'\n' => line += 1,
            quote @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' if quote != b'`' => i += 1,
                        b'\n' => line += 1,
                        c if c == quote => {
                            // A doubled quote is an escaped quote.
                            if bytes.get(i + 1) == Some(&quote) {
                                i += 1;
                            } else {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'#' | b'-' if comment => {
                while i + 1 < bytes.len() && bytes[i + 1] != b'\n' {
                    i += 1;
                }
            }
            b'/' if comment => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            b';' => {
                if let Some((at, first_line)) = code_start.take() {
                    statements.push(Statement {
                        line: first_line,
                        sql: sql[at..i].trim_end().to_string(),
                    });
                }
            }
            _ => {}
        }
        i += 1;
    }
    if let Some((at, first_line)) = code_start {
        statements.push(Statement {
            line: first_line,
            sql: sql[at..].trim_end().to_string(),
        });
    }
    Some(statements)
}

fn needs_the_server_to_split(sql: &str) -> bool {
    let upper = sql.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_ascii_whitespace().collect();
    if upper
        .lines()
        .any(|l| l.trim_start().starts_with("DELIMITER"))
    {
        return true;
    }
    words.windows(2).any(|w| {
        (w[0] == "BEGIN" && w[1] == "NOT")
            || (["PROCEDURE", "FUNCTION", "TRIGGER", "EVENT"].contains(&w[1])
                && (w[0] == "CREATE" || w[0] == "EXISTS" || w[0].starts_with("DEFINER")))
    }) || words.iter().any(|w| w.starts_with("DEFINER="))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqls(sql: &str) -> Vec<(usize, String)> {
        split(sql)
            .expect("splittable")
            .into_iter()
            .map(|s| (s.line, s.sql))
            .collect()
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
    fn leaves_compound_statements_to_the_server() {
        assert!(split("CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END").is_none());
        assert!(split(
            "DELIMITER //\nCREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN END//"
        )
        .is_none());
    }

    #[test]
    fn a_file_of_only_comments_has_no_statements() {
        assert!(sqls("-- nothing here\n/* still nothing; */\n").is_empty());
    }
}
