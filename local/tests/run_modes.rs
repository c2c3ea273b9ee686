//! Several `pipeline-local run`s started together on one state folder: the first holds it and
//! runs them all, each entering stages as the pipeline's `ExecutionMode` lets it.
//!
//! Every build waits for a `release` file the test writes, so which execution is where is
//! decided by the test, not by timing: a run's own lines say when it waits at a boundary.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MODES_JSON: &str = r##"{
  "Resources": {
    "Artifacts": {"Type": "AWS::S3::Bucket"},
    "Web": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ExecutionMode": "MODE",
      "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Variables": [{"Name": "RUN", "DefaultValue": "x"}],
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Build", "OnFailure": {"Result": "ROLLBACK"}, "Actions": [{"Name": "Build",
          "ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "Commands", "Version": "1"},
          "Configuration": {"Commands": [
            "touch MARKS/#{variables.RUN}.building",
            "while [ ! -f MARKS/release ]; do sleep 0.05; done",
            "echo #{variables.RUN} >> MARKS/order.log",
            "test #{variables.RUN} != broken"]},
          "InputArtifacts": [{"Name": "Src"}]}]}]}}
  }
}"##;

/// A `run` in progress, its lines collected as they come.
struct RunningRun {
    child: Child,
    lines: Arc<Mutex<String>>,
}

impl RunningRun {
    fn start(template: &Path, state: &Path, source: &Path, run: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline-local"))
            .args(["run", "--template"])
            .arg(template)
            .arg("--state-dir")
            .arg(state)
            .arg("--source")
            .arg(source)
            .args(["--variable", &format!("RUN={run}")])
            .current_dir(support::repository())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut all = lines.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        Self { child, lines }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().clone()
    }

    /// Waits (up to two minutes) until the run has said `needle`.
    fn wait_for_line(&self, needle: &str) {
        let started = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "never said {needle:?}:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit status and everything said.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap().code();
        std::thread::sleep(Duration::from_millis(100)); // the readers drain the pipes
        (status, self.text())
    }
}

/// Waits until `path` exists.
fn wait_for_file(path: &Path) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The template in `mode`, the state folder, the source and the marks folder.
fn setup(dir: &Path, mode: &str) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let marks = dir.join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("app.txt"), "app").unwrap();
    let template = dir.join("pipeline.json");
    std::fs::write(
        &template,
        MODES_JSON
            .replace("MODE", mode)
            .replace("MARKS", marks.to_str().unwrap()),
    )
    .unwrap();
    (template, dir.join("state"), source, marks)
}

/// The status CodePipeline's history gives each execution, by its `RUN` variable.
fn history_status(state: &Path, run: &str) -> String {
    let text =
        std::fs::read_to_string(state.join("codepipeline-executions.json")).unwrap_or_default();
    let history: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let mut found = Vec::new();
    walk(&history, &mut |execution| {
        let variables = execution["variables"].to_string();
        if execution.get("status").is_some()
            && variables.contains(&format!("\"resolvedValue\":\"{run}\""))
        {
            found.push(execution["status"].as_str().unwrap_or_default().to_string());
        }
    });
    found.join(",")
}

fn walk(value: &serde_json::Value, visit: &mut dyn FnMut(&serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) => {
            visit(value);
            map.values().for_each(|v| walk(v, visit));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, visit)),
        _ => {}
    }
}

#[test]
fn superseded_mode_ends_the_older_waiting_execution_and_runs_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let (template, state, source, marks) = setup(dir.path(), "SUPERSEDED");
    let a = RunningRun::start(&template, &state, &source, "a");
    wait_for_file(&marks.join("a.building"));
    let b = RunningRun::start(&template, &state, &source, "b");
    b.wait_for_line("waiting to enter Build");
    let c = RunningRun::start(&template, &state, &source, "c");
    c.wait_for_line("waiting to enter Build");
    // b was waiting when c arrived at the same boundary: b ends there, superseded.
    let (status, text) = b.finish();
    assert_eq!(status, Some(3), "{text}");
    assert!(
        text.contains("SUPERSEDED at the entrance of Build by the newer execution"),
        "{text}"
    );
    // Its timeline ends at the stage it never entered, and so does its verdict.
    let timeline = text.split("Timeline").nth(1).unwrap_or_default();
    assert!(
        timeline.lines().any(|l| l.contains("SUPERSEDED")
            && l.contains("Build")
            && l.contains("(entrance; superseded by")),
        "{text}"
    );
    assert!(
        text.contains("Pipeline pipeline-local-Web SUPERSEDED"),
        "{text}"
    );
    std::fs::write(marks.join("release"), "").unwrap();
    let (status, text) = a.finish();
    assert_eq!(status, Some(0), "{text}");
    let (status, text) = c.finish();
    assert_eq!(status, Some(0), "{text}");
    assert!(!marks.join("b.building").exists(), "b never built");
    assert_eq!(
        std::fs::read_to_string(marks.join("order.log")).unwrap(),
        "a\nc\n"
    );
    assert_eq!(history_status(&state, "b"), "Superseded");
    assert_eq!(history_status(&state, "c"), "Succeeded");
}

#[test]
fn queued_mode_runs_each_waiting_execution_in_turn_in_the_order_they_came() {
    let dir = tempfile::tempdir().unwrap();
    let (template, state, source, marks) = setup(dir.path(), "QUEUED");
    let a = RunningRun::start(&template, &state, &source, "a");
    wait_for_file(&marks.join("a.building"));
    let b = RunningRun::start(&template, &state, &source, "b");
    b.wait_for_line("waiting to enter Build");
    let c = RunningRun::start(&template, &state, &source, "c");
    c.wait_for_line("waiting to enter Build");
    assert!(!marks.join("b.building").exists() && !marks.join("c.building").exists());
    std::fs::write(marks.join("release"), "").unwrap();
    for (run, name) in [(a, "a"), (b, "b"), (c, "c")] {
        let (status, text) = run.finish();
        assert_eq!(status, Some(0), "{name}: {text}");
    }
    assert_eq!(
        std::fs::read_to_string(marks.join("order.log")).unwrap(),
        "a\nb\nc\n"
    );
    assert_eq!(history_status(&state, "b"), "Succeeded");
}

#[test]
fn parallel_mode_runs_executions_side_by_side_and_refuses_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let (template, state, source, marks) = setup(dir.path(), "PARALLEL");
    let a = RunningRun::start(&template, &state, &source, "a");
    wait_for_file(&marks.join("a.building"));
    let broken = RunningRun::start(&template, &state, &source, "broken");
    // Both are inside Build at once: neither waits for the other.
    wait_for_file(&marks.join("broken.building"));
    assert!(!a.text().contains("waiting to enter"));
    std::fs::write(marks.join("release"), "").unwrap();
    let (status, text) = broken.finish();
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("Build is not rolled back: CodePipeline has no rollback in PARALLEL mode"),
        "{text}"
    );
    let (status, text) = a.finish();
    assert_eq!(status, Some(0), "{text}");
}
