//! Stage conditions (`BeforeEntry`, `OnSuccess`) as CodePipeline V2 checks them: every rule of a
//! condition must be met, else the condition's result (`FAIL`, `ROLLBACK`) happens. Rules that
//! need AWS itself are reported as not emulated, with the reason, never as met.

use super::model::{ConditionDef, RuleDef, Variables};
use crate::endpoints::LocalAws;

/// What checking one rule found.
#[derive(Debug, PartialEq)]
pub enum RuleOutcome {
    Met(String),
    NotMet(String),
    /// Not checked here; the condition goes on as if it were met, and says so.
    NotEmulated(String),
}

/// Checks one rule against the execution's variables and the local CloudWatch alarms.
pub fn check(rule: &RuleDef, variables: &Variables, aws: &LocalAws) -> RuleOutcome {
    match rule.provider.as_str() {
        "VariableCheck" => variable_check(rule, variables),
        "CloudWatchAlarm" => {
            let Some(name) = rule.config("AlarmName") else {
                return RuleOutcome::NotMet("the rule has no AlarmName".into());
            };
            match aws.cloudwatch.alarm(&name) {
                None => RuleOutcome::NotMet(format!("there is no alarm named {name}")),
                Some(alarm) if alarm.state == "ALARM" => {
                    RuleOutcome::NotMet(format!("alarm {name} is in ALARM: {}", alarm.reason))
                }
                Some(alarm) => RuleOutcome::Met(format!(
                    "alarm {name} is {} (checked once; on AWS it is watched for the rule's WaitTime)",
                    alarm.state
                )),
            }
        }
        "LambdaInvoke" => RuleOutcome::NotEmulated(
            "LambdaInvoke rules call your function with a rule job on AWS; pipeline-local does not run rule jobs".into(),
        ),
        "DeploymentWindow" => RuleOutcome::NotEmulated(
            "DeploymentWindow rules follow a cron schedule in a time zone on AWS; a local run does not wait for a window".into(),
        ),
        other => RuleOutcome::NotEmulated(format!(
            "{other} rules are not emulated by pipeline-local"
        )),
    }
}

fn variable_check(rule: &RuleDef, variables: &Variables) -> RuleOutcome {
    let (Some(variable), Some(expected)) = (rule.config("Variable"), rule.config("Value")) else {
        return RuleOutcome::NotMet("the rule needs Variable and Value".into());
    };
    let actual = match variables.substitute(&variable) {
        Ok(actual) => actual,
        Err(why) => return RuleOutcome::NotMet(why),
    };
    let operator = rule.config("Operator").unwrap_or_else(|| "EQ".into());
    let met = match operator.as_str() {
        "EQ" => actual == expected,
        "NE" => actual != expected,
        "CONTAINS" => actual.contains(&expected),
        "MATCHES" => {
            return RuleOutcome::NotEmulated(
                "the MATCHES operator (a regular expression) is not emulated by pipeline-local"
                    .into(),
            )
        }
        other => return RuleOutcome::NotMet(format!("unknown operator {other}")),
    };
    let said = format!("{variable} = {actual:?} {operator} {expected:?}");
    if met {
        RuleOutcome::Met(said)
    } else {
        RuleOutcome::NotMet(said)
    }
}

/// One rule as it was checked.
#[derive(Debug)]
pub struct CheckedRule<'a> {
    /// `BeforeEntry` or `OnSuccess`.
    pub kind: &'a str,
    pub rule: &'a RuleDef,
    pub outcome: RuleOutcome,
}

impl CheckedRule<'_> {
    /// `MET`, `NOT MET` or `NOT EMULATED`, as the timeline shows it.
    pub fn state(&self) -> &'static str {
        match self.outcome {
            RuleOutcome::Met(_) => "MET",
            RuleOutcome::NotMet(_) => "NOT MET",
            RuleOutcome::NotEmulated(_) => "NOT EMULATED",
        }
    }

    /// What the check found, in a sentence.
    pub fn summary(&self) -> String {
        match &self.outcome {
            RuleOutcome::Met(text) | RuleOutcome::NotMet(text) => text.clone(),
            RuleOutcome::NotEmulated(text) => format!("NOT EMULATED: {text}"),
        }
    }
}

/// Checks each condition in turn; the first one with a rule not met gives its result and why.
/// Every rule checked is printed and added to `checked`.
pub fn first_unmet<'a>(
    kind: &'a str,
    stage: &str,
    conditions: &'a [ConditionDef],
    variables: &Variables,
    aws: &LocalAws,
    checked: &mut Vec<CheckedRule<'a>>,
) -> Option<(String, String)> {
    for condition in conditions {
        let mut unmet = None;
        for rule in &condition.rules {
            let outcome = check(rule, variables, aws);
            if let RuleOutcome::NotMet(text) = &outcome {
                unmet.get_or_insert(format!("rule {}: {text}", rule.name));
            }
            let checked_rule = CheckedRule {
                kind,
                rule,
                outcome,
            };
            let mark = match checked_rule.outcome {
                RuleOutcome::Met(_) => "✓",
                RuleOutcome::NotMet(_) => "✗",
                RuleOutcome::NotEmulated(_) => "⚠",
            };
            say!(
                "  {mark} {kind} condition of {stage}, rule {} ({}): {}",
                rule.name,
                rule.provider,
                checked_rule.summary()
            );
            checked.push(checked_rule);
        }
        if let Some(why) = unmet {
            return Some((condition.result.clone(), why));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(provider: &str, configuration: serde_json::Value) -> RuleDef {
        RuleDef {
            name: "R".into(),
            provider: provider.into(),
            configuration: configuration.as_object().cloned().unwrap(),
        }
    }

    #[tokio::test]
    async fn checks_variables_and_alarms_and_never_passes_what_it_cannot_check() {
        let aws = LocalAws::start(None).await.unwrap();
        let mut variables = Variables::default();
        variables.set("Migrate", [("LintErrors".to_string(), "0".to_string())]);
        let check_var = |op: &str, value: &str| {
            check(
                &rule(
                    "VariableCheck",
                    json!({"Variable": "#{Migrate.LintErrors}", "Value": value, "Operator": op}),
                ),
                &variables,
                &aws,
            )
        };
        assert!(matches!(check_var("EQ", "0"), RuleOutcome::Met(_)));
        assert!(matches!(check_var("NE", "0"), RuleOutcome::NotMet(_)));
        assert!(matches!(check_var("CONTAINS", "0"), RuleOutcome::Met(_)));
        assert!(matches!(
            check_var("MATCHES", "^0$"),
            RuleOutcome::NotEmulated(_)
        ));
        let unknown = check(
            &rule(
                "VariableCheck",
                json!({"Variable": "#{Nope.X}", "Value": "1"}),
            ),
            &variables,
            &aws,
        );
        assert!(
            matches!(unknown, RuleOutcome::NotMet(ref why) if why.contains("#{Nope.X}")),
            "{unknown:?}"
        );

        aws.cloudwatch.set_alarm("errors", "OK", "fine");
        let alarm = rule("CloudWatchAlarm", json!({"AlarmName": "errors"}));
        assert!(matches!(
            check(&alarm, &variables, &aws),
            RuleOutcome::Met(_)
        ));
        aws.cloudwatch.set_alarm("errors", "ALARM", "5 errors");
        assert!(
            matches!(check(&alarm, &variables, &aws), RuleOutcome::NotMet(ref why) if why.contains("5 errors"))
        );
        let missing = rule("CloudWatchAlarm", json!({"AlarmName": "nope"}));
        assert!(matches!(
            check(&missing, &variables, &aws),
            RuleOutcome::NotMet(_)
        ));

        for provider in ["LambdaInvoke", "DeploymentWindow", "Commands"] {
            assert!(matches!(
                check(&rule(provider, json!({})), &variables, &aws),
                RuleOutcome::NotEmulated(_)
            ));
        }
    }
}
