//! `examples/team`: a pipeline shaped like a real team's (git source, CodeBuild build and unit
//! tests, artifact-processor, ECS deploy, integration tests against the published site,
//! approval, S3 deploy), run end to end through the binary on a git repository the test makes.

mod support;

use std::path::{Path, PathBuf};
use support::{copy_folder, git, repository, run};

/// A git repository holding `examples/team/app`, one commit on `main`.
fn storefront(dir: &Path) -> PathBuf {
    let repo = dir.join("storefront");
    copy_folder(&repository().join("examples/team/app"), &repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-qm", "first commit"]);
    repo
}

fn run_team(repo: &Path, state: &Path, extra: &[&str]) -> (std::process::Output, String) {
    let mut args = vec![
        "--template",
        "examples/team/template.yaml",
        "--repo",
        repo.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--verbose",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_teams_pipeline_runs_end_to_end_from_a_git_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = storefront(dir.path());
    let commit = git(&repo, &["rev-parse", "HEAD"]);
    let state = dir.path().join("state");

    // Without --assume-deployed the ECS deploy is checked and the run stops there.
    let (out, text) = run_team(&repo, &state, &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NOT DEPLOYED (Deploy/AWS/ECS is not emulated by pipeline-local)"),
        "{text}"
    );
    let production = state.join("s3/pipeline-local-productionsitebucket");
    assert!(!production.join("index.html").exists());

    let (out, text) = run_team(&repo, &state, &["--assume-deployed"]);
    assert!(out.status.success(), "{text}");
    // The trigger verdict for the commit built.
    assert!(
        text.contains("matches trigger 1, push filter 1: it would start this execution"),
        "{text}"
    );
    // The build: unit tests, an exported variable, two output artifacts.
    assert!(text.contains("PASS greeting"), "{text}");
    assert!(
        text.contains(&format!("BuildVariables.IMAGE_TAG = {}", &commit[..12])),
        "{text}"
    );
    assert!(text.contains("artifact Container (1 files)"), "{text}");
    // artifact-processor wrote the image definitions the ECS deploy checked.
    assert!(
        text.contains("imagedefinitions.json: 1 containers")
            && text.contains("counted as deployed by --assume-deployed"),
        "{text}"
    );
    // The integration tests read the site the same execution published to staging.
    assert!(
        text.contains(&format!("PASS staging serves 1.4.0 ({})", &commit[..12])),
        "{text}"
    );
    assert!(text.contains("Approved by pipeline-local"), "{text}");
    let staging = state.join("s3/pipeline-local-stagingsitebucket");
    for bucket in [&staging, &production] {
        assert_eq!(
            std::fs::read_to_string(bucket.join("greeting.txt"))
                .unwrap()
                .trim(),
            "Hello, world"
        );
    }
    assert!(std::fs::read_to_string(production.join("version.txt"))
        .unwrap()
        .contains(&commit[..12]));
    assert!(text.contains("Pipeline storefront SUCCEEDED"), "{text}");
}

#[test]
fn a_failing_unit_test_fails_the_build_with_its_output_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let repo = storefront(dir.path());
    std::fs::write(
        repo.join("src/greeting.sh"),
        "#!/bin/sh\necho \"Hello, moon\"\n",
    )
    .unwrap();
    git(&repo, &["commit", "-qam", "change the greeting"]);
    let state = dir.path().join("state");
    let (out, text) = run_team(&repo, &state, &["--assume-deployed"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let summary = text
        .lines()
        .find(|l| l.contains("BuildAndTest FAILED"))
        .unwrap_or_else(|| panic!("no failed build line:\n{text}"));
    assert!(
        summary.contains("the build failed in pre_build")
            && summary.contains("FAIL greeting: expected 'Hello, world', got 'Hello, moon'"),
        "{summary}"
    );
    assert!(!state
        .join("s3/pipeline-local-stagingsitebucket/index.html")
        .exists());
}

#[test]
fn a_commit_the_triggers_file_paths_exclude_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let repo = storefront(dir.path());
    std::fs::write(
        repo.join("docs/operations.md"),
        "# Operations\n\nOn call: team.\n",
    )
    .unwrap();
    git(&repo, &["commit", "-qam", "docs only"]);
    let state = dir.path().join("state");
    let (out, text) = run_team(&repo, &state, &["--assume-deployed"]);
    // The run is what the person asked for; the verdict says AWS would not have started it.
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no trigger would start this execution after a push of branch main: trigger 1, push filter 1: none of the 1 files the commit changed passes its FilePaths"),
        "{text}"
    );
}
