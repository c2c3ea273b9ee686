//! The approval policy: who may decide which approval, how many must agree, whether the person
//! who started the execution may approve it, and when a reason is asked for.
//!
//! ```json
//! {
//!   "rules": [
//!     {"name": "production", "pipeline": "prod-*", "stage": "*", "action": "*",
//!      "approvers": ["U0ALICE", "U0BOB", "S0RELEASE"], "required": 2,
//!      "forbid_self_approval": true, "require_reason_for": ["reject", "approve"]}
//!   ],
//!   "default": {"approvers": ["U0ALICE"]}
//! }
//! ```
//!
//! Rules are tried in order and the first whose globs (`*` any run of characters, `?` one)
//! match the approval's pipeline, stage and action applies; otherwise `default`, which is
//! `APPROVERS` when the document has none (and allows nobody when that is empty too).

use crate::approvers::Approvers;
use pipeline_ext::slack::approval::ApprovalRef;
use serde::Deserialize;

/// Decisions that can be made to ask for a reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approve.
    Approve,
    /// The default in a modal's metadata: the dialog used to be for rejections only.
    #[default]
    Reject,
}

/// One rule as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDocument {
    /// A name for messages.
    #[serde(default)]
    name: Option<String>,
    /// Pipeline glob.
    #[serde(default = "any")]
    pipeline: String,
    /// Stage glob.
    #[serde(default = "any")]
    stage: String,
    /// Action glob.
    #[serde(default = "any")]
    action: String,
    /// Slack user and group ids.
    approvers: Vec<String>,
    /// Distinct approvals needed.
    #[serde(default = "one")]
    required: u32,
    /// Whoever started the execution may not approve it.
    #[serde(default)]
    forbid_self_approval: bool,
    /// Decisions that ask for a reason first.
    #[serde(default = "reject_only")]
    require_reason_for: Vec<Decision>,
}

/// The policy document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    /// Rules, first match wins.
    #[serde(default)]
    rules: Vec<RuleDocument>,
    /// The rule when none matches (else `APPROVERS`).
    #[serde(default)]
    default: Option<RuleDocument>,
}

/// `*`.
fn any() -> String {
    "*".into()
}
/// One approval.
fn one() -> u32 {
    1
}
/// A reason for Reject only.
fn reject_only() -> Vec<Decision> {
    vec![Decision::Reject]
}

/// A rule in force.
pub struct Rule {
    /// How refusals name it: the rule's `name`, else its globs, else "this pipeline".
    pub description: String,
    /// Pipeline glob.
    pipeline: String,
    /// Stage glob.
    stage: String,
    /// Action glob.
    action: String,
    /// Who may decide.
    pub approvers: Approvers,
    /// Distinct approvals needed.
    pub required: u32,
    /// Whoever started the execution may not approve it.
    pub forbid_self_approval: bool,
    /// Decisions that ask for a reason first.
    require_reason_for: Vec<Decision>,
}

impl Rule {
    /// Whether this decision asks for a reason.
    pub fn requires_reason(&self, decision: Decision) -> bool {
        self.require_reason_for.contains(&decision)
    }

    /// Whether the rule is about this approval.
    fn matches(&self, approval: &ApprovalRef) -> bool {
        glob_match(&self.pipeline, &approval.pipeline)
            && glob_match(&self.stage, &approval.stage)
            && glob_match(&self.action, &approval.action)
    }

    /// The rule `APPROVERS` stands for: any one of them, a reason to reject.
    fn from_approvers(list: &str) -> Self {
        Self {
            description: "this pipeline".into(),
            pipeline: any(),
            stage: any(),
            action: any(),
            approvers: Approvers::parse(list),
            required: 1,
            forbid_self_approval: false,
            require_reason_for: reject_only(),
        }
    }
}

/// The approval policy: rules by pipeline, stage and action glob, first match wins, else the default.
pub struct ApprovalPolicy {
    /// Compiled rules, first match wins.
    rules: Vec<Rule>,
    /// The rule when none matches.
    default: Rule,
}

/// Why a policy document was refused; `path` names the offending field (`rules[1].required`).
#[derive(Debug, thiserror::Error)]
#[error("APPROVAL_POLICY is invalid at `{path}`: {message}")]
pub struct PolicyError {
    /// Where in the document (`rules[1].approvers`).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl ApprovalPolicy {
    /// The policy `APPROVERS` alone gives.
    pub fn from_approvers(list: &str) -> Self {
        Self {
            rules: Vec::new(),
            default: Rule::from_approvers(list),
        }
    }

    /// Reads and checks a policy document; `approvers` (`APPROVERS`) is the default rule's list
    /// when the document has no `default`.
    pub fn parse(document: &str, approvers: &str) -> Result<Self, PolicyError> {
        let mut deserializer = serde_json::Deserializer::from_str(document);
        let parsed: PolicyDocument =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
                let path = err.path().to_string();
                PolicyError {
                    path: if path.is_empty() { ".".into() } else { path },
                    message: err.into_inner().to_string(),
                }
            })?;
        let rules = parsed
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| compile(rule, &format!("rules[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let default = match parsed.default {
            Some(rule) => compile(rule, "default")?,
            None => Rule::from_approvers(approvers),
        };
        Ok(Self { rules, default })
    }

    /// The rule that governs `approval`.
    pub fn rule_for(&self, approval: &ApprovalRef) -> &Rule {
        self.rules
            .iter()
            .find(|rule| rule.matches(approval))
            .unwrap_or(&self.default)
    }

    /// Whether some rule needs more than one approval (and so the table to count them).
    pub fn counts_votes(&self) -> bool {
        self.rules
            .iter()
            .chain(std::iter::once(&self.default))
            .any(|rule| rule.required > 1)
    }

    /// Whether some rule lets nobody decide.
    pub fn allows_nobody(&self) -> bool {
        self.default.approvers.is_empty() && self.rules.iter().all(|r| r.approvers.is_empty())
    }
}

/// Checks and compiles one rule; `path` names it in errors.
fn compile(rule: RuleDocument, path: &str) -> Result<Rule, PolicyError> {
    let error = |field: &str, message: String| PolicyError {
        path: format!("{path}.{field}"),
        message,
    };
    for (field, glob) in [
        ("pipeline", &rule.pipeline),
        ("stage", &rule.stage),
        ("action", &rule.action),
    ] {
        if glob.is_empty() || glob.len() > 100 {
            return Err(error(
                field,
                "a name glob of 1 to 100 characters (`*` for any)".into(),
            ));
        }
    }
    for (i, id) in rule.approvers.iter().enumerate() {
        let valid = id.len() >= 2
            && id.len() <= 32
            && matches!(id.as_bytes()[0], b'U' | b'W' | b'S')
            && id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !valid {
            return Err(error(
                &format!("approvers[{i}]"),
                format!("`{id}` is not a Slack user id (U…, W…) or user-group id (S…)"),
            ));
        }
    }
    let listed_users = rule
        .approvers
        .iter()
        .filter(|id| !id.starts_with('S'))
        .count();
    let has_groups = rule.approvers.iter().any(|id| id.starts_with('S'));
    if rule.required == 0 {
        return Err(error("required", "must be at least 1".into()));
    }
    if !has_groups && rule.required as usize > listed_users {
        return Err(error(
            "required",
            format!(
                "{} approvals can never be reached with {listed_users} approver(s) listed",
                rule.required
            ),
        ));
    }
    if rule.required > 20 {
        return Err(error("required", "at most 20".into()));
    }
    let description = match &rule.name {
        Some(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => {
            let globs: Vec<&str> = [&rule.pipeline, &rule.stage, &rule.action]
                .into_iter()
                .map(String::as_str)
                .collect();
            if globs == ["*", "*", "*"] {
                "this pipeline".into()
            } else {
                globs.join(" / ")
            }
        }
    };
    Ok(Rule {
        description,
        approvers: Approvers::parse(&rule.approvers.join(",")),
        pipeline: rule.pipeline,
        stage: rule.stage,
        action: rule.action,
        required: rule.required,
        forbid_self_approval: rule.forbid_self_approval,
        require_reason_for: rule.require_reason_for,
    })
}

/// `*` matches any run of characters (none included), `?` exactly one; the rest literally.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    // Greedy with one backtrack point: linear in practice, never exponential.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, n));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == '?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if let Some((sp, sn)) = star {
            p = sp + 1;
            n = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(pipeline: &str, stage: &str, action: &str) -> ApprovalRef {
        ApprovalRef {
            pipeline: pipeline.into(),
            stage: stage.into(),
            action: action.into(),
            token: "t".into(),
            requested_by: None,
        }
    }

    #[test]
    fn first_matching_rule_wins_then_default() {
        let policy = ApprovalPolicy::parse(
            r#"{"rules": [
                {"name": "prod", "pipeline": "prod-*", "approvers": ["U1", "U2", "U3"], "required": 2, "forbid_self_approval": true},
                {"pipeline": "*", "stage": "Sec?rity", "approvers": ["S1"], "require_reason_for": ["approve", "reject"]}
            ]}"#,
            "U9",
        )
        .unwrap();
        let prod = policy.rule_for(&approval("prod-web", "Staging", "Approve"));
        assert_eq!((prod.description.as_str(), prod.required), ("prod", 2));
        assert!(prod.forbid_self_approval);
        assert!(prod.requires_reason(Decision::Reject) && !prod.requires_reason(Decision::Approve));
        let security = policy.rule_for(&approval("web", "Security", "Scan"));
        assert_eq!(security.description, "* / Sec?rity / *");
        assert!(security.requires_reason(Decision::Approve));
        let default = policy.rule_for(&approval("web", "Staging", "Approve"));
        assert_eq!(
            (default.description.as_str(), default.required),
            ("this pipeline", 1)
        );
        assert!(policy.counts_votes());
        assert!(!ApprovalPolicy::from_approvers("U1").counts_votes());
    }

    #[test]
    fn refuses_bad_documents_naming_the_path() {
        let cases = [
            (
                r#"{"rules": [{"approvers": ["U1"], "required": 2}]}"#,
                "rules[0].required",
            ),
            (
                r#"{"rules": [{"approvers": ["U1"], "required": 0}]}"#,
                "rules[0].required",
            ),
            (
                r#"{"rules": [{"approvers": ["U1"]}, {"approvers": ["alice"]}]}"#,
                "rules[1].approvers[0]",
            ),
            (
                r#"{"rules": [{"approvers": ["U1"], "requierd": 1}]}"#,
                "rules[0].requierd",
            ),
            (
                r#"{"rules": [{"approvers": ["U1"], "require_reason_for": ["maybe"]}]}"#,
                "rules[0].require_reason_for[0]",
            ),
            (
                r#"{"default": {"approvers": ["U1"], "pipeline": ""}}"#,
                "default.pipeline",
            ),
            (r#"{"rules": {}}"#, "rules"),
            ("not json", "."),
        ];
        for (document, path) in cases {
            let err = ApprovalPolicy::parse(document, "")
                .err()
                .unwrap_or_else(|| panic!("{document} was accepted"));
            assert_eq!(err.path, path, "{document}: {err}");
        }
        // A group can hold any number of people.
        assert!(
            ApprovalPolicy::parse(r#"{"rules": [{"approvers": ["S1"], "required": 3}]}"#, "")
                .is_ok()
        );
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("prod-*", "prod-web"));
        assert!(glob_match("prod-*", "prod-"));
        assert!(!glob_match("prod-*", "preprod-web"));
        assert!(glob_match("*-web", "prod-web"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("?", "é"));
        assert!(!glob_match("web", "web2"));
        assert!(glob_match("*", "a*b"));
        assert!(glob_match("a?c", "a*c"));
    }

    proptest::proptest! {
        #[test]
        fn a_star_glob_matches_like_a_prefix_and_suffix(prefix in "[a-z-]{0,8}", middle in "[a-z?*-]{0,8}", suffix in "[a-z-]{0,8}") {
            let name = format!("{prefix}{middle}{suffix}");
            let pattern = format!("{prefix}*{suffix}");
            proptest::prop_assert!(glob_match(&pattern, &name));
            proptest::prop_assert!(glob_match("*", &name));
            proptest::prop_assert_eq!(glob_match(&name.replace(['*', '?'], "x"), &name), !name.contains(['*', '?']));
        }

        #[test]
        fn parsing_never_panics(document in "\\PC{0,300}") {
            let _ = ApprovalPolicy::parse(&document, "U1");
        }
    }
}
