//! One HTTP smoke check: a GET with a timeout, retried with backoff, judged on status and body.

use crate::params::{FollowRedirects, HttpCheck};
use crate::round::CheckResult;
use std::time::Duration;
use tokio::time::Instant;

/// How much of a body is searched for `contains`; health pages are small.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Redirects followed before a check gives up.
const MAX_REDIRECTS: usize = 10;
/// Characters of a body quoted when `contains` fails.
const EXCERPT_CHARS: usize = 80;

/// The pause before retry `n` (0-based): 250 ms, 500 ms, 1 s, …
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 << n.min(6))
}

/// Runs `check` until it passes, its retries are spent, or `deadline` leaves no time for
/// another attempt. The result describes the last attempt.
pub async fn run(client: &reqwest::Client, check: &HttpCheck, deadline: Instant) -> CheckResult {
    let shown_url = crate::redact::url(&check.url);
    let name = format!("GET {shown_url}");
    let mut attempt = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = check.timeout().min(left);
        let limit = if timeout < check.timeout() {
            Limit::InvocationTime(check.timeout())
        } else {
            Limit::CheckTimeout
        };
        let started = Instant::now();
        let seen = attempt_once(client, check, timeout, limit).await;
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
                tracing::info!(url = %shown_url, attempt = attempts, %problem, "check attempt failed; retrying");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
        }
    }
}

/// What bounded an attempt: the check's own timeout, or the invocation running out of time
/// first (then the endpoint is not to blame).
#[derive(Clone, Copy)]
enum Limit {
    CheckTimeout,
    InvocationTime(Duration),
}

async fn attempt_once(
    client: &reqwest::Client,
    check: &HttpCheck,
    timeout: Duration,
    limit: Limit,
) -> Result<String, String> {
    let timed_out = || {
        match limit {
        Limit::CheckTimeout => format!("timed out after {} ms", timeout.as_millis()),
        Limit::InvocationTime(allowed) => format!(
            "not answered when the invocation's time ran out ({} ms left of the {} ms the check allows); raise the function's timeout or lower the check's timeout_ms",
            timeout.as_millis(),
            allowed.as_millis()
        ),
    }
    };
    let (status, body) = tokio::time::timeout(timeout, exchange(client, check))
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

/// One GET with the check's redirect policy; the final status and (when `contains` is set)
/// the start of the body.
async fn exchange(client: &reqwest::Client, check: &HttpCheck) -> Result<(u16, Vec<u8>), String> {
    let first = reqwest::Url::parse(&check.url).map_err(|e| format!("not a URL: {e}"))?;
    let mut url = first.clone();
    for _ in 0..=MAX_REDIRECTS {
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(describe_error)?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok());
        if let (true, Some(location)) = (status.is_redirection(), location) {
            if check.follow_redirects == FollowRedirects::None {
                return Ok((status.as_u16(), Vec::new()));
            }
            let next = url.join(location).map_err(|e| {
                format!(
                    "status {} redirects to an invalid location: {e}",
                    status.as_u16()
                )
            })?;
            if check.follow_redirects == FollowRedirects::SameHost && !same_host(&first, &next) {
                return Err(format!(
                    "status {} redirects to {} on another host; not followed (set \"follow_redirects\": \"any\" to follow it)",
                    status.as_u16(),
                    crate::redact::url(next.as_str())
                ));
            }
            url = next;
            continue;
        }
        let body = match &check.contains {
            Some(_) => read_prefix(response).await?,
            None => Vec::new(),
        };
        return Ok((status.as_u16(), body));
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// The same host: on the same scheme the same port, or `http` → `https`; never down from
/// `https` to `http`.
fn same_host(first: &reqwest::Url, next: &reqwest::Url) -> bool {
    if first.host_str() != next.host_str() {
        return false;
    }
    match (first.scheme(), next.scheme()) {
        ("https", "http") => false,
        (a, b) if a == b => first.port_or_known_default() == next.port_or_known_default(),
        _ => true,
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

/// The start of a body, printable: control characters and invalid UTF-8 shown as `·`.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(EXCERPT_CHARS * 4)]);
    let mut shown: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| {
            if c.is_control() || c == '\u{fffd}' {
                '·'
            } else {
                c
            }
        })
        .collect();
    if text.chars().count() > EXCERPT_CHARS || body.len() > EXCERPT_CHARS * 4 {
        shown.push('…');
    }
    shown
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
