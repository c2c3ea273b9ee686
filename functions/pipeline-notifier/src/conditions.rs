//! The stage conditions' rules in the execution's message: which rule of which stage ran, and
//! what it found (an alarm in ALARM, a variable that did not match), so a stage failed or
//! rolled back by a condition says why.

use crate::lookup::RuleResult;
use crate::message::MAX_SECTION_CHARS;
use pipeline_ext::slack::mrkdwn::{escape, truncate};
use serde_json::{json, Value};

/// Longest summary shown for one rule.
const MAX_SUMMARY_CHARS: usize = 200;

fn status_emoji(status: &str) -> &'static str {
    match status {
        "Succeeded" => ":white_check_mark:",
        "Failed" => ":x:",
        "Abandoned" => ":warning:",
        _ => ":hourglass_flowing_sand:",
    }
}

/// Failed rules are the ones that explain a stage; they are kept first when space runs out.
fn priority(status: &str) -> u8 {
    match status {
        "Failed" => 0,
        "Succeeded" => 2,
        _ => 1,
    }
}

fn line(rule: &RuleResult) -> String {
    let mut line = format!(
        "{} *{}* · rule {}",
        status_emoji(&rule.status),
        escape(&rule.stage),
        escape(&rule.rule)
    );
    if !rule.provider.is_empty() {
        line.push_str(&format!(" ({})", escape(&rule.provider)));
    }
    line.push_str(&format!(" {}", escape(&rule.status)));
    if let Some(summary) = rule.summary.as_deref().filter(|s| !s.trim().is_empty()) {
        let first = summary.lines().next().unwrap_or_default();
        line.push_str(&format!(
            ": {}",
            escape(&truncate(first, MAX_SUMMARY_CHARS))
        ));
    }
    line
}

/// A section listing the rules that ran, within Slack's section limit: when they do not all
/// fit, failed rules first, then the others not succeeded, and the rest is counted. `None`
/// when no condition ran.
pub fn section(rules: &[RuleResult]) -> Option<Value> {
    if rules.is_empty() {
        return None;
    }
    let heading = "*Stage conditions*";
    let lines: Vec<String> = rules.iter().map(line).collect();
    // Room for the heading and the "… and N more rules" note.
    let budget = MAX_SECTION_CHARS - heading.chars().count() - 40;
    let mut order: Vec<usize> = (0..rules.len()).collect();
    order.sort_by_key(|&i| (priority(&rules[i].status), i));
    let mut kept = vec![false; rules.len()];
    let mut used = 0;
    for i in order {
        let cost = lines[i].chars().count() + 1;
        if used + cost <= budget {
            kept[i] = true;
            used += cost;
        }
    }
    let mut text = heading.to_string();
    for (line, _) in lines.iter().zip(&kept).filter(|(_, k)| **k) {
        text.push('\n');
        text.push_str(line);
    }
    let left = kept.iter().filter(|k| !**k).count();
    if left > 0 {
        text.push_str(&format!("\n… and {left} more rules"));
    }
    Some(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(stage: &str, name: &str, status: &str, summary: &str) -> RuleResult {
        RuleResult {
            stage: stage.into(),
            rule: name.into(),
            provider: "CloudWatchAlarm".into(),
            status: status.into(),
            summary: Some(summary.into()),
        }
    }

    fn text(section: &Value) -> &str {
        section["text"]["text"].as_str().unwrap()
    }

    #[test]
    fn names_the_rule_that_failed_and_what_it_found() {
        let rules = [
            rule("Deploy", "MigrationLintClean", "Succeeded", "0 EQ 0"),
            rule(
                "Deploy",
                "NoPublishErrors",
                "Failed",
                "alarm site-errors is in ALARM: 5 errors",
            ),
        ];
        let shown = section(&rules).unwrap();
        let text = text(&shown);
        assert!(text.starts_with("*Stage conditions*\n"), "{text}");
        assert!(
            text.contains(":x: *Deploy* · rule NoPublishErrors (CloudWatchAlarm) Failed: alarm site-errors is in ALARM: 5 errors"),
            "{text}"
        );
        assert!(text.contains(":white_check_mark: *Deploy* · rule MigrationLintClean"));
        assert!(section(&[]).is_none());
    }

    #[test]
    fn escapes_what_a_rule_summary_says() {
        let rules = [rule(
            "Deploy",
            "Oracle",
            "Failed",
            "<!channel> *bold* <https://evil.example|click>",
        )];
        let shown = section(&rules).unwrap();
        let text = text(&shown);
        assert!(
            !text.contains("<!channel>") && !text.contains("<https://evil"),
            "{text}"
        );
    }

    proptest::proptest! {
        #[test]
        fn fits_a_section_and_keeps_failed_rules(
            statuses in proptest::collection::vec(0u8..4, 1..150),
            summary in ".{0,300}",
        ) {
            let names = ["Succeeded", "Failed", "Abandoned", "InProgress"];
            let rules: Vec<RuleResult> = statuses
                .iter()
                .enumerate()
                .map(|(i, s)| rule(&format!("Stage{i}"), &format!("Rule{i}"), names[*s as usize], &summary))
                .collect();
            let shown = section(&rules).unwrap();
            let text = text(&shown);
            proptest::prop_assert!(text.chars().count() <= MAX_SECTION_CHARS);
            // Failed rules go first: when they fit together, every one of them is shown.
            let failed_cost: usize = rules
                .iter()
                .filter(|r| r.status == "Failed")
                .map(|r| line(r).chars().count() + 1)
                .sum();
            if failed_cost <= MAX_SECTION_CHARS - 60 {
                for (i, s) in statuses.iter().enumerate() {
                    if *s == 1 {
                        let needle = format!("*Stage{i}* · rule Rule{i} ");
                        proptest::prop_assert!(text.contains(&needle), "failed rule {} hidden", i);
                    }
                }
            }
        }
    }
}
