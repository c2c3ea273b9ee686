//! `-- lint:allow <rule>: <reason>` comments: a migration opting out of one rule, on purpose,
//! with the reason shown in the plan and the summary.

use super::policy::is_rule;
use pipeline_ext::job::JobError;
use std::collections::BTreeMap;

const MARKER: &str = "lint:allow";

/// The rules a file allows, with their reasons.
#[derive(Debug, Default)]
pub struct Allows {
    reasons: BTreeMap<String, String>,
}

impl Allows {
    pub fn reason_for(&self, rule: &str) -> Option<&str> {
        self.reasons.get(rule).map(String::as_str)
    }
}

/// Reads every `-- lint:allow` comment of `sql`; a malformed one is a configuration error,
/// so a typo never silently allows nothing.
pub fn parse(file: &str, sql: &str) -> Result<Allows, JobError> {
    let mut allows = Allows::default();
    for (index, line) in sql.lines().enumerate() {
        let Some(comment) = line.find("--").map(|at| line[at + 2..].trim_start()) else {
            continue;
        };
        let Some(rest) = comment.strip_prefix(MARKER) else {
            continue;
        };
        let bad = |what: &str| {
            JobError::config(format!(
                "`{file}` line {}: {what}; write `-- lint:allow <rule>: <reason>`, e.g. `-- lint:allow ban-drop-column: column unused since v41`",
                index + 1
            ))
        };
        let (rule, reason) = rest.split_once(':').ok_or_else(|| bad("no reason"))?;
        let (rule, reason) = (rule.trim(), reason.trim());
        if !is_rule(rule) {
            return Err(bad(&format!("`{rule}` is not a rule name")));
        }
        if reason.is_empty() {
            return Err(bad(&format!("allowing `{rule}` needs a reason")));
        }
        allows.reasons.insert(rule.to_string(), reason.to_string());
    }
    Ok(allows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_the_rule_and_its_reason() {
        let allows = parse(
            "41_drop.sql",
            "-- lint:allow ban-drop-column: column unused since v41\nALTER TABLE a DROP COLUMN b;",
        )
        .unwrap();
        assert_eq!(
            allows.reason_for("ban-drop-column"),
            Some("column unused since v41")
        );
        assert_eq!(allows.reason_for("ban-drop-table"), None);
    }

    #[test]
    fn refuses_an_allow_without_a_reason_or_with_an_unknown_rule() {
        for sql in [
            "-- lint:allow ban-drop-column",
            "-- lint:allow ban-drop-column:   ",
            "--lint:allow ban-dropcolumn: typo",
        ] {
            let err = parse("1_x.sql", sql).unwrap_err();
            assert!(err.message.contains("`1_x.sql` line 1"), "{}", err.message);
        }
    }

    proptest! {
        #[test]
        fn never_panics(sql in "(.|\n){0,200}") {
            let _ = parse("f.sql", &sql);
        }
    }
}
