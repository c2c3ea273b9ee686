//! Block Kit validity of a message our functions send to Slack: Slack's own `slack_sdk`
//! models (`Block.parse(…).validate_json()`, installed by the README's test command), plus the
//! text-object limit the models do not check (3,000 characters in any text object).

use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

const VALIDATE: &str = "import json, sys
from slack_sdk.models.blocks import Block
for block in json.load(sys.stdin):
    Block.parse(block).validate_json()
";

/// Panics with Slack's complaint when `blocks` would be refused (`invalid_blocks`).
pub fn assert_valid_blocks(blocks: &Value) {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let mut child = Command::new(&python)
        .args(["-c", VALIDATE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{python}` ({e}): run the README's test command"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(blocks.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "slack_sdk refuses the blocks (the README's test command installs slack_sdk into .venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_text_objects(blocks);
}

fn check_text_objects(value: &Value) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(kind)), Some(Value::String(text))) =
                (map.get("type"), map.get("text"))
            {
                if kind == "mrkdwn" || kind == "plain_text" {
                    assert!(
                        text.chars().count() <= 3_000,
                        "a {kind} text object of {} characters",
                        text.chars().count()
                    );
                }
            }
            map.values().for_each(check_text_objects);
        }
        Value::Array(items) => items.iter().for_each(check_text_objects),
        _ => {}
    }
}

/// Compares what the console draws of `blocks` (pipeline-local's Block Kit renderer, close to
/// Slack's client) with the snapshot `<dir>/<name>.html`, so a change in a message we send
/// shows up as a reviewable diff. With `UPDATE_SNAPSHOTS=1` the snapshot is (re)written; a
/// mismatch writes `<name>.html.new` beside it and fails.
pub fn assert_html_snapshot(dir: &std::path::Path, name: &str, blocks: &Value) {
    let html = format!(
        "{}\n",
        pipeline_local::console::block_kit::blocks(&normalized_dates(blocks))
    );
    assert_snapshot(dir, name, &html);
}

/// As [`assert_html_snapshot`], for a modal (`views.open`'s `view`).
pub fn assert_modal_snapshot(dir: &std::path::Path, name: &str, view: &Value) {
    let html = format!(
        "{}\n",
        pipeline_local::console::block_kit::modal(&normalized_dates(view))
    );
    assert_snapshot(dir, name, &html);
}

fn assert_snapshot(dir: &std::path::Path, name: &str, html: &str) {
    let file = dir.join(format!("{name}.html"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(&file, html).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&file).unwrap_or_default();
    if expected != html {
        let new = dir.join(format!("{name}.html.new"));
        std::fs::write(&new, html).unwrap();
        panic!(
            "the rendered message differs from {}: see {} (`diff` them; UPDATE_SNAPSHOTS=1 accepts the change)",
            file.display(),
            new.display()
        );
    }
}

/// Slack date tokens (`<!date^1764000000^…|…>`) hold the time the message was made: one fixed
/// time instead, so snapshots do not change by the minute.
fn normalized_dates(value: &Value) -> Value {
    match value {
        Value::String(text) if text.contains("<!date^") => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("<!date^") {
                out.push_str(&rest[..start + 7]);
                rest = &rest[start + 7..];
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                out.push_str("1764000000");
                rest = &rest[digits..];
                if let Some(bar) = rest.find('|').filter(|b| rest[..*b].find('>').is_none()) {
                    out.push_str(&rest[..bar + 1]);
                    rest = &rest[bar + 1..];
                    let digits = rest.chars().take_while(char::is_ascii_digit).count();
                    if digits > 0 {
                        out.push_str("1764000000");
                        rest = &rest[digits..];
                    }
                }
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalized_dates).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), normalized_dates(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
