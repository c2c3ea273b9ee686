//! The console's web server on 127.0.0.1: the page and its assets (embedded in the binary, no
//! external request), the state as JSON, a server-sent event each time it changes (the page
//! then reads the state once: no polling), the artifacts' file lists and files, and the Slack
//! clicks, which go to the run waiting at its approval.

use super::block_kit;
use super::model::ConsoleRecord;
use crate::slack::LocalSlack;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot, watch};

/// The page, embedded in the binary.
const INDEX_HTML: &str = include_str!("assets/index.html");
/// The page's script.
const APP_JS: &str = include_str!("assets/app.js");
/// The page's styles.
const STYLE_CSS: &str = include_str!("assets/style.css");

/// Largest file of an artifact the console shows.
const MAX_SHOWN_FILE: u64 = 256 * 1024;

/// What a person did in the rendered Slack, for the run waiting at an approval.
#[derive(Debug)]
pub enum SlackAction {
    /// A button of a message was clicked.
    Click {
        /// The message's ts.
        ts: String,
        /// The button's `action_id`.
        action_id: String,
    },
    /// The open modal was submitted with the reason typed.
    Submit {
        /// The reason.
        reason: String,
    },
}

/// A click and where its answer goes.
pub type SlackRequest = (SlackAction, oneshot::Sender<Result<String, String>>);

/// The approval a run waits at, with the console's decision.
struct Waiting {
    /// The approval's stage.
    stage: String,
    /// The approval action.
    action: String,
    /// Views opened before the wait began: a later one is the modal to show.
    views_before: usize,
    /// Where the page's clicks go.
    requests: mpsc::Sender<SlackRequest>,
}

/// What the console's handlers share.
struct Shared {
    /// What the page shows.
    record: Mutex<ConsoleRecord>,
    /// Bumped on every change, for the server-sent events.
    changed: watch::Sender<u64>,
    /// Where the record is kept, when there is a state folder.
    state_dir: Option<PathBuf>,
    /// The local S3's folder, for the artifact browser.
    s3_root: PathBuf,
    /// The recorded Slack, when the run has one.
    slack: Option<LocalSlack>,
    /// The approval waiting for a click, if any.
    waiting: Mutex<Option<Waiting>>,
    /// False for `pipeline-local console` (browsing a state folder).
    live: bool,
}

/// The console of a run (or of a state folder): cheap to clone, shared with the executor.
#[derive(Clone)]
pub struct Console {
    /// What the handlers share.
    shared: Arc<Shared>,
}

/// A lock that survives a panic in another holder.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Console {
    /// The console of a run: `record` holds the state folder's earlier executions.
    pub fn live(
        record: ConsoleRecord,
        state_dir: Option<PathBuf>,
        s3_root: PathBuf,
        slack: LocalSlack,
    ) -> Self {
        Self::new(record, state_dir, s3_root, Some(slack), true)
    }

    /// A state folder's record, to browse.
    pub fn browse(record: ConsoleRecord, s3_root: PathBuf) -> Self {
        Self::new(record, None, s3_root, None, false)
    }

    /// A console over `record`, kept in `state_dir` when given.
    fn new(
        record: ConsoleRecord,
        state_dir: Option<PathBuf>,
        s3_root: PathBuf,
        slack: Option<LocalSlack>,
        live: bool,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                record: Mutex::new(record),
                changed: watch::channel(0).0,
                state_dir,
                s3_root,
                slack,
                waiting: Mutex::new(None),
                live,
            }),
        }
    }

    /// Changes the record, keeps it in the state folder and tells the pages.
    pub fn update(&self, change: impl FnOnce(&mut ConsoleRecord)) {
        let mut record = lock(&self.shared.record);
        change(&mut record);
        if let Some(slack) = &self.shared.slack {
            record.slack = slack
                .messages()
                .into_iter()
                .filter_map(|m| serde_json::to_value(m).ok())
                .collect();
        }
        if let Some(dir) = &self.shared.state_dir {
            if let Err(e) = record.save(dir) {
                eprintln!(
                    "pipeline-local: cannot keep the console record in {}: {e}",
                    dir.display()
                );
            }
        }
        drop(record);
        self.shared.changed.send_modify(|v| *v += 1);
    }

    /// A CodePipeline EventBridge event, after its targets got it.
    pub fn event(&self, event: &Value) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok());
        self.update(|record| record.apply(event, now));
    }

    /// The run waits at `stage`/`action` for a click in the console; clicks arrive on the
    /// returned channel until [`Console::approval_ended`].
    pub fn wait_for_approval(&self, stage: &str, action: &str) -> mpsc::Receiver<SlackRequest> {
        let (requests, receiver) = mpsc::channel(4);
        let views_before = self.shared.slack.as_ref().map_or(0, |s| s.views().len());
        *lock(&self.shared.waiting) = Some(Waiting {
            stage: stage.into(),
            action: action.into(),
            views_before,
            requests,
        });
        self.update(|_| {});
        receiver
    }

    /// Tells the page the approval it waited on ended.
    pub fn approval_ended(&self) {
        *lock(&self.shared.waiting) = None;
        self.update(|_| {});
    }

    /// Serves the console on 127.0.0.1:`port` (0: a free port); returns its URL.
    pub async fn serve(&self, port: u16) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route(
                "/",
                get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }),
            )
            .route(
                "/app.js",
                get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }),
            )
            .route(
                "/style.css",
                get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }),
            )
            .route("/api/state", get(state))
            .route("/api/events", get(events))
            .route("/api/artifact", get(artifact_files))
            .route("/api/artifact/file", get(artifact_file))
            .route("/api/slack/click", post(click))
            .route("/api/slack/submit", post(submit))
            .route("/api/slack/close", post(close_view))
            .layer(axum::middleware::from_fn(loopback_host_only))
            .with_state(self.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(format!("http://{addr}/"))
    }

    /// `/api/state`: the record and the Slack channel as the page draws them.
    fn snapshot(&self) -> Value {
        let record = lock(&self.shared.record).clone();
        let waiting = lock(&self.shared.waiting);
        let messages: Vec<Value> = record
            .slack
            .iter()
            .map(|m| {
                let mut shown = m.clone();
                shown["html"] = json!(block_kit::blocks(&m["blocks"]));
                shown
            })
            .collect();
        let modal = waiting.as_ref().and_then(|w| {
            let views = self.shared.slack.as_ref()?.views();
            views
                .last()
                .filter(|_| views.len() > w.views_before)
                .map(block_kit::modal)
        });
        json!({
            "pipeline": record.pipeline,
            "executionMode": record.execution_mode,
            "stages": record.stages,
            "executions": record.executions,
            "slack": messages,
            "waiting": waiting.as_ref().map(|w| json!({"stage": w.stage, "action": w.action, "modal": modal})),
            "live": self.shared.live,
        })
    }

    /// Hands a Slack action to the waiting run and waits for its answer.
    async fn send(&self, action: SlackAction) -> Response {
        let requests = lock(&self.shared.waiting)
            .as_ref()
            .map(|w| w.requests.clone());
        let Some(requests) = requests else {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "no approval is waiting for a decision in this console"})),
            )
                .into_response();
        };
        let (reply, answer) = oneshot::channel();
        if requests.send((action, reply)).await.is_err() {
            return (
                StatusCode::CONFLICT,
                Json(json!({"error": "the approval is no longer waiting"})),
            )
                .into_response();
        }
        match answer.await {
            Ok(Ok(said)) => Json(json!({"ok": true, "answer": said})).into_response(),
            Ok(Err(why)) => (StatusCode::BAD_GATEWAY, Json(json!({"error": why}))).into_response(),
            Err(_) => (
                StatusCode::CONFLICT,
                Json(json!({"error": "the approval ended before the click was handled"})),
            )
                .into_response(),
        }
    }
}

/// Answers only requests addressed to this machine by name (`127.0.0.1`, `localhost`): a web
/// page elsewhere that rebinds its own domain to 127.0.0.1 cannot read the console or click in
/// it. (A cross-site POST is refused anyway: the API takes `application/json` only, which a
/// page elsewhere cannot send here without a CORS preflight nobody answers.)
async fn loopback_host_only(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    if matches!(name, "127.0.0.1" | "localhost") {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            "the console answers 127.0.0.1 and localhost only",
        )
            .into_response()
    }
}

/// An embedded asset with its content type and the security headers.
fn page(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            // The page loads nothing from elsewhere, and nothing else may frame or script it.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// `GET /api/state`.
async fn state(State(console): State<Console>) -> Json<Value> {
    Json(console.snapshot())
}

/// `GET /api/events`: one server-sent event per change.
async fn events(
    State(console): State<Console>,
) -> Sse<impl futures_util::stream::Stream<Item = Result<Event, Infallible>>> {
    let receiver = console.shared.changed.subscribe();
    // One event now (the page reads the state), then one per change; changes that come
    // faster than the page reads collapse into one.
    let stream =
        futures_util::stream::unfold((receiver, true), |(mut receiver, first)| async move {
            if !first && receiver.changed().await.is_err() {
                return None;
            }
            let version = *receiver.borrow_and_update();
            Some((
                Ok(Event::default().event("changed").data(version.to_string())),
                (receiver, false),
            ))
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Which artifact, and which file in it.
#[derive(Deserialize)]
struct ArtifactQuery {
    /// Its bucket.
    bucket: String,
    /// Its key.
    key: String,
    /// A file in the zip, for its content.
    path: Option<String>,
}

/// The artifact's zip, or why there is none (answered as 404).
fn open_artifact(
    console: &Console,
    query: &ArtifactQuery,
) -> Result<zip::ZipArchive<std::fs::File>, String> {
    let path = crate::s3::plain_object_path(&console.shared.s3_root, &query.bucket, &query.key)
        .ok_or("not an object of the local S3")?;
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", query.key))?;
    zip::ZipArchive::new(file).map_err(|e| format!("{} is not a zip: {e}", query.key))
}

/// A 404 saying why.
fn not_found(why: String) -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": why}))).into_response()
}

/// `GET /api/artifact`: the files of an artifact.
async fn artifact_files(
    State(console): State<Console>,
    Query(query): Query<ArtifactQuery>,
) -> Response {
    let mut archive = match open_artifact(&console, &query) {
        Ok(archive) => archive,
        Err(why) => return not_found(why),
    };
    let files: Vec<Value> = (0..archive.len())
        .filter_map(|i| {
            let entry = archive.by_index_raw(i).ok()?;
            (!entry.is_dir()).then(|| json!({"path": entry.name(), "size": entry.size()}))
        })
        .collect();
    Json(json!({"files": files})).into_response()
}

/// `GET /api/artifact/file`: one file of an artifact, as text.
async fn artifact_file(
    State(console): State<Console>,
    Query(query): Query<ArtifactQuery>,
) -> Response {
    let mut archive = match open_artifact(&console, &query) {
        Ok(archive) => archive,
        Err(why) => return not_found(why),
    };
    let Some(path) = &query.path else {
        return (StatusCode::BAD_REQUEST, "path is required").into_response();
    };
    let entry = match archive.by_name(path) {
        Ok(entry) => entry,
        Err(_) => return (StatusCode::NOT_FOUND, "no such file in the artifact").into_response(),
    };
    let size = entry.size();
    if size > MAX_SHOWN_FILE {
        return text(format!("({size} bytes: too large to show here)"));
    }
    let mut bytes = Vec::new();
    use std::io::Read;
    // The size is from the archive's header: read no more than it says, whatever the data holds.
    if entry
        .take(MAX_SHOWN_FILE + 1)
        .read_to_end(&mut bytes)
        .is_err()
    {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the file cannot be read from the artifact",
        )
            .into_response();
    }
    if bytes.len() as u64 > size {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            "the artifact's header says this file is smaller than its data: not shown",
        )
            .into_response();
    }
    match String::from_utf8(bytes) {
        Ok(content) => text(content),
        Err(e) => text(format!("(binary file, {} bytes)", e.as_bytes().len())),
    }
}

/// A plain-text response.
fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A click from the page.
#[derive(Deserialize)]
struct ClickBody {
    /// The message's ts.
    ts: String,
    /// The button's `action_id`.
    action_id: String,
}

/// `POST /api/slack/click`: the page's click, for the waiting approval.
async fn click(State(console): State<Console>, Json(body): Json<ClickBody>) -> Response {
    console
        .send(SlackAction::Click {
            ts: body.ts,
            action_id: body.action_id,
        })
        .await
}

/// A reason typed in the page's dialog.
#[derive(Deserialize)]
struct SubmitBody {
    /// The reason.
    reason: String,
}

/// `POST /api/slack/submit`: the dialog's submission, for the waiting approval.
async fn submit(State(console): State<Console>, Json(body): Json<SubmitBody>) -> Response {
    console
        .send(SlackAction::Submit {
            reason: body.reason,
        })
        .await
}

/// The modal closed without submitting: it is no longer shown.
async fn close_view(State(console): State<Console>) -> Response {
    if let (Some(waiting), Some(slack)) = (
        lock(&console.shared.waiting).as_mut(),
        console.shared.slack.as_ref(),
    ) {
        waiting.views_before = slack.views().len();
    }
    console.update(|_| {});
    Json(json!({"ok": true})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        for (name, data) in files {
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    fn console_with(object: &[u8]) -> (tempfile::TempDir, Console) {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("artifacts/run")).unwrap();
        std::fs::write(root.path().join("artifacts/run/site.zip"), object).unwrap();
        let console = Console::browse(ConsoleRecord::default(), root.path().to_path_buf());
        (root, console)
    }

    fn query(bucket: &str, key: &str, path: Option<&str>) -> Query<ArtifactQuery> {
        Query(ArtifactQuery {
            bucket: bucket.into(),
            key: key.into(),
            path: path.map(str::to_owned),
        })
    }

    async fn body(response: Response) -> (StatusCode, String) {
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn shows_an_artifacts_files_and_nothing_outside_the_buckets() {
        let (_root, console) = console_with(&zip_of(&[("site/index.html", b"<html>hi</html>")]));
        let (status, listed) = body(
            artifact_files(
                State(console.clone()),
                query("artifacts", "run/site.zip", None),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(listed.contains("\"site/index.html\""), "{listed}");
        let (status, file) = body(
            artifact_file(
                State(console.clone()),
                query("artifacts", "run/site.zip", Some("site/index.html")),
            )
            .await,
        )
        .await;
        assert_eq!((status, file.as_str()), (StatusCode::OK, "<html>hi</html>"));
        for (bucket, key) in [
            ("..", "etc/passwd"),
            ("artifacts", "../artifacts/run/site.zip"),
            (".hidden", "x"),
        ] {
            let (status, _) =
                body(artifact_files(State(console.clone()), query(bucket, key, None)).await).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{bucket}/{key}");
        }
    }

    #[tokio::test]
    async fn a_file_bigger_than_its_header_says_is_not_shown() {
        let data = vec![b'a'; 1_000];
        let mut archive = zip_of(&[("big.txt", &data)]);
        // The central directory's uncompressed size (offset 24 of its entry) says 10 bytes.
        let central = archive.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        archive[central + 24..central + 28].copy_from_slice(&10u32.to_le_bytes());
        let (_root, console) = console_with(&archive);
        let (status, said) = body(
            artifact_file(
                State(console),
                query("artifacts", "run/site.zip", Some("big.txt")),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{said}");
    }

    async fn get_with_host(url: &str, host: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request =
            format!("GET /api/state HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    #[tokio::test]
    async fn answers_only_requests_addressed_to_loopback() {
        let (_root, console) = console_with(b"");
        let url = console.serve(0).await.unwrap();
        let port = url
            .rsplit(':')
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
            let answer = get_with_host(&url, &host).await;
            assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
        }
        let answer = get_with_host(&url, &format!("rebound.example:{port}")).await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    }

    #[tokio::test]
    async fn a_click_with_no_approval_waiting_is_refused() {
        let (_root, console) = console_with(b"not a zip");
        let (status, said) = body(
            click(
                State(console.clone()),
                Json(ClickBody {
                    ts: "1.2".into(),
                    action_id: "approve".into(),
                }),
            )
            .await,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{said}");
        let (status, said) =
            body(artifact_files(State(console), query("artifacts", "run/site.zip", None)).await)
                .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(said.contains("is not a zip"), "{said}");
    }
}
