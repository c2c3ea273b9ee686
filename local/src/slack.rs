//! A Slack Web API on loopback that records what the functions post: messages (and their
//! updates and thread replies), ephemeral replies, opened views, with user groups to resolve.
//! Point `SLACK_API_URL` at [`LocalSlack::api_url`].
//!
//! Faults (service `slack`, operation = method): status 429 answers `ratelimited` with
//! `Retry-After: 1`; code `hang` never answers; any other code answers `{"ok": false, "error": code}`.

use crate::calls::{ms_since_start, Call, CallLog};
use crate::faults::Faults;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A message as the channel shows it now.
#[derive(Clone, Debug, Serialize)]
pub struct SlackMessage {
    /// The channel.
    pub channel: String,
    /// Its ts.
    pub ts: String,
    /// The parent's ts, for a thread reply.
    pub thread_ts: Option<String>,
    /// Its text.
    pub text: String,
    /// Its blocks.
    pub blocks: Value,
    /// How many times `chat.update` changed it.
    pub updates: u32,
}

/// An ephemeral reply, seen only by `user`.
#[derive(Clone, Debug, Serialize)]
pub struct Ephemeral {
    /// The channel.
    pub channel: String,
    /// Who sees it.
    pub user: String,
    /// Its text.
    pub text: String,
}

/// Everything posted.
#[derive(Default)]
struct Workspace {
    /// Messages, in order.
    messages: Vec<SlackMessage>,
    /// Ephemeral messages.
    ephemerals: Vec<Ephemeral>,
    /// Opened views.
    views: Vec<Value>,
    /// User groups' members.
    usergroups: HashMap<String, Vec<String>>,
    /// `users.lookupByEmail`: lower-cased email → user id.
    emails: HashMap<String, String>,
}

/// The recorded Slack: messages, ephemerals, opened views.
#[derive(Clone)]
pub struct LocalSlack {
    /// The bot token accepted.
    token: String,
    /// Everything posted.
    workspace: Arc<Mutex<Workspace>>,
    /// The next message ts.
    next_ts: Arc<AtomicU64>,
    /// Every call answered.
    calls: CallLog,
    /// Planned failures.
    faults: Faults,
    /// Where it listens, once started.
    url: Arc<Mutex<String>>,
}

impl LocalSlack {
    /// A recorder that accepts `bot_token` only.
    pub fn new(bot_token: &str, calls: CallLog, faults: Faults) -> Self {
        Self {
            token: bot_token.to_string(),
            workspace: Arc::default(),
            next_ts: Arc::new(AtomicU64::new(1_700_000_000_000_100)),
            calls,
            faults,
            url: Arc::default(),
        }
    }

    /// Serves it on a free loopback port; returns the API URL.
    pub async fn start(&self) -> std::io::Result<String> {
        self.start_with(None).await
    }

    /// As [`LocalSlack::start`], over HTTPS with `tls`'s certificate when given (`--tls`).
    pub async fn start_with(&self, tls: Option<&crate::tls::LocalTls>) -> std::io::Result<String> {
        let (addr, _task) = crate::tls::serve(self.router(), tls).await?;
        let url = format!("{}://{addr}/api", crate::tls::scheme(tls));
        if let Ok(mut slot) = self.url.lock() {
            *slot = url.clone();
        }
        Ok(url)
    }

    /// The URL for `SLACK_API_URL` (after [`LocalSlack::start`]).
    pub fn api_url(&self) -> String {
        self.url.lock().map(|u| u.clone()).unwrap_or_default()
    }

    /// Its HTTP routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/{method}", post(handle))
            .with_state(self.clone())
    }

    /// Makes `usergroups.users.list` answer `users` for `group`.
    pub fn add_usergroup(&self, group: &str, users: &[&str]) {
        if let Ok(mut ws) = self.workspace.lock() {
            ws.usergroups.insert(
                group.to_string(),
                users.iter().map(|u| u.to_string()).collect(),
            );
        }
    }

    /// Makes `users.lookupByEmail` find `user` by `email`.
    pub fn add_user_email(&self, user: &str, email: &str) {
        if let Ok(mut ws) = self.workspace.lock() {
            ws.emails
                .insert(email.to_ascii_lowercase(), user.to_string());
        }
    }

    /// Top-level messages and thread replies, in posting order.
    pub fn messages(&self) -> Vec<SlackMessage> {
        self.workspace
            .lock()
            .map(|ws| ws.messages.clone())
            .unwrap_or_default()
    }

    /// A message, by ts.
    pub fn message(&self, ts: &str) -> Option<SlackMessage> {
        self.messages().into_iter().find(|m| m.ts == ts)
    }

    /// Every ephemeral message.
    pub fn ephemerals(&self) -> Vec<Ephemeral> {
        self.workspace
            .lock()
            .map(|ws| ws.ephemerals.clone())
            .unwrap_or_default()
    }

    /// Every view opened.
    pub fn views(&self) -> Vec<Value> {
        self.workspace
            .lock()
            .map(|ws| ws.views.clone())
            .unwrap_or_default()
    }

    /// Recorded calls of one Web API method.
    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.calls.of("slack", method)
    }

    /// A new message ts.
    fn new_ts(&self) -> String {
        let n = self.next_ts.fetch_add(1, Ordering::SeqCst);
        format!("{}.{:06}", n / 1_000_000, n % 1_000_000)
    }
}

/// One Web API call.
async fn handle(
    State(slack): State<LocalSlack>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at_ms = ms_since_start();
    let request = parse_request(&headers, &body);
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| token == slack.token);
    let fault = slack.faults.take("slack", &method, None);
    let (status, answer, retry_after) = match (&fault, authorized) {
        (Some(f), _) if f.code == "hang" => {
            // Never answers: the caller's timeout must save it.
            std::future::pending::<()>().await;
            unreachable!()
        }
        (Some(f), _) if f.status == 429 => (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"ok": false, "error": "ratelimited"}),
            true,
        ),
        (Some(f), _) => (StatusCode::OK, json!({"ok": false, "error": f.code}), false),
        (None, false) => (
            StatusCode::OK,
            json!({"ok": false, "error": "invalid_auth"}),
            false,
        ),
        (None, true) => (StatusCode::OK, dispatch(&slack, &method, &request), false),
    };
    slack.calls.record(Call {
        service: "slack",
        operation: method,
        at_ms,
        status: status.as_u16(),
        access_key: None,
        detail: json!({"request": request, "ok": answer["ok"]}),
    });
    let mut response = (status, answer.to_string()).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// JSON bodies as they are; form bodies as an object of strings (JSON-valued fields parsed).
fn parse_request(headers: &HeaderMap, body: &[u8]) -> Value {
    let form = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form {
        let map = form_urlencoded::parse(body)
            .map(|(k, v)| {
                let value = match serde_json::from_str::<Value>(&v) {
                    Ok(parsed @ (Value::Array(_) | Value::Object(_))) => parsed,
                    _ => Value::String(v.into_owned()),
                };
                (k.into_owned(), value)
            })
            .collect();
        Value::Object(map)
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    }
}

/// A string field.
fn text(request: &Value, key: &str) -> String {
    request[key].as_str().unwrap_or_default().to_string()
}

/// Answers one Web API method.
fn dispatch(slack: &LocalSlack, method: &str, request: &Value) -> Value {
    let Ok(mut ws) = slack.workspace.lock() else {
        return json!({"ok": false, "error": "internal_error"});
    };
    match method {
        "auth.test" => json!({"ok": true, "user_id": "UBOT", "team_id": "TLOCAL"}),
        "chat.postMessage" => {
            let channel = text(request, "channel");
            if channel.is_empty() {
                return json!({"ok": false, "error": "channel_not_found"});
            }
            if request["text"].as_str().is_none() && !request["blocks"].is_array() {
                return json!({"ok": false, "error": "no_text"});
            }
            let thread_ts = request["thread_ts"].as_str().map(str::to_owned);
            if let Some(parent) = &thread_ts {
                if !ws
                    .messages
                    .iter()
                    .any(|m| &m.ts == parent && m.channel == channel)
                {
                    return json!({"ok": false, "error": "thread_not_found"});
                }
            }
            let message = SlackMessage {
                channel: channel.clone(),
                ts: slack.new_ts(),
                thread_ts,
                text: text(request, "text"),
                blocks: request["blocks"].clone(),
                updates: 0,
            };
            let answer = json!({"ok": true, "channel": channel, "ts": message.ts,
                "message": {"text": message.text, "blocks": message.blocks, "ts": message.ts}});
            ws.messages.push(message);
            answer
        }
        "chat.update" => {
            let (channel, ts) = (text(request, "channel"), text(request, "ts"));
            let Some(message) = ws
                .messages
                .iter_mut()
                .find(|m| m.ts == ts && m.channel == channel)
            else {
                return json!({"ok": false, "error": "message_not_found"});
            };
            if let Some(t) = request["text"].as_str() {
                message.text = t.to_string();
            }
            if request.get("blocks").is_some() {
                message.blocks = request["blocks"].clone();
            }
            message.updates += 1;
            json!({"ok": true, "channel": channel, "ts": ts, "text": message.text})
        }
        "chat.postEphemeral" => {
            let (channel, user) = (text(request, "channel"), text(request, "user"));
            if channel.is_empty() || user.is_empty() {
                return json!({"ok": false, "error": "user_not_in_channel"});
            }
            ws.ephemerals.push(Ephemeral {
                channel,
                user,
                text: text(request, "text"),
            });
            json!({"ok": true, "message_ts": slack.new_ts()})
        }
        "views.open" => {
            if text(request, "trigger_id").is_empty() || !request["view"].is_object() {
                return json!({"ok": false, "error": "invalid_arguments"});
            }
            ws.views.push(request["view"].clone());
            json!({"ok": true, "view": {"id": format!("V{:06}", ws.views.len())}})
        }
        "users.lookupByEmail" => {
            match ws.emails.get(&text(request, "email").to_ascii_lowercase()) {
                Some(id) => {
                    json!({"ok": true, "user": {"id": id, "profile": {"email": text(request, "email")}}})
                }
                None => json!({"ok": false, "error": "users_not_found"}),
            }
        }
        "usergroups.users.list" => match ws.usergroups.get(&text(request, "usergroup")) {
            Some(users) => json!({"ok": true, "users": users}),
            None => json!({"ok": false, "error": "no_such_subteam"}),
        },
        _ => json!({"ok": false, "error": "unknown_method"}),
    }
}
