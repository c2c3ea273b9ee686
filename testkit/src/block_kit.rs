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
