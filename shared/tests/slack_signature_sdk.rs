//! Our Slack signature check against Slack's official Python SDK
//! (`slack_sdk.signature.SignatureVerifier`, pinned in tests/requirements.txt): the same
//! verdict on valid and invalid samples. Needs the test command's `.venv`; fails, never skips.

use pipeline_ext::slack::signature::{sign, verify};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

const SECRET: &str = "e3b0c44298fc1c149afbf4c8996fb924";
const NOW: u64 = 1_763_700_000;

fn python() -> String {
    std::env::var("TEST_PYTHON")
        .unwrap_or_else(|_| format!("{}/../.venv/bin/python", env!("CARGO_MANIFEST_DIR")))
}

const VERIFIER: &str = r#"
import json, sys
from slack_sdk.signature import SignatureVerifier

class FixedClock:
    def __init__(self, now): self._now = now
    def now(self): return self._now

verdicts = []
for s in json.load(sys.stdin):
    verifier = SignatureVerifier(s["secret"], clock=FixedClock(s["now"]))
    try:
        verdicts.append(verifier.is_valid(s["body"], s["timestamp"], s["signature"]))
    except Exception:
        verdicts.append(False)
print(json.dumps(verdicts))
"#;

fn sample(
    name: &str,
    body: &str,
    timestamp: Option<String>,
    signature: Option<String>,
    now: u64,
) -> Value {
    json!({"name": name, "secret": SECRET, "body": body, "timestamp": timestamp, "signature": signature, "now": now})
}

#[test]
fn agrees_with_slacks_python_sdk_on_valid_and_invalid_requests() {
    let body =
        "payload=%7B%22type%22%3A%22block_actions%22%2C%22user%22%3A%7B%22id%22%3A%22U1%22%7D%7D";
    let ts = |t: u64| Some(t.to_string());
    let signed = |t: &str, b: &str| Some(sign(SECRET, t, b.as_bytes()));
    let good = sign(SECRET, &NOW.to_string(), body.as_bytes());
    let samples = vec![
        sample("valid", body, ts(NOW), Some(good.clone()), NOW),
        sample(
            "valid, 299 s later",
            body,
            ts(NOW),
            Some(good.clone()),
            NOW + 299,
        ),
        sample(
            "valid, 300 s later",
            body,
            ts(NOW),
            Some(good.clone()),
            NOW + 300,
        ),
        sample("301 s old", body, ts(NOW), Some(good.clone()), NOW + 301),
        sample(
            "301 s in the future",
            body,
            ts(NOW),
            Some(good.clone()),
            NOW - 301,
        ),
        sample(
            "six minutes old, re-signed",
            body,
            ts(NOW - 360),
            signed(&(NOW - 360).to_string(), body),
            NOW,
        ),
        sample(
            "wrong secret",
            body,
            ts(NOW),
            Some(pipeline_ext::slack::signature::sign(
                "other",
                &NOW.to_string(),
                body.as_bytes(),
            )),
            NOW,
        ),
        sample(
            "tampered body",
            &body.replace("U1", "U2"),
            ts(NOW),
            Some(good.clone()),
            NOW,
        ),
        sample(
            "timestamp not the signed one",
            body,
            ts(NOW + 1),
            Some(good.clone()),
            NOW,
        ),
        sample(
            "upper-case hex",
            body,
            ts(NOW),
            Some(good.to_uppercase().replace("V0=", "v0=")),
            NOW,
        ),
        sample(
            "no v0= prefix",
            body,
            ts(NOW),
            Some(good.trim_start_matches("v0=").to_string()),
            NOW,
        ),
        sample(
            "v1= prefix",
            body,
            ts(NOW),
            Some(good.replace("v0=", "v1=")),
            NOW,
        ),
        sample(
            "truncated signature",
            body,
            ts(NOW),
            Some(good[..good.len() - 2].to_string()),
            NOW,
        ),
        sample("missing timestamp", body, None, Some(good.clone()), NOW),
        sample("missing signature", body, ts(NOW), None, NOW),
        sample(
            "not a number",
            body,
            Some("yesterday".into()),
            signed("yesterday", body),
            NOW,
        ),
        sample("empty body", "", ts(NOW), signed(&NOW.to_string(), ""), NOW),
        sample(
            "unicode body",
            "payload=%E2%9C%85%20d%C3%A9ploy",
            ts(NOW),
            signed(&NOW.to_string(), "payload=%E2%9C%85%20d%C3%A9ploy"),
            NOW,
        ),
        sample(
            "+ before the timestamp",
            body,
            Some(format!("+{NOW}")),
            signed(&format!("+{NOW}"), body),
            NOW,
        ),
    ];

    let mut child = Command::new(python())
        .args(["-c", VERIFIER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): run the README's test command, which creates .venv",
                python()
            )
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(samples.clone()).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "slack_sdk verifier failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<bool> = serde_json::from_slice(&out.stdout).unwrap();

    let mut valid = 0;
    for (sample, theirs) in samples.iter().zip(theirs) {
        let ours = verify(
            SECRET,
            sample["timestamp"].as_str(),
            sample["signature"].as_str(),
            sample["body"].as_str().unwrap().as_bytes(),
            UNIX_EPOCH + Duration::from_secs(sample["now"].as_u64().unwrap()),
        )
        .is_ok();
        assert_eq!(
            ours, theirs,
            "{}: ours {ours}, slack_sdk {theirs}",
            sample["name"]
        );
        valid += usize::from(ours);
    }
    // Both kinds are really exercised.
    assert_eq!(valid, 6);
}
