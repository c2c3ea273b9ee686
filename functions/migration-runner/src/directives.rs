//! What a migration file says about how to run it, in comment lines at its top (before the
//! first statement):
//!
//! - `-- no-transaction` on the first line (sqlx's spelling) or `-- migrate:no-transaction`
//!   anywhere in the header: run outside a transaction (`CREATE INDEX CONCURRENTLY`,
//!   `ALTER TYPE … ADD VALUE` before PostgreSQL 12, `VACUUM`);
//! - `-- migrate:lock_timeout 10s`: how long each statement may wait for a table lock;
//! - `-- migrate:statement_timeout 5m`: how long each statement may run.
//!
//! A `-- migrate:` line this runner does not know, or a value it cannot read, refuses the run:
//! a misspelt directive silently ignored would run a migration with the wrong safety net.

use std::time::Duration;

/// The most a lock wait may be set to: one Lambda run.
pub const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(900);
/// The most a statement timeout may be set to.
pub const MAX_STATEMENT_TIMEOUT: Duration = Duration::from_secs(86_400);

/// The directives of one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// Run outside a transaction.
    pub no_transaction: bool,
    /// Each statement's wait for a table lock, instead of the parameters'.
    pub lock_timeout: Option<Duration>,
    /// Each statement's time limit, instead of the parameters'.
    pub statement_timeout: Option<Duration>,
}

/// Reads the header of `sql`; the error says which line is wrong and how.
pub fn read(sql: &str) -> Result<Directives, String> {
    let mut directives = Directives {
        no_transaction: sql.starts_with("-- no-transaction"),
        ..Directives::default()
    };
    for (index, line) in sql.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        let Some(directive) = comment.trim().strip_prefix("migrate:") else {
            continue;
        };
        let mut words = directive.split_whitespace();
        let name = words.next().unwrap_or_default();
        let value = words.next();
        let at = |why: String| format!("line {}: `{line}`: {why}", index + 1);
        if words.next().is_some() {
            return Err(at("one value expected".into()));
        }
        match (name, value) {
            ("no-transaction" | "no_transaction", None) => directives.no_transaction = true,
            ("lock_timeout", Some(value)) => {
                directives.lock_timeout = Some(duration(value, MAX_LOCK_TIMEOUT).map_err(at)?)
            }
            ("statement_timeout", Some(value)) => {
                directives.statement_timeout =
                    Some(duration(value, MAX_STATEMENT_TIMEOUT).map_err(at)?)
            }
            ("no-transaction" | "no_transaction", Some(_)) => {
                return Err(at("takes no value".into()))
            }
            ("lock_timeout" | "statement_timeout", None) => {
                return Err(at("needs a duration, e.g. `10s`".into()))
            }
            _ => {
                return Err(at(
                    "unknown directive; expected `migrate:no-transaction`, `migrate:lock_timeout <duration>` or `migrate:statement_timeout <duration>`".into(),
                ))
            }
        }
    }
    Ok(directives)
}

/// `500ms`, `10s`, `5m`, `1h`: more than zero and at most `max`.
fn duration(text: &str, max: Duration) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `500ms`, `10s`, `5m` or `1h`"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`{text}`: the unit must be `ms`, `s`, `m` or `h`")),
    };
    let millis = number
        .checked_mul(unit_ms)
        .filter(|ms| *ms > 0 && *ms <= max.as_millis() as u64)
        .ok_or_else(|| {
            format!(
                "`{text}` must be more than zero and at most {} s",
                max.as_secs()
            )
        })?;
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_header_directives() {
        let sql = "-- Add the index without blocking writes.\n\
                   -- migrate:no-transaction\n\
                   -- migrate:lock_timeout 2s\n\
                   --migrate:statement_timeout 15m\n\
                   CREATE INDEX CONCURRENTLY i ON t (c);\n\
                   -- migrate:lock_timeout 9h (after the first statement: not a directive)\n";
        assert_eq!(
            read(sql).unwrap(),
            Directives {
                no_transaction: true,
                lock_timeout: Some(Duration::from_secs(2)),
                statement_timeout: Some(Duration::from_secs(900)),
            }
        );
    }

    #[test]
    fn keeps_sqlx_spelling_on_the_first_line_only() {
        assert!(read("-- no-transaction\nVACUUM;").unwrap().no_transaction);
        assert!(
            !read("SELECT 1;\n-- no-transaction\n")
                .unwrap()
                .no_transaction
        );
        assert_eq!(
            read("CREATE TABLE t (id int);").unwrap(),
            Directives::default()
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for (sql, says) in [
            ("-- migrate:lock_timeuot 5s\n", "unknown directive"),
            ("-- migrate:lock_timeout\n", "needs a duration"),
            ("-- migrate:lock_timeout 5\n", "the unit must be"),
            ("-- migrate:lock_timeout 0s\n", "more than zero"),
            ("-- migrate:lock_timeout 16m\n", "at most 900 s"),
            ("-- migrate:statement_timeout 25h\n", "at most 86400 s"),
            ("-- migrate:lock_timeout 5 s\n", "one value expected"),
            ("-- migrate:no-transaction yes\n", "takes no value"),
            (
                "-- migrate:lock_timeout 99999999999999999999h\n",
                "not a duration",
            ),
        ] {
            let err = read(sql).unwrap_err();
            assert!(
                err.contains(says) && err.starts_with("line 1:"),
                "{sql}: {err}"
            );
        }
    }

    proptest! {
        #[test]
        fn reading_never_panics(sql in "(-- ?migrate:[a-z_-]{0,20} ?[0-9a-z ]{0,12}\n){0,4}\\PC{0,40}") {
            let _ = read(&sql);
        }

        #[test]
        fn a_duration_reads_back_in_milliseconds(ms in 1u64..=900_000) {
            let header = format!("-- migrate:lock_timeout {ms}ms\n");
            prop_assert_eq!(read(&header).unwrap().lock_timeout, Some(Duration::from_millis(ms)));
        }
    }
}
