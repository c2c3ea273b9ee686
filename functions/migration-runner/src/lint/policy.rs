//! The lint policy from `UserParameters`: which rules and classes deny, warn or are off.

use pipeline_ext::job::JobError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// `lint` in `UserParameters`: rule names (squawk's, e.g. `ban-drop-column`) or class names.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LintParams {
    /// Rules and classes that fail the run.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Rules and classes that only warn.
    #[serde(default)]
    pub warn: Vec<String>,
    /// Rules and classes turned off.
    #[serde(default)]
    pub off: Vec<String>,
}

/// What a finding does to the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Not checked.
    Off,
    /// Reported.
    Warn,
    /// Reported, and the run refused.
    Deny,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Off => "off",
            Level::Warn => "warn",
            Level::Deny => "deny",
        })
    }
}

/// Why a rule matters; the default policy denies the first two classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Loses data: dropping a table or a column, truncating.
    Destructive,
    /// The release still running breaks on the new schema: renames, type changes, required
    /// columns, dropped defaults, views, functions and types.
    BackwardIncompatible,
    /// Everything else: locks held too long, style, statements the linter could not parse.
    Other,
}

impl Class {
    /// Every class.
    const ALL: [Class; 3] = [
        Class::Destructive,
        Class::BackwardIncompatible,
        Class::Other,
    ];

    /// The class's name in `UserParameters`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Destructive => "destructive",
            Class::BackwardIncompatible => "backward-incompatible",
            Class::Other => "other",
        }
    }

    /// The class a name is.
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The class of a rule name.
    pub fn of(rule: &str) -> Self {
        match rule {
            "ban-drop-column"
            | "ban-drop-table"
            | "ban-drop-database"
            | "ban-drop-schema"
            | "ban-truncate-cascade" => Class::Destructive,
            "renaming-column"
            | "renaming-table"
            | "renaming-object"
            | "changing-column-type"
            | "adding-required-field"
            | "adding-not-nullable-field"
            | "ban-drop-default"
            | "ban-drop-view"
            | "ban-drop-function"
            | "ban-drop-type"
            | "ban-drop-sequence"
            | "ban-set-schema" => Class::BackwardIncompatible,
            _ => Class::Other,
        }
    }

    /// The level without a setting.
    fn default_level(self) -> Level {
        match self {
            Class::Destructive | Class::BackwardIncompatible => Level::Deny,
            Class::Other => Level::Warn,
        }
    }
}

/// Findings whose statement PostgreSQL refuses as the migration is written:
/// `CREATE INDEX CONCURRENTLY` (and its kin) inside the transaction the runner wraps a
/// migration in.
const CANNOT_RUN: &[&str] = &["ban-concurrent-index-creation-in-transaction"];

/// Rules of our own, beside squawk's.
pub const UNPARSED: &str = "unparsed";

/// Whether `name` is a rule this runner can report.
pub fn is_rule(name: &str) -> bool {
    name == UNPARSED || name.parse::<squawk_linter::Rule>().is_ok()
}

/// The resolved policy: a named rule beats its class, a class beats the default.
#[derive(Clone, Debug, Default)]
pub struct LintPolicy {
    /// Levels set per rule.
    rules: BTreeMap<String, Level>,
    /// Levels set per class.
    classes: BTreeMap<Class, Level>,
}

impl LintPolicy {
    /// The policy, checking every name it is given.
    pub fn new(params: &LintParams) -> Result<Self, JobError> {
        let mut policy = Self::default();
        let mut seen: BTreeMap<&str, Level> = BTreeMap::new();
        for (level, names) in [
            (Level::Deny, &params.deny),
            (Level::Warn, &params.warn),
            (Level::Off, &params.off),
        ] {
            for name in names {
                if let Some(other) = seen.insert(name, level) {
                    if other != level {
                        return Err(JobError::config(format!(
                            "`lint`: `{name}` is in both `{other}` and `{level}`; give it once"
                        )));
                    }
                }
                if let Some(class) = Class::parse(name) {
                    policy.classes.insert(class, level);
                } else if is_rule(name) {
                    policy.rules.insert(name.clone(), level);
                } else {
                    return Err(JobError::config(format!(
                        "`lint`: `{name}` is neither a class (destructive, backward-incompatible, other) nor a rule (a squawk rule name such as `ban-drop-column`, or `unparsed`)"
                    )));
                }
            }
        }
        Ok(policy)
    }

    /// A rule's level. A finding the database itself would refuse (its statement cannot run
    /// as the migration is written) denies unless the rule is named: a class setting does not
    /// turn it into a warning the database then fails on.
    pub fn level(&self, rule: &str) -> Level {
        let class = Class::of(rule);
        if let Some(level) = self.rules.get(rule) {
            return *level;
        }
        if CANNOT_RUN.contains(&rule) {
            return Level::Deny;
        }
        self.classes
            .get(&class)
            .copied()
            .unwrap_or_else(|| class.default_level())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: serde_json::Value) -> Result<LintPolicy, JobError> {
        LintPolicy::new(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn the_default_denies_destructive_and_incompatible_changes_and_warns_on_the_rest() {
        let default = policy(serde_json::json!({})).unwrap();
        assert_eq!(default.level("ban-drop-column"), Level::Deny);
        assert_eq!(default.level("renaming-column"), Level::Deny);
        assert_eq!(default.level("adding-required-field"), Level::Deny);
        assert_eq!(
            default.level("require-concurrent-index-creation"),
            Level::Warn
        );
        assert_eq!(default.level(UNPARSED), Level::Warn);
        assert_eq!(
            default.level("ban-concurrent-index-creation-in-transaction"),
            Level::Deny
        );
        let warn_others = policy(serde_json::json!({"warn": ["other"]})).unwrap();
        assert_eq!(
            warn_others.level("ban-concurrent-index-creation-in-transaction"),
            Level::Deny,
            "a class setting does not make a statement the database refuses a warning"
        );
        let named =
            policy(serde_json::json!({"off": ["ban-concurrent-index-creation-in-transaction"]}))
                .unwrap();
        assert_eq!(
            named.level("ban-concurrent-index-creation-in-transaction"),
            Level::Off
        );
    }

    #[test]
    fn a_named_rule_beats_its_class() {
        let p = policy(serde_json::json!({"warn": ["destructive"], "deny": ["ban-drop-table", "other"], "off": ["prefer-text-field"]})).unwrap();
        assert_eq!(p.level("ban-drop-column"), Level::Warn);
        assert_eq!(p.level("ban-drop-table"), Level::Deny);
        assert_eq!(p.level("prefer-robust-stmts"), Level::Deny);
        assert_eq!(p.level("prefer-text-field"), Level::Off);
    }

    #[test]
    fn unknown_names_and_contradictions_are_configuration_errors() {
        let err = policy(serde_json::json!({"deny": ["ban-drop-colum"]})).unwrap_err();
        assert!(err.message.contains("`ban-drop-colum`"), "{}", err.message);
        let err = policy(serde_json::json!({"deny": ["other"], "off": ["other"]})).unwrap_err();
        assert!(err.message.contains("both"), "{}", err.message);
    }
}
