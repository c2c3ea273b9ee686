//! One HTTP smoke check: a GET with a timeout, retried with backoff, judged on status and body.

use crate::params::HttpCheck;
use crate::round::CheckResult;
use std::time::Duration;
use tokio::time::Instant;

/// How much of a body is searched for `contains`; health pages are small.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The pause before retry `n` (0-based): 250 ms, 500 ms, 1 s, …
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 << n.min(6))
}

/// Runs `check` until it passes, its retries are spent, or `deadline` leaves no time for
/// another attempt. The result describes the last attempt.
pub async fn run(client: &reqwest::Client, check: &HttpCheck, deadline: Instant) -> CheckResult {
    let name = format!("GET {}", check.url);
    let mut attempt = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = check.timeout().min(left);
        let started = Instant::now();
        let seen = attempt_once(client, check, timeout).await;
        let elapsed = started.elapsed();
        match seen {
            Ok(detail) => {
                return CheckResult::passed(name, format!("{detail} in {} ms", elapsed.as_millis()))
            }
            Err(problem) => {
                let attempts = attempt + 1;
                let pause = backoff(attempt);
                let out_of_time = Instant::now() + pause >= deadline;
                if attempt >= check.retries || out_of_time {
                    let tries = if attempts == 1 {
                        "1 attempt".to_string()
                    } else {
                        format!("{attempts} attempts")
                    };
                    return CheckResult::failed(name, format!("{problem} ({tries})"));
                }
                tracing::info!(url = %check.url, attempt = attempts, %problem, "check attempt failed; retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
        }
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    check: &HttpCheck,
    timeout: Duration,
) -> Result<String, String> {
    let timed_out = || format!("timed out after {} ms", timeout.as_millis());
    let exchange = async {
        let response = client
            .get(&check.url)
            .send()
            .await
            .map_err(describe_error)?;
        let status = response.status().as_u16();
        let body = match &check.contains {
            Some(_) => read_prefix(response).await?,
            None => Vec::new(),
        };
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| timed_out())??;
    if status != check.status {
        return Err(format!("status {status}, expected {}", check.status));
    }
    match &check.contains {
        Some(needle) if !contains(&body, needle.as_bytes()) => Err(format!(
            "status {status} but the body does not contain {needle:?} (body starts {:?})",
            excerpt(&body)
        )),
        Some(needle) => Ok(format!("status {status}, body contains {needle:?}")),
        None => Ok(format!("status {status}")),
    }
}

async fn read_prefix(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe_error)? {
        let room = MAX_BODY_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_BODY_BYTES {
            break;
        }
    }
    Ok(body)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
    if body.len() > 120 {
        format!("{text}…")
    } else {
        text
    }
}

/// reqwest's own message is generic ("error sending request"); the cause chain says what
/// happened (connection refused, certificate not trusted, …).
fn describe_error(error: reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(err) = source {
        let text = err.to_string();
        if !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = err.source();
    }
    // The URL is already in the check's name.
    let first = parts
        .first()
        .map(|p| p.split(" for url (").next().unwrap_or(p).to_string());
    let rest = parts.iter().skip(1).cloned();
    first.into_iter().chain(rest).collect::<Vec<_>>().join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        assert_eq!(backoff(0), Duration::from_millis(250));
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_millis(1000));
    }

    #[test]
    fn finds_a_substring_in_bytes() {
        assert!(contains(b"{\"status\":\"ok\"}", b"\"ok\""));
        assert!(!contains(b"degraded", b"ok"));
    }
}
