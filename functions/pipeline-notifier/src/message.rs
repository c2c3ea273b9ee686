//! The Slack messages: the parent message of an execution (state, trigger, source revision, one
//! line per stage, the stage conditions' rules, console link), a thread reply per failed action, and the plain-text copy for
//! the fallback topic.

use crate::approval_message::SlackDecision;
use crate::execution::{ActionRecord, ExecutionRecord};
use crate::lookup::{FailureDetail, RuleResult, SourceInfo};
use pipeline_ext::slack::mrkdwn::{escape, link, truncate};
use serde_json::{json, Value};

/// Slack's limit for a section's text.
pub(crate) const MAX_SECTION_CHARS: usize = 3_000;

/// The emoji a state is shown with.
pub fn state_emoji(state: &str) -> &'static str {
    match state {
        "SUCCEEDED" => ":white_check_mark:",
        "FAILED" => ":x:",
        "CANCELED" => ":no_entry_sign:",
        "SUPERSEDED" => ":fast_forward:",
        "STOPPED" | "STOPPING" => ":octagonal_sign:",
        "ABANDONED" => ":wastebasket:",
        _ => ":arrows_counterclockwise:",
    }
}

/// The execution in the AWS console.
pub fn console_url(record: &ExecutionRecord) -> String {
    execution_url(record, &record.execution_id)
}

/// The console page of another execution of the same pipeline.
fn execution_url(record: &ExecutionRecord, execution_id: &str) -> String {
    let region = if record.region.is_empty() {
        "us-east-1"
    } else {
        &record.region
    };
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{}/executions/{execution_id}/timeline?region={region}",
        record.pipeline
    )
}

/// Whether CodePipeline started this execution to roll back a failed stage.
pub fn is_automated_rollback(record: &ExecutionRecord, source: Option<&SourceInfo>) -> bool {
    record.trigger.as_ref().map(|t| t.kind.as_str()) == Some("AutomatedRollback")
        || source.and_then(|s| s.trigger.as_deref()) == Some("AutomatedRollback")
}

/// The reply in the failed execution's thread that points to its rollback.
pub fn rollback_reply(rollback: &ExecutionRecord) -> (String, Vec<Value>) {
    let text = format!(
        "Rolled back by execution {}",
        short_execution_id(&rollback.execution_id)
    );
    let line = format!(
        ":rewind: *Rolled back automatically* by execution {}: the last successful release is deployed again.",
        link(&console_url(rollback), short_execution_id(&rollback.execution_id))
    );
    (
        text,
        vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": line}})],
    )
}

/// "Rollback (automatic) to `abcd1234`" for a rollback execution, from its type or trigger.
fn rollback_line(record: &ExecutionRecord, source: Option<&SourceInfo>) -> Option<String> {
    let trigger = record
        .trigger
        .as_ref()
        .map(|t| t.kind.as_str())
        .or_else(|| source.and_then(|s| s.trigger.as_deref()))
        .unwrap_or_default();
    let is_rollback = source.and_then(|s| s.execution_type.as_deref()) == Some("ROLLBACK")
        || trigger.ends_with("Rollback");
    if !is_rollback {
        return None;
    }
    let how = match trigger {
        "AutomatedRollback" => " (automatic, after a stage failed)",
        "ManualRollback" => " (started by hand)",
        _ => "",
    };
    let target = source
        .and_then(|s| s.rollback_target.as_deref())
        .filter(|id| id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .map(|id| {
            format!(
                " to execution {}",
                link(&execution_url(record, id), short_execution_id(id))
            )
        })
        .unwrap_or_default();
    Some(format!(":rewind: *Rollback*{how}{target}: the artifacts of the last successful run are deployed again"))
}

/// `12s`, `4m 05s`, `1h 02m`.
pub fn duration(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn short_execution_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The one-line summary Slack shows in notifications and the fallback text.
/// The stages, one line each, within `max` characters. When they do not fit, runs of
/// succeeded stages shrink to "+ N succeeded"; if that is still too long, failed stages come
/// first, then the others not succeeded, and the rest is counted. A failed stage is never the
/// one cut off.
pub fn stage_list(lines: &[(&str, String)], max: usize) -> String {
    let fits = |text: &str| text.chars().count() <= max;
    let all = lines
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if fits(&all) {
        return all;
    }
    let succeeded = |state: &str| state == "SUCCEEDED";
    let mut collapsed: Vec<(&str, String)> = Vec::new();
    let mut run = 0;
    for (state, line) in lines {
        if succeeded(state) {
            run += 1;
            continue;
        }
        if run > 0 {
            collapsed.push(("SUCCEEDED", format!(":white_check_mark: + {run} succeeded")));
            run = 0;
        }
        collapsed.push((state, line.clone()));
    }
    if run > 0 {
        collapsed.push(("SUCCEEDED", format!(":white_check_mark: + {run} succeeded")));
    }
    let text = collapsed
        .iter()
        .map(|(_, l)| l.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if fits(&text) {
        return text;
    }
    // Still too long: keep by priority, show in order, count the rest.
    let rank = |state: &str| match state {
        "FAILED" => 0,
        "SUCCEEDED" => 2,
        _ => 1,
    };
    let mut order: Vec<usize> = (0..collapsed.len()).collect();
    order.sort_by_key(|&i| (rank(collapsed[i].0), i));
    let reserve = 40;
    let mut kept = vec![false; collapsed.len()];
    let mut used = 0;
    for i in order {
        let cost = collapsed[i].1.chars().count() + 1;
        if used + cost + reserve <= max {
            kept[i] = true;
            used += cost;
        }
    }
    let left = kept.iter().filter(|k| !**k).count();
    let mut out: Vec<&str> = collapsed
        .iter()
        .zip(&kept)
        .filter(|(_, k)| **k)
        .map(|((_, l), _)| l.as_str())
        .collect();
    let note = format!("… and {left} more stages");
    if left > 0 {
        out.push(&note);
    }
    truncate(&out.join("\n"), max)
}

/// The message's first line: pipeline and state.
pub fn headline(record: &ExecutionRecord) -> String {
    format!(
        "{} {} {}",
        record.pipeline,
        short_execution_id(&record.execution_id),
        record.state()
    )
}

/// The parent message's `text` and `blocks`; `rules` are the stage conditions' rules that ran.
pub fn parent(
    record: &ExecutionRecord,
    source: Option<&SourceInfo>,
    rules: &[RuleResult],
) -> (String, Vec<Value>) {
    let state = record.state();
    let mut title = format!(
        "{} *{}*  {}  *{}*",
        state_emoji(state),
        escape(&record.pipeline),
        link(
            &console_url(record),
            short_execution_id(&record.execution_id)
        ),
        state
    );
    if let Some(ms) = record.duration_ms() {
        title.push_str(&format!(" in {}", duration(ms)));
    }
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": title}})];
    if let Some(line) = rollback_line(record, source) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": line}}));
    }

    let mut about = Vec::new();
    let trigger = record
        .trigger
        .as_ref()
        .map(|t| t.kind.clone())
        .or_else(|| source.and_then(|s| s.trigger.clone()));
    if let Some(trigger) = trigger.filter(|t| !t.is_empty()) {
        about.push(format!("Trigger: {}", escape(&trigger)));
    }
    for revision in source.map(|s| s.revisions.as_slice()).unwrap_or_default() {
        let id = revision.id.get(..10).unwrap_or(&revision.id);
        let id = match &revision.url {
            Some(url) => link(url, id),
            None => format!("`{}`", escape(id)),
        };
        let summary = revision
            .summary
            .as_deref()
            .and_then(|s| s.lines().next())
            .map(|s| format!(" {}", escape(&truncate(s, 120))))
            .unwrap_or_default();
        about.push(format!("{}: {id}{summary}", escape(&revision.artifact)));
    }
    if !about.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(&about.join("  ·  "), MAX_SECTION_CHARS)}]}));
    }

    if !record.stages.is_empty() {
        let lines: Vec<(&str, String)> = record
            .stages
            .iter()
            .map(|stage| {
                let mut line = format!(
                    "{} *{}*  {}",
                    state_emoji(&stage.progress.state),
                    escape(&stage.name),
                    stage.progress.state
                );
                if let Some(ms) = stage.duration_ms() {
                    line.push_str(&format!("  ({})", duration(ms)));
                }
                if stage.progress.attempt > 1 {
                    line.push_str(&format!("  attempt {}", stage.progress.attempt));
                }
                (stage.progress.state.as_str(), line)
            })
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": stage_list(&lines, MAX_SECTION_CHARS)}}));
    }
    blocks.extend(crate::conditions::section(rules));
    let failed = record.failed_actions().count();
    if failed > 0 {
        let what = if failed == 1 { "action" } else { "actions" };
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("{failed} failed {what}: details in the thread")}]}));
    }
    (headline(record), blocks)
}

/// A Slack user id (`U…`/`W…`, upper-case letters and digits): only those become mentions.
fn is_slack_user_id(text: &str) -> bool {
    (2..=32).contains(&text.len())
        && text.starts_with(['U', 'W'])
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The last part of an IAM or STS ARN: the user or role session that acted.
fn principal(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A thread reply for one failed action.
pub fn failure_reply(
    action: &ActionRecord,
    detail: Option<&FailureDetail>,
    decided: Option<&SlackDecision>,
) -> (String, Vec<Value>) {
    let summary = detail
        .and_then(|d| d.summary.as_deref())
        .or(action.summary.as_deref());
    let mut lines = Vec::new();
    let text;
    if action.is_approval() {
        text = format!("{} / {} was rejected", action.stage, action.action);
        let mut head = format!(
            ":no_entry: *{} / {}* (approval) was rejected",
            escape(&action.stage),
            escape(&action.action)
        );
        match decided.filter(|d| d.status == "Rejected") {
            Some(decision) => {
                let by: Vec<String> = decision
                    .by
                    .iter()
                    .filter(|u| is_slack_user_id(u))
                    .map(|u| format!("<@{u}>"))
                    .collect();
                if !by.is_empty() {
                    head.push_str(&format!(" in Slack by {}", by.join(", ")));
                }
                lines.push(head);
                if let Some(reason) = &decision.reason {
                    lines.push(format!("> {}", escape(&truncate(reason, 1_000))));
                }
            }
            None => {
                if let Some(by) = detail.and_then(|d| d.updated_by.as_deref()) {
                    head.push_str(&format!(" by {}", escape(principal(by))));
                }
                lines.push(head);
                if let Some(summary) = summary.filter(|s| !s.is_empty()) {
                    lines.push(format!("> {}", escape(summary)));
                }
            }
        }
    } else {
        text = format!("{} / {} failed", action.stage, action.action);
        let provider = if action.provider.is_empty() {
            String::new()
        } else {
            format!(" ({})", escape(&action.provider))
        };
        lines.push(format!(
            ":x: *{} / {}*{provider} failed",
            escape(&action.stage),
            escape(&action.action)
        ));
        let code = detail
            .and_then(|d| d.error_code.as_deref())
            .or(action.error_code.as_deref());
        if let Some(message) = detail.and_then(|d| d.error_message.as_deref()) {
            let code = code.map(|c| format!("{}: ", escape(c))).unwrap_or_default();
            lines.push(format!("*Error:* {code}{}", escape(message)));
        } else if let Some(code) = code {
            lines.push(format!("*Error:* {}", escape(code)));
        }
        if let Some(summary) = summary.filter(|s| !s.is_empty()) {
            lines.push(format!("*Summary:* {}", escape(summary)));
        }
    }
    let mut links = Vec::new();
    if let Some(url) = detail
        .and_then(|d| d.url.as_deref())
        .or(action.url.as_deref())
    {
        links.push(link(url, "External execution"));
    }
    if let Some(arn) = detail.and_then(|d| d.log_stream_arn.as_deref()) {
        if let Some(url) = log_stream_url(arn) {
            links.push(link(&url, "Logs"));
        }
    }
    if !links.is_empty() {
        lines.push(links.join("  ·  "));
    }
    let blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(&lines.join("\n"), MAX_SECTION_CHARS)}}),
    ];
    (text, blocks)
}

/// The CloudWatch console page of `arn:aws:logs:REGION:ACCOUNT:log-group:GROUP:log-stream:STREAM`.
pub fn log_stream_url(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (_, _, _, region) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let rest = parts.nth(1)?;
    let rest = rest.strip_prefix("log-group:")?;
    let (group, stream) = rest.split_once(":log-stream:")?;
    // The console's fragment escapes '/' and other characters as $25XX (an escaped '%').
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                other => format!("$25{other:02X}"),
            })
            .collect::<String>()
    };
    Some(format!(
        "https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logsV2:log-groups/log-group/{}/log-events/{}",
        escape(group),
        escape(stream)
    ))
}

/// The plain-text copy published to the fallback topic when Slack cannot be reached.
pub fn fallback_text(record: &ExecutionRecord, failures: &[&ActionRecord]) -> String {
    let mut text = format!(
        "CodePipeline {} execution {}: {}\n{}\n",
        record.pipeline,
        record.execution_id,
        record.state(),
        console_url(record)
    );
    for stage in &record.stages {
        text.push_str(&format!("- {}: {}\n", stage.name, stage.progress.state));
    }
    for action in failures {
        text.push_str(&format!(
            "Failed: {} / {}{}\n",
            action.stage,
            action.action,
            action
                .summary
                .as_deref()
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: &str, seconds: u32, detail: Value) -> crate::event::StateChange {
        let mut detail = detail;
        detail["pipeline"] = json!("web");
        detail["execution-id"] = json!("5f1c2d3e-aaaa-4bbb-8ccc-0123456789ab");
        detail["version"] = json!(4);
        let id = format!("{kind}-{seconds}-{}", detail["state"]);
        crate::event::parse(&json!({"version": "0", "id": id,
            "detail-type": format!("CodePipeline {kind} Execution State Change"),
            "source": "aws.codepipeline", "account": "111111111111",
            "time": format!("2026-11-21T10:{:02}:{:02}Z", seconds / 60, seconds % 60),
            "region": "us-east-1", "resources": [], "detail": detail}))
        .unwrap()
    }

    /// The execution message and its thread replies as the console draws them, against the
    /// snapshots in tests/snapshots (UPDATE_SNAPSHOTS=1 accepts a change).
    #[test]
    fn messages_render_as_their_snapshots() {
        use pipeline_testkit::block_kit::assert_html_snapshot;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
        let action = |stage: &str, name: &str, state: &str, at: u32, summary: Option<&str>| {
            let mut detail = json!({"stage": stage, "action": name, "state": state,
                "type": {"owner": "AWS", "provider": "Lambda", "category": "Invoke", "version": "1"}});
            if let Some(summary) = summary {
                detail["execution-result"] =
                    json!({"external-execution-summary": summary, "error-code": "JobFailed"});
            }
            change("Action", at, detail)
        };
        let changes = [
            change(
                "Pipeline",
                0,
                json!({"state": "STARTED",
                "execution-trigger": {"trigger-type": "Webhook", "trigger-detail": "connection/abc"}}),
            ),
            change("Stage", 1, json!({"stage": "Source", "state": "STARTED"})),
            change("Stage", 9, json!({"stage": "Source", "state": "SUCCEEDED"})),
            change("Stage", 10, json!({"stage": "Deploy", "state": "STARTED"})),
            action("Deploy", "Gate", "STARTED", 10, None),
            action(
                "Deploy",
                "Gate",
                "FAILED",
                75,
                Some("health.txt: status 404 <!channel>"),
            ),
            change("Stage", 76, json!({"stage": "Deploy", "state": "FAILED"})),
            change("Pipeline", 76, json!({"state": "FAILED"})),
        ];
        let mut record = ExecutionRecord::new(&changes[0]);
        let source = SourceInfo {
            trigger: Some("Webhook".into()),
            revisions: vec![crate::lookup::Revision {
                artifact: "SourceArtifact".into(),
                id: "a1b2c3d4e5f60718".into(),
                summary: Some("Fix the *checkout* page".into()),
                url: Some("https://github.com/acme/web/commit/a1b2c3d4e5f60718".into()),
            }],
            ..Default::default()
        };
        record.apply(&changes[0]);
        assert_html_snapshot(
            &dir,
            "execution-started",
            &json!(parent(&record, Some(&source), &[]).1),
        );
        for change in &changes[1..] {
            record.apply(change);
        }
        let rules = [RuleResult {
            stage: "Deploy".into(),
            rule: "NoPublishErrors".into(),
            provider: "CloudWatchAlarm".into(),
            status: "Failed".into(),
            summary: Some("alarm site-errors is in ALARM".into()),
        }];
        assert_html_snapshot(
            &dir,
            "execution-failed",
            &json!(parent(&record, Some(&source), &rules).1),
        );
        let failed = record.failed_actions().next().expect("the gate failed");
        let detail = FailureDetail {
            error_code: Some("JobFailed".into()),
            error_message: Some("health.txt: status 404".into()),
            summary: Some("health.txt: status 404 <!channel>".into()),
            url: Some("https://example.com/health".into()),
            log_stream_arn: Some("arn:aws:logs:us-east-1:111111111111:log-group:/aws/lambda/gate:log-stream:2026/11/21/x".into()),
            updated_by: None,
        };
        assert_html_snapshot(
            &dir,
            "failure-reply",
            &json!(failure_reply(failed, Some(&detail), None).1),
        );
        assert_html_snapshot(&dir, "rollback-reply", &json!(rollback_reply(&record).1));
    }

    fn stage_line(i: usize, state: &str) -> (&'static str, String) {
        let state: &'static str = match state {
            "FAILED" => "FAILED",
            "SUCCEEDED" => "SUCCEEDED",
            _ => "IN_PROGRESS",
        };
        (
            state,
            format!(
                "{} *Stage{i:02}-{}*  {state}  (1m 2s)",
                state_emoji(state),
                "n".repeat(90)
            ),
        )
    }

    #[test]
    fn sixty_stages_keep_the_failed_one_visible() {
        let lines: Vec<_> = (0..60)
            .map(|i| stage_line(i, if i == 37 { "FAILED" } else { "SUCCEEDED" }))
            .collect();
        let text = stage_list(&lines, MAX_SECTION_CHARS);
        assert!(text.chars().count() <= MAX_SECTION_CHARS);
        assert!(text.contains("*Stage37-"), "{text}");
        assert!(
            text.contains("+ 37 succeeded") && text.contains("+ 22 succeeded"),
            "{text}"
        );
        pipeline_testkit::block_kit::assert_valid_blocks(
            &json!([{"type": "section", "text": {"type": "mrkdwn", "text": text}}]),
        );
    }

    proptest::proptest! {
        #[test]
        fn the_stage_list_fits_and_failed_stages_go_first(states in proptest::collection::vec(0u8..3, 0..120)) {
            let lines: Vec<_> = states
                .iter()
                .enumerate()
                .map(|(i, s)| stage_line(i, ["FAILED", "SUCCEEDED", "STARTED"][*s as usize]))
                .collect();
            let text = stage_list(&lines, MAX_SECTION_CHARS);
            proptest::prop_assert!(text.chars().count() <= MAX_SECTION_CHARS);
            let failed: Vec<usize> = states.iter().enumerate().filter(|(_, s)| **s == 0).map(|(i, _)| i).collect();
            // As many failed stages as fit are shown, always before any other is.
            let room = (MAX_SECTION_CHARS - 40) / (lines.first().map_or(1, |l| l.1.chars().count() + 1));
            for i in failed.iter().take(room) {
                let shown = text.contains(&format!("*Stage{i:02}-"));
                proptest::prop_assert!(shown, "failed stage {} hidden", i);
            }
        }
    }

    fn rejected_approval(summary: &str) -> ActionRecord {
        ActionRecord {
            stage: "Approve".into(),
            action: "ReleaseGate".into(),
            category: "Approval".into(),
            provider: "Manual".into(),
            progress: crate::execution::Progress {
                state: "FAILED".into(),
                attempt: 1,
                at_ms: 0,
            },
            summary: Some(summary.into()),
            url: None,
            error_code: None,
        }
    }

    #[test]
    fn names_who_rejected_from_the_slack_record() {
        let decision = SlackDecision {
            status: "Rejected".into(),
            by: vec!["U0APPROVER".into()],
            reason: Some("breaks the <!channel> login".into()),
        };
        let (_, blocks) = failure_reply(&rejected_approval("anything"), None, Some(&decision));
        let text = json!(blocks).to_string();
        assert!(
            text.contains("was rejected in Slack by <@U0APPROVER>"),
            "{text}"
        );
        assert!(
            text.contains("> breaks the &lt;!channel&gt; login"),
            "{text}"
        );
    }

    #[test]
    fn a_summary_claiming_a_slack_rejection_names_nobody() {
        // Anyone with PutApprovalResult can write this summary; it must not become a mention.
        let forged = rejected_approval("Rejected in Slack by Boss (U0BOSS): approved by the boss");
        let (_, blocks) = failure_reply(&forged, None, None);
        let text = json!(blocks).to_string();
        assert!(!text.contains("<@U0BOSS>"), "{text}");
        assert!(!text.contains("was rejected in Slack by"), "{text}");
        assert!(
            text.contains("> Rejected in Slack by Boss (U0BOSS)"),
            "quoted as text: {text}"
        );
    }

    #[test]
    fn links_a_log_stream_to_the_cloudwatch_console() {
        let url = log_stream_url(
            "arn:aws:logs:eu-west-1:111111111111:log-group:/aws/codebuild/web:log-stream:web/8c1e",
        )
        .unwrap();
        assert_eq!(url, "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Faws$252Fcodebuild$252Fweb/log-events/web$252F8c1e");
        assert_eq!(log_stream_url("arn:aws:s3:::bucket"), None);
    }

    #[test]
    fn formats_durations() {
        assert_eq!(duration(12_400), "12s");
        assert_eq!(duration(245_000), "4m 05s");
        assert_eq!(duration(3_720_000), "1h 02m");
    }
}
