//! Where an execution's lines go: the terminal of the `pipeline-local run` that asked for it.
//!
//! An execution a second `run` starts on a state folder in use runs in the process that holds
//! the folder (see [`crate::cli::joined_runs`]); its lines go back to that second `run`'s terminal
//! through the sink set for its task, and everything else prints to this process's stdout.

use tokio::sync::mpsc::UnboundedSender;

tokio::task_local! {
    static SINK: Sink;
}

/// The lines of one execution, sent to whoever waits for them.
#[derive(Clone, Debug)]
pub struct Sink(pub UnboundedSender<String>);

/// Prints a line of the current execution's output.
pub fn line(text: String) {
    if SINK.try_with(|sink| sink.0.send(text.clone())).is_err() {
        // No sink for this task: this process's own execution.
        println!("{text}");
    }
}

/// The current task's sink, for work handed to another thread.
pub fn current() -> Option<Sink> {
    SINK.try_with(Sink::clone).ok()
}

/// Prints `text` into `sink` when there is one, else to stdout (from any thread).
pub fn line_to(sink: Option<&Sink>, text: String) {
    match sink {
        Some(sink) => {
            let _ = sink.0.send(text);
        }
        None => println!("{text}"),
    }
}

/// Runs `future` with its lines going to `sink` (stdout when `None`).
pub async fn scoped<F: std::future::Future>(sink: Option<Sink>, future: F) -> F::Output {
    match sink {
        Some(sink) => SINK.scope(sink, future).await,
        None => future.await,
    }
}
