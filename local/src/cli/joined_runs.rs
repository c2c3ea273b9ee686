//! Several `pipeline-local run`s on one state folder: the first holds the folder and runs every
//! execution; a later `run` joins its execution to it and shows that execution's lines.
//!
//! One process owns a state folder's endpoints, history and buckets (see
//! [`crate::state_folder`]), as one AWS account owns its pipeline: a second `run` on the folder
//! is a second `StartPipelineExecution`, not a second account. The holder listens on a Unix
//! socket in the folder ([`SOCKET`]); a joining `run` sends its options as one JSON line and
//! reads back its execution's output, one JSON line each, ending with the state it ended in.
//! Executions in one process enter stages as the pipeline's `ExecutionMode` says
//! ([`crate::pipeline::StageGates`]), and the console of the holder shows them all.
//!
//! The socket lives in the folder, so only who may write the folder may start executions in
//! it. The holder stops taking joins when its last execution ends, then removes the socket; a
//! `run` that arrives in that moment retries, and takes the folder when it is free.

use crate::pipeline::output::Sink;
use crate::pipeline::{ExecutionState, Options};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

/// The socket's name inside the state folder.
pub const SOCKET: &str = ".pipeline-local.sock";

/// A request to run one execution in the process that holds the folder.
#[derive(Debug, Serialize, Deserialize)]
pub struct JoinRequest {
    /// What to execute, paths made absolute by the joining `run`.
    pub options: Options,
    /// `--parameter KEY=VALUE` of the joining `run`.
    pub overrides: Vec<(String, String)>,
    /// `--database-url` of the joining `run` (else the holder's database).
    pub database_url: Option<String>,
}

/// One line of the answer.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    /// A line of the execution's output.
    Line(String),
    /// The state the execution ended in (`SUCCEEDED`).
    Ended(String),
    /// The execution could not run.
    Error(String),
}

/// A joined execution waiting to be run: its request and where its lines go.
pub struct Join {
    /// What to run.
    pub request: JoinRequest,
    /// Its output.
    pub sink: Sink,
    /// How it ended, for the joining `run`.
    pub ended: tokio::sync::oneshot::Sender<Result<ExecutionState, String>>,
}

/// The holder's side: the socket in `state_dir`, removed when dropped.
pub struct JoinListener {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
    /// Joining runs still being answered.
    answering: Arc<AtomicUsize>,
}

impl JoinListener {
    /// Listens in `state_dir`; joins arrive on the returned channel.
    pub fn listen(state_dir: &Path) -> Result<(Self, mpsc::Receiver<Join>), String> {
        let path = state_dir.join(SOCKET);
        // A socket left by a holder that was killed: we hold the lock, so it is stale.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|e| {
            format!(
                "cannot listen on {} for other runs on this state folder: {e}",
                path.display()
            )
        })?;
        let (joins, receiver) = mpsc::channel(16);
        let answering = Arc::new(AtomicUsize::new(0));
        let counter = answering.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let counter = counter.clone();
                let joins = joins.clone();
                tokio::spawn(async move {
                    serve_join(stream, joins).await;
                    counter.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok((
            Self {
                path,
                task,
                answering,
            },
            receiver,
        ))
    }

    /// Stops taking joins and waits (a few seconds at most) until every joining run has its
    /// last line: the process must not end while it is being written.
    pub async fn close(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.answering.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for JoinListener {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One joining `run`: reads its request, hands it to the holder's loop, streams the output.
async fn serve_join(stream: UnixStream, joins: mpsc::Sender<Join>) {
    let (read, mut write) = stream.into_split();
    let mut request = String::new();
    let mut reader = BufReader::new(read).take(1 << 20);
    if reader.read_line(&mut request).await.is_err() {
        return;
    }
    let answer = |answer: Answer| {
        let mut line = serde_json::to_string(&answer).unwrap_or_default();
        line.push('\n');
        line
    };
    let request: JoinRequest = match serde_json::from_str(&request) {
        Ok(request) => request,
        Err(e) => {
            let _ = write
                .write_all(answer(Answer::Error(format!("not a run request: {e}"))).as_bytes())
                .await;
            return;
        }
    };
    let (lines, mut output) = mpsc::unbounded_channel();
    let (ended, end) = tokio::sync::oneshot::channel();
    let join = Join {
        request,
        sink: Sink(lines),
        ended,
    };
    if joins.send(join).await.is_err() {
        let _ = write
            .write_all(answer(Answer::Error(ENDING.into())).as_bytes())
            .await;
        return;
    }
    while let Some(line) = output.recv().await {
        if write
            .write_all(answer(Answer::Line(line)).as_bytes())
            .await
            .is_err()
        {
            // The joining run went away; its execution goes on, as on AWS.
            break;
        }
    }
    let last = match end.await {
        Ok(Ok(state)) => Answer::Ended(state.event_name().to_string()),
        Ok(Err(message)) => Answer::Error(message),
        Err(_) => Answer::Error(ENDING.into()),
    };
    let _ = write.write_all(answer(last).as_bytes()).await;
}

/// Why a join was not taken: the holder's last execution ended as it arrived.
const ENDING: &str = "the run holding the state folder is ending";

/// The joining side: runs `request` in the process holding `state_dir`, printing its lines.
/// `Ok(None)` when the holder was ending (take the folder and run here).
pub async fn join(
    state_dir: &Path,
    request: &JoinRequest,
) -> Result<Option<ExecutionState>, String> {
    let path = state_dir.join(SOCKET);
    let stream = match UnixStream::connect(&path).await {
        Ok(stream) => stream,
        // The holder is starting (no socket yet) or ending (socket gone): try again.
        Err(_) => return Ok(None),
    };
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
    line.push('\n');
    write
        .write_all(line.as_bytes())
        .await
        .map_err(|e| format!("cannot reach the run holding {}: {e}", state_dir.display()))?;
    let mut lines = BufReader::new(read).lines();
    while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
        match serde_json::from_str::<Answer>(&line) {
            Ok(Answer::Line(text)) => println!("{text}"),
            Ok(Answer::Ended(state)) => return ended_state(&state).map(Some),
            Ok(Answer::Error(message)) if message == ENDING => return Ok(None),
            Ok(Answer::Error(message)) => return Err(message),
            Err(e) => {
                return Err(format!(
                    "the run holding the state folder answered {line:?}: {e}"
                ))
            }
        }
    }
    Err(format!(
        "the run holding {} ended before this execution did",
        state_dir.display()
    ))
}

fn ended_state(name: &str) -> Result<ExecutionState, String> {
    [
        ExecutionState::Succeeded,
        ExecutionState::Failed,
        ExecutionState::Abandoned,
        ExecutionState::Superseded,
    ]
    .into_iter()
    .find(|s| s.event_name() == name)
    .ok_or_else(|| format!("the execution ended in an unknown state {name}"))
}

/// Takes the folder's lock, or joins the run holding it; retried while a holder is starting or
/// ending (for up to half a minute), refused at once when the holder takes no executions.
pub async fn hold_or_join(
    state_dir: &Path,
    request: impl Fn() -> JoinRequest,
) -> Result<Held, String> {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(lock) = crate::state_folder::try_lock(state_dir)? {
            return Ok(Held::Here(lock));
        }
        if let Some(state) = join(state_dir, &request()).await? {
            return Ok(Held::Joined(state));
        }
        // A holder that never listens (`serve`, `invoke`) is told apart from one starting up
        // by time: a starting `run` listens within a few seconds.
        let listening = state_dir.join(SOCKET).exists();
        let waited = started.elapsed();
        if waited >= Duration::from_secs(30) || (!listening && waited >= Duration::from_secs(3)) {
            return Err(format!(
                "another pipeline-local process is using the state folder {} and takes no executions (a `serve` or `invoke`?); wait for it to end or use another --state-dir",
                state_dir.display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a `run` got its execution done.
pub enum Held {
    /// This process holds the folder (keep the lock file): run here.
    Here(std::fs::File),
    /// The holder ran it; it ended in this state.
    Joined(ExecutionState),
}

/// `path` made absolute against the current directory (a joined execution runs elsewhere).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
