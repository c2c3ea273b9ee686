//! The Lambda Runtime API, hosted on loopback, in front of a real function binary.
//!
//! The host spawns the binary with `AWS_LAMBDA_RUNTIME_API` pointing here and hands it events
//! through `GET /2018-06-01/runtime/invocation/next`, as Lambda does. Like Lambda it keeps the
//! process warm between invocations, kills it when an invocation overruns its timeout, and
//! starts a new one (a cold start) when the next event arrives.

use crate::calls::ms_since_start;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot, watch};

/// How to start one function.
#[derive(Clone, Debug)]
pub struct FunctionSpec {
    /// The function's name, for logs.
    pub name: String,
    /// The program (a release binary named `bootstrap` on Lambda) and its arguments.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment on top of what Lambda itself sets; the parent's environment is not inherited
    /// beyond `PATH` and `HOME`.
    pub env: Vec<(String, String)>,
    /// Its timeout.
    pub timeout: Duration,
    /// Its memory size (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
    /// Echo the function's output lines to this process's stderr as they come.
    pub echo_logs: bool,
}

impl FunctionSpec {
    /// A function with Lambda's defaults (3 s, 128 MB).
    pub fn new(name: &str, program: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            memory_mb: 512,
            echo_logs: false,
        }
    }
}

/// How one invocation ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The function posted a response.
    Response {
        /// The response.
        body: Value,
    },
    /// The function posted an invocation error.
    Error {
        /// The `errorType`.
        error_type: String,
        /// The `errorMessage`.
        error_message: String,
    },
    /// The function posted an init error before taking the event.
    InitError {
        /// The `errorType`.
        error_type: String,
        /// The `errorMessage`.
        error_message: String,
    },
    /// No response before the timeout: the process was killed.
    Timeout,
    /// The process exited while the invocation was open.
    Crashed {
        /// How it exited.
        status: String,
    },
}

/// One invocation and how it went.
#[derive(Clone, Debug, Serialize)]
pub struct Invocation {
    /// Its request id.
    pub request_id: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether this invocation started a new process.
    pub cold_start: bool,
    /// Milliseconds since [`crate::calls::clock_start`] when the process was spawned.
    pub spawned_at_ms: f64,
    /// When it started (milliseconds since the host started).
    pub started_at_ms: f64,
    /// When it ended.
    pub finished_at_ms: f64,
    /// Peak resident memory of the process so far (`VmHWM`), in KiB.
    pub peak_rss_kib: Option<u64>,
}

impl Invocation {
    /// How long it took.
    pub fn duration_ms(&self) -> f64 {
        self.finished_at_ms - self.started_at_ms
    }
}

/// An invocation waiting for the function to ask for it.
struct Pending {
    /// Its request id.
    request_id: String,
    /// The event.
    body: Bytes,
    /// `Lambda-Runtime-Deadline-Ms`.
    deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    arn: String,
}

/// Invocations handed out, waiting for their response.
#[derive(Default)]
struct Waiting {
    /// Where each one's outcome goes, by request id.
    responders: HashMap<String, oneshot::Sender<Outcome>>,
}

/// What the Runtime API's handlers share.
struct Shared {
    /// Invocations not yet taken by `/next`.
    queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Pending>>,
    /// Invocations taken, not yet answered.
    waiting: Mutex<Waiting>,
    /// An init error the function posted before taking an event.
    init_error: Mutex<Option<Outcome>>,
}

/// The running function process.
struct Process {
    /// Its pid, for peak RSS.
    pid: Option<u32>,
    /// How it exited, once it did.
    exited: watch::Receiver<Option<String>>,
    /// Kills it.
    kill: Option<oneshot::Sender<()>>,
    /// When it was started (ms since the host started), for cold-start times.
    spawned_at_ms: f64,
}

/// One function behind its own Runtime API endpoint.
pub struct FunctionHost {
    /// The function.
    spec: FunctionSpec,
    /// Where the Runtime API listens.
    addr: SocketAddr,
    /// What the handlers share.
    shared: Arc<Shared>,
    /// Where invocations are queued.
    queue_tx: mpsc::UnboundedSender<Pending>,
    /// The process, once started (again after a crash or timeout).
    process: tokio::sync::Mutex<Option<Process>>,
    /// Its output, one line each.
    logs: Arc<Mutex<Vec<String>>>,
    /// The Runtime API server.
    server: tokio::task::JoinHandle<()>,
}

impl FunctionHost {
    /// Starts the Runtime API endpoint; the process is spawned on the first invocation.
    pub async fn start(spec: FunctionSpec) -> std::io::Result<Self> {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            waiting: Mutex::new(Waiting::default()),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(fail))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            spec,
            addr,
            shared,
            queue_tx,
            process: tokio::sync::Mutex::new(None),
            logs: Arc::default(),
            server,
        })
    }

    /// The function it hosts.
    pub fn spec(&self) -> &FunctionSpec {
        &self.spec
    }

    /// Everything the function printed so far, one line per entry.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Runs one event through the function and waits for its outcome.
    pub async fn invoke(&self, event: &Value) -> Invocation {
        let mut process_slot = self.process.lock().await;
        let warm = process_slot.take().filter(|p| p.exited.borrow().is_none());
        let cold_start = warm.is_none();
        let process = match warm {
            Some(process) => process_slot.insert(process),
            None => {
                if let Ok(mut init) = self.shared.init_error.lock() {
                    *init = None;
                }
                match self.spawn() {
                    Ok(process) => process_slot.insert(process),
                    Err(err) => {
                        let now = ms_since_start();
                        return Invocation {
                            request_id: String::new(),
                            outcome: Outcome::InitError {
                                error_type: "Runtime.InvalidEntrypoint".into(),
                                error_message: err,
                            },
                            cold_start,
                            spawned_at_ms: now,
                            started_at_ms: now,
                            finished_at_ms: now,
                            peak_rss_kib: None,
                        };
                    }
                }
            }
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let started_at_ms = ms_since_start();
        let deadline_ms = unix_time_ms() + self.spec.timeout.as_millis() as u64;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut waiting) = self.shared.waiting.lock() {
            waiting.responders.insert(request_id.clone(), tx);
        }
        let _ = self.queue_tx.send(Pending {
            request_id: request_id.clone(),
            body: Bytes::from(event.to_string()),
            deadline_ms,
            arn: format!(
                "arn:aws:lambda:us-east-1:000000000000:function:{}",
                self.spec.name
            ),
        });
        let mut exited = process.exited.clone();
        let outcome = tokio::select! {
            outcome = rx => outcome.unwrap_or(Outcome::Crashed { status: "response channel closed".into() }),
            _ = tokio::time::sleep(self.spec.timeout) => Outcome::Timeout,
            status = wait_exit(&mut exited) => {
                let init = self.shared.init_error.lock().ok().and_then(|mut i| i.take());
                init.unwrap_or(Outcome::Crashed { status })
            }
        };
        if let Ok(mut waiting) = self.shared.waiting.lock() {
            waiting.responders.remove(&request_id);
        }
        let peak_rss_kib = process.pid.and_then(peak_rss_kib);
        let spawned_at_ms = process.spawned_at_ms;
        if matches!(outcome, Outcome::Timeout | Outcome::InitError { .. }) {
            if let Some(kill) = process.kill.take() {
                let _ = kill.send(());
            }
            let _ = wait_exit(&mut process.exited.clone()).await;
            // Events queued for the dead process must not reach the next one.
            drain(&self.shared).await;
        }
        Invocation {
            request_id,
            outcome,
            cold_start,
            spawned_at_ms,
            started_at_ms,
            finished_at_ms: ms_since_start(),
            peak_rss_kib,
        }
    }

    /// Starts the function's process with the Lambda environment.
    fn spawn(&self) -> Result<Process, String> {
        let mut command = Command::new(&self.spec.program);
        command.args(&self.spec.args).env_clear();
        for name in ["PATH", "HOME", "LANG", "SYSTEMROOT"] {
            if let Ok(value) = std::env::var(name) {
                command.env(name, value);
            }
        }
        command
            .env("AWS_LAMBDA_RUNTIME_API", self.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &self.spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.spec.name),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "pipeline-local")
            .env("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023")
            .env(
                "LAMBDA_TASK_ROOT",
                self.spec
                    .program
                    .parent()
                    .unwrap_or(std::path::Path::new(".")),
            )
            .env("TZ", ":UTC");
        for (key, value) in &self.spec.env {
            command.env(key, value);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.spec.program.display()))?;
        let spawned_at_ms = ms_since_start();
        let pid = child.id();
        if let Some(out) = child.stdout.take() {
            self.collect_lines(out);
        }
        if let Some(err) = child.stderr.take() {
            self.collect_lines(err);
        }
        let (exit_tx, exit_rx) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = kill_rx => { let _ = child.kill().await; child.wait().await }
            };
            let text = match status {
                Ok(status) => status.to_string(),
                Err(err) => err.to_string(),
            };
            let _ = exit_tx.send(Some(text));
        });
        Ok(Process {
            pid,
            exited: exit_rx,
            kill: Some(kill_tx),
            spawned_at_ms,
        })
    }

    /// Copies a stream of the process into the log, line by line.
    fn collect_lines<R: tokio::io::AsyncRead + Unpin + Send + 'static>(&self, reader: R) {
        let logs = self.logs.clone();
        let echo = self.spec.echo_logs;
        let name = self.spec.name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if echo {
                    eprintln!("  │ {name}: {line}");
                }
                if let Ok(mut logs) = logs.lock() {
                    logs.push(line);
                }
            }
        });
    }

    /// Stops the function's process.
    pub async fn shutdown(&self) {
        if let Some(mut process) = self.process.lock().await.take() {
            if let Some(kill) = process.kill.take() {
                let _ = kill.send(());
            }
            let _ = wait_exit(&mut process.exited).await;
        }
    }
}

impl Drop for FunctionHost {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Waits until the process exits, with how.
async fn wait_exit(exited: &mut watch::Receiver<Option<String>>) -> String {
    loop {
        if let Some(status) = exited.borrow().clone() {
            return status;
        }
        if exited.changed().await.is_err() {
            return "process monitor ended".into();
        }
    }
}

/// Answers every invocation still waiting (the process is gone).
async fn drain(shared: &Shared) {
    let mut rx = shared.queue_rx.lock().await;
    while rx.try_recv().is_ok() {}
}

/// Now, in epoch milliseconds.
fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Peak resident set size of a live process, from `/proc/<pid>/status`.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `GET /invocation/next`: the next event, with Lambda's headers.
async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let pending = {
        let mut rx = shared.queue_rx.lock().await;
        rx.recv().await
    };
    let Some(pending) = pending else {
        return (StatusCode::GONE, "host stopped").into_response();
    };
    let mut response = (StatusCode::OK, pending.body).into_response();
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &pending.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &pending.deadline_ms.to_string(),
    );
    set("lambda-runtime-invoked-function-arn", &pending.arn);
    set(
        "lambda-runtime-trace-id",
        &format!(
            "Root=1-00000000-{}",
            pending.request_id.replace('-', "").get(..24).unwrap_or("0")
        ),
    );
    set("content-type", "application/json");
    response
}

/// Hands an invocation's outcome to whoever waits for it.
fn finish(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    let sender = shared
        .waiting
        .lock()
        .ok()
        .and_then(|mut w| w.responders.remove(id));
    match sender {
        Some(sender) => {
            let _ = sender.send(outcome);
            StatusCode::ACCEPTED
        }
        // Like Lambda: a response for an invocation that is no longer open is refused.
        None => StatusCode::BAD_REQUEST,
    }
}

/// `POST /invocation/{id}/response`.
async fn respond(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    finish(&shared, &id, Outcome::Response { body })
}

/// `errorType` and `errorMessage` from an error post (header, then body).
fn error_fields(headers: &HeaderMap, body: &[u8]) -> (String, String) {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error_type = parsed
        .get("errorType")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".into());
    let error_message = parsed
        .get("errorMessage")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    (error_type, error_message)
}

/// `POST /invocation/{id}/error`.
async fn fail(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (error_type, error_message) = error_fields(&headers, &body);
    finish(
        &shared,
        &id,
        Outcome::Error {
            error_type,
            error_message,
        },
    )
}

/// `POST /init/error`.
async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (error_type, error_message) = error_fields(&headers, &body);
    if let Ok(mut init) = shared.init_error.lock() {
        *init = Some(Outcome::InitError {
            error_type,
            error_message,
        });
    }
    StatusCode::ACCEPTED
}
