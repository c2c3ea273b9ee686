//! The Slack Web API over HTTPS: JSON or form requests with the bot token, `ok: false`
//! answers as errors carrying Slack's error code, 429 honoured through `Retry-After`, and
//! every call bounded by a deadline.

use serde_json::Value;
use std::time::Duration;
use tokio::time::Instant;

/// Slack's API root; `SLACK_API_URL` replaces it (a loopback recorder locally and in tests).
pub const DEFAULT_API_URL: &str = "https://slack.com/api";
/// The longest `Retry-After` a caller waits through before giving up.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const MAX_ATTEMPTS: u32 = 4;

/// A Slack Web API call that did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack answered `{"ok": false, "error": code}`.
    #[error("Slack {method} failed: {code}")]
    Api {
        /// The Web API method.
        method: String,
        /// Slack's error code.
        code: String,
    },
    /// Still rate limited when the call's deadline came.
    #[error(
        "Slack {method} is rate limited (retry after {retry_after_s} s), past this call's deadline"
    )]
    RateLimited {
        /// The Web API method.
        method: String,
        /// Slack's `Retry-After` in seconds.
        retry_after_s: u64,
    },
    /// No answer before the deadline.
    #[error("Slack {method} did not answer before the deadline")]
    Timeout {
        /// The Web API method.
        method: String,
    },
    /// The request did not complete (connection, TLS, body).
    #[error("Slack {method}: {message}")]
    Transport {
        /// The Web API method.
        method: String,
        /// The transport error.
        message: String,
    },
}

impl SlackError {
    /// Slack's error code (`channel_not_found`, `invalid_auth`, …) when Slack gave one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SlackError::Api { code, .. } => Some(code),
            SlackError::RateLimited { .. } => Some("ratelimited"),
            _ => None,
        }
    }
}

/// A Web API client for one bot token. Cheap to clone.
#[derive(Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    api_url: String,
    token: String,
}

impl std::fmt::Debug for SlackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackClient")
            .field("api_url", &self.api_url)
            .field("token", &"<redacted>")
            .finish()
    }
}

enum Body<'a> {
    Json(&'a Value),
    Form(&'a [(&'a str, &'a str)]),
}

impl SlackClient {
    /// A client for `api_url` (Slack's, or a loopback recorder) with the bot token.
    pub fn new(
        http: reqwest::Client,
        api_url: impl Into<String>,
        bot_token: impl Into<String>,
    ) -> Self {
        Self {
            http,
            api_url: api_url.into().trim_end_matches('/').to_string(),
            token: bot_token.into(),
        }
    }

    /// `SLACK_API_URL`, or Slack's own.
    pub fn api_url_from_env() -> String {
        std::env::var("SLACK_API_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_string())
    }

    /// Calls a write method (`chat.postMessage`, `chat.update`, `views.open`…) with a JSON body.
    pub async fn call(
        &self,
        method: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, SlackError> {
        self.send(method, Body::Json(body), deadline).await
    }

    /// Calls a read method (`usergroups.users.list`…), which takes form parameters.
    pub async fn call_form(
        &self,
        method: &str,
        params: &[(&str, &str)],
        deadline: Instant,
    ) -> Result<Value, SlackError> {
        self.send(method, Body::Form(params), deadline).await
    }

    async fn send(
        &self,
        method: &str,
        body: Body<'_>,
        deadline: Instant,
    ) -> Result<Value, SlackError> {
        let url = format!("{}/{method}", self.api_url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(SlackError::Timeout {
                    method: method.into(),
                });
            }
            let request = self.http.post(&url).bearer_auth(&self.token).timeout(left);
            let request = match &body {
                Body::Json(value) => request
                    .header("content-type", "application/json; charset=utf-8")
                    .body(value.to_string()),
                Body::Form(params) => request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(
                        form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(params.iter())
                            .finish(),
                    ),
            };
            let pause = match request.send().await {
                Ok(response) if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .unwrap_or(1);
                    let wait = Duration::from_secs(retry_after);
                    if wait > MAX_RETRY_AFTER
                        || Instant::now() + wait >= deadline
                        || attempt >= MAX_ATTEMPTS
                    {
                        return Err(SlackError::RateLimited {
                            method: method.into(),
                            retry_after_s: retry_after,
                        });
                    }
                    tracing::warn!(
                        method,
                        retry_after_s = retry_after,
                        "Slack rate limit; waiting as asked"
                    );
                    wait
                }
                Ok(response) if response.status().is_server_error() && attempt < MAX_ATTEMPTS => {
                    tracing::warn!(
                        method,
                        status = response.status().as_u16(),
                        "Slack server error; retrying"
                    );
                    Duration::from_millis(200 << attempt)
                }
                Ok(response) => return parse(method, response).await,
                Err(err) if err.is_timeout() => {
                    return Err(SlackError::Timeout {
                        method: method.into(),
                    })
                }
                Err(err) if attempt < MAX_ATTEMPTS && err.is_connect() => {
                    tracing::warn!(method, error = %err, "cannot reach Slack; retrying");
                    Duration::from_millis(200 << attempt)
                }
                Err(err) => {
                    return Err(SlackError::Transport {
                        method: method.into(),
                        message: without_url(&err),
                    })
                }
            };
            if Instant::now() + pause >= deadline {
                return Err(SlackError::Timeout {
                    method: method.into(),
                });
            }
            tokio::time::sleep(pause).await;
        }
    }
}

async fn parse(method: &str, response: reqwest::Response) -> Result<Value, SlackError> {
    let status = response.status();
    let text = response.text().await.map_err(|e| SlackError::Transport {
        method: method.into(),
        message: without_url(&e),
    })?;
    let value: Value = serde_json::from_str(&text).map_err(|_| SlackError::Transport {
        method: method.into(),
        message: format!("HTTP {status} with a body that is not JSON"),
    })?;
    if value.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(value)
    } else {
        let code = value
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown_error")
            .to_string();
        Err(SlackError::Api {
            method: method.into(),
            code,
        })
    }
}

fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    match std::error::Error::source(err) {
        Some(source) => format!("{text}: {source}"),
        None => text,
    }
}
