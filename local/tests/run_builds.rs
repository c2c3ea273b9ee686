//! `pipeline-local run` of CodeBuild and Commands actions through its binary: buildspecs on
//! the host, their variables, phases, artifacts, and hostile buildspecs refused.

mod support;

use std::path::{Path, PathBuf};
use support::run;

const BUILD_JSON: &str = r##"{
  "Resources": {
    "Artifacts": {"Type": "AWS::S3::Bucket"},
    "Site": {"Type": "AWS::S3::Bucket"},
    "WebBuild": {"Type": "AWS::CodeBuild::Project", "Properties": {
      "TimeoutInMinutes": 10,
      "Environment": {"EnvironmentVariables": [{"Name": "FROM_PROJECT", "Value": "project"}]},
      "Source": {"Type": "CODEPIPELINE", "BuildSpec": "BUILDSPEC"}}},
    "Web": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Build", "Actions": [{"Name": "Build", "Namespace": "BuildVariables",
          "ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild", "Version": "1"},
          "Configuration": {"ProjectName": {"Ref": "WebBuild"},
                            "EnvironmentVariables": "[{\"name\": \"FROM_ACTION\", \"value\": \"action\"}]"},
          "InputArtifacts": [{"Name": "Src"}], "OutputArtifacts": [{"Name": "BuildOut"}]}]},
        {"Name": "Deploy", "Actions": [{"Name": "Copy",
          "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"BucketName": {"Ref": "Site"}, "Extract": "true",
                            "ObjectKey": "#{BuildVariables.IMAGE_TAG}"},
          "InputArtifacts": [{"Name": "BuildOut"}]}]}]}}
  }
}"##;

/// `pipeline-local run` of `template` on the `source` folder, with `extra` arguments.
fn run_on(template: &Path, source: &Path, extra: &[&str]) -> (std::process::Output, String) {
    let mut args = vec![
        "--template",
        template.to_str().unwrap(),
        "--source",
        source.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The template with `buildspec` inline in the project.
fn build_template(dir: &Path, buildspec: &str) -> PathBuf {
    let path = dir.join("build.json");
    let quoted = serde_json::to_string(buildspec).unwrap();
    let text = BUILD_JSON.replace("\"BUILDSPEC\"", &quoted);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_codebuild_action_runs_its_buildspec_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(source.join("app")).unwrap();
    std::fs::write(source.join("app/version.txt"), "42").unwrap();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"build/secrets": {"token": "s3cret"}}"#).unwrap();
    let buildspec = "version: 0.2
env:
  variables: {GREETING: hello}
  secrets-manager: {TOKEN: 'build/secrets:token'}
  exported-variables: [IMAGE_TAG]
phases:
  install:
    commands: [mkdir -p dist, cd app]
  build:
    commands:
      - echo \"$GREETING $FROM_PROJECT $FROM_ACTION\" > ../dist/out.txt
      - export IMAGE_TAG=v$(cat version.txt)
      - test \"$TOKEN\" = s3cret
      - test -n \"$CODEBUILD_BUILD_ID\" && test -d \"$CODEBUILD_SRC_DIR\"
    finally:
      - echo finally ran
  post_build:
    commands: ['echo post $CODEBUILD_BUILD_SUCCEEDING']
artifacts:
  files: ['**/*']
  base-directory: dist
";
    let template = build_template(dir.path(), buildspec);
    let state = dir.path().join("state");
    let (out, text) = run_on(
        &template,
        &source,
        &[
            "--secrets",
            secrets.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{text}");
    let built = std::fs::read_to_string(state.join("s3/pipeline-local-site/v42/out.txt")).unwrap();
    assert_eq!(built.trim(), "hello project action");

    // A failing build: post_build still runs (not succeeding), and the run stops with its output.
    let failing = buildspec.replace(
        "      - test \"$TOKEN\" = s3cret\n",
        "      - echo about to fail; exit 3\n",
    );
    let template = build_template(dir.path(), &failing);
    let (out, text) = run_on(
        &template,
        &source,
        &["--secrets", secrets.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the build failed in build"), "{text}");
    assert!(
        text.contains("about to fail") && text.contains("finally ran") && text.contains("post 0"),
        "{text}"
    );
    // A Commands action: its commands, and OutputVariables as the action's variables.
    let commands = BUILD_JSON.replace(
        r#""ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild", "Version": "1"},"#,
        r#""ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "Commands", "Version": "1"},"#,
    )
    .replace(
        r#""Configuration": {"ProjectName": {"Ref": "WebBuild"},"#,
        r#""Configuration": {"Commands": ["mkdir -p out", "export IMAGE_TAG=c$(cat app/version.txt)"], "OutputVariables": ["IMAGE_TAG"],"#,
    )
    .replace(r#""OutputArtifacts": [{"Name": "BuildOut"}]"#, r#""OutputArtifacts": []"#)
    .replace(r#""InputArtifacts": [{"Name": "BuildOut"}]"#, r#""InputArtifacts": [{"Name": "Src"}]"#);
    let commands_template = dir.path().join("commands.json");
    std::fs::write(&commands_template, commands).unwrap();
    let (out, text) = run_on(
        &commands_template,
        &source,
        &["--state-dir", state.to_str().unwrap()],
    );
    assert!(out.status.success(), "{text}");
    assert!(
        state
            .join("s3/pipeline-local-site/c42/app/version.txt")
            .is_file(),
        "{text}"
    );

    // A secret the local Secrets Manager does not hold fails the action, naming it.
    let (out, text) = run_on(&template, &source, &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the secret build/secrets is not in the local Secrets Manager"),
        "{text}"
    );
}

/// The build template with a second output artifact, `Report`, copied to `site/report`, and a
/// project variable from the Parameter Store.
fn two_output_template(dir: &Path, buildspec: &str) -> PathBuf {
    let path = build_template(dir, buildspec);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            r#"[{"Name": "FROM_PROJECT", "Value": "project"}]"#,
            r#"[{"Name": "FROM_PROJECT", "Value": "project"},
                {"Name": "API_KEY", "Type": "PARAMETER_STORE", "Value": "/app/api-key"}]"#,
        )
        .replace(
            r#""OutputArtifacts": [{"Name": "BuildOut"}]"#,
            r#""OutputArtifacts": [{"Name": "BuildOut"}, {"Name": "Report"}]"#,
        )
        .replace(
            r#""InputArtifacts": [{"Name": "BuildOut"}]}]}]}}"#,
            r#""InputArtifacts": [{"Name": "BuildOut"}]},
          {"Name": "CopyReport",
           "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
           "Configuration": {"BucketName": {"Ref": "Site"}, "Extract": "true", "ObjectKey": "report"},
           "InputArtifacts": [{"Name": "Report"}]}]}]}}"#,
        );
    std::fs::write(&path, text).unwrap();
    path
}

/// A source folder with one file, and the Parameter Store file the builds read.
fn source_and_parameters(dir: &Path) -> (PathBuf, PathBuf) {
    let source = dir.join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("README.md"), "app").unwrap();
    let parameters = dir.join("parameters.json");
    std::fs::write(
        &parameters,
        r#"{"/app/db/host": "db.internal", "/app/api-key": {"Value": "key-123", "Type": "SecureString"}}"#,
    )
    .unwrap();
    (source, parameters)
}

const EVERY_FIELD: &str = "version: 0.2
env:
  variables: {GREETING: hello}
  parameter-store: {DB_HOST: /app/db/host}
  exported-variables: [IMAGE_TAG]
phases:
  install:
    on-failure: CONTINUE
    commands: [echo installing, 'false', echo not reached after the failure]
  pre_build:
    commands: [mkdir -p dist/deep/er reports]
  build:
    commands:
      - echo \"$GREETING $DB_HOST $API_KEY\" > dist/deep/er/conf.txt
      - echo '<testsuite/>' > reports/junit.xml
      - export IMAGE_TAG=v7
    finally: [echo build finally]
  post_build:
    commands: [echo post $CODEBUILD_BUILD_SUCCEEDING]
artifacts:
  files: ['**/*']
  base-directory: dist
  discard-paths: yes
  name: web-build
  secondary-artifacts:
    Report:
      files: ['reports/*.xml']
";

#[test]
fn a_buildspec_continues_past_a_phase_marked_continue_and_writes_both_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let (source, parameters) = source_and_parameters(dir.path());
    let template = two_output_template(dir.path(), EVERY_FIELD);
    let state = dir.path().join("state");
    let (out, text) = run_on(
        &template,
        &source,
        &[
            "--ssm-parameters",
            parameters.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
            "--verbose",
        ],
    );
    assert!(out.status.success(), "{text}");
    let site = state.join("s3/pipeline-local-site");
    // discard-paths: the file is at the artifact's root, its folders dropped.
    let conf = std::fs::read_to_string(site.join("v7/conf.txt")).unwrap();
    assert_eq!(conf.trim(), "hello db.internal key-123");
    assert!(!site.join("v7/deep").exists());
    // The secondary artifact keeps its paths and goes to its own output artifact.
    assert!(site.join("report/reports/junit.xml").is_file(), "{text}");
    assert!(!site.join("report/conf.txt").exists());
    assert!(text.contains("the buildspec's name web-build"), "{text}");
    // The install phase failed, was allowed to, and stopped at its failing command.
    assert!(
        text.contains("Phase complete: INSTALL State: FAILED"),
        "{text}"
    );
    assert!(!text.contains("not reached after the failure"), "{text}");
    assert!(
        text.contains("build finally") && text.contains("post 1"),
        "{text}"
    );
    // Each command is shown as written, quotes and `$` included, not expanded.
    assert!(
        text.contains(
            r#"Running command echo "$GREETING $DB_HOST $API_KEY" > dist/deep/er/conf.txt"#
        ) && text.contains("Running command echo '<testsuite/>' > reports/junit.xml"),
        "{text}"
    );
    // The SecureString's value is used, never shown in the call log or the output.
    assert!(!text.contains("key-123"), "{text}");
}

#[test]
fn a_phase_without_continue_aborts_the_build_there() {
    let dir = tempfile::tempdir().unwrap();
    let (source, parameters) = source_and_parameters(dir.path());
    let aborting = EVERY_FIELD.replace("on-failure: CONTINUE", "on-failure: ABORT");
    let template = two_output_template(dir.path(), &aborting);
    let state = dir.path().join("state");
    let (out, text) = run_on(
        &template,
        &source,
        &[
            "--ssm-parameters",
            parameters.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the build failed in install"), "{text}");
    // pre_build and build never ran; post_build ran, told the build is not succeeding.
    assert!(!text.contains("build finally"), "{text}");
    assert!(text.contains("post 0"), "{text}");
    assert!(!state.join("s3/pipeline-local-site").join("v7").exists());
}

#[test]
fn a_parameter_the_parameter_store_lacks_fails_the_build_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = source_and_parameters(dir.path());
    let template = two_output_template(dir.path(), EVERY_FIELD);
    let (out, text) = run_on(&template, &source, &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the parameter /app/api-key is not in the local Parameter Store (--ssm-parameters FILE)"),
        "{text}"
    );
}

#[test]
fn an_artifact_glob_that_matches_nothing_fails_the_action_naming_the_glob() {
    let dir = tempfile::tempdir().unwrap();
    let (source, parameters) = source_and_parameters(dir.path());
    let missing = EVERY_FIELD.replace("files: ['reports/*.xml']", "files: ['target/*.jar']");
    let template = two_output_template(dir.path(), &missing);
    let (out, text) = run_on(
        &template,
        &source,
        &["--ssm-parameters", parameters.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(r#"matches artifacts.files ["target/*.jar"]"#),
        "{text}"
    );
}

/// Runs a one-phase build of `commands` with a 2-second time limit; how it ended.
fn run_build_of(dir: &Path, buildspec: &str) -> (std::process::Output, String) {
    let (source, _) = source_and_parameters(dir);
    let template = build_template(dir, buildspec);
    run_on(&template, &source, &["--build-timeout", "2"])
}

#[test]
fn hostile_buildspecs_fail_clearly_and_touch_nothing_outside_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = run_build_of(
        dir.path(),
        "version: 0.2\nphases: [build: {commands: [x]}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("the buildspec is not YAML"), "{text}");

    let secret = dir.path().join("outside.txt");
    std::fs::write(&secret, "host file").unwrap();
    let escaping = format!(
        "version: 0.2\nphases: {{build: {{commands: [echo hi]}}}}\nartifacts:\n  files: ['../../../..{}']\n",
        secret.display()
    );
    let (out, text) = run_build_of(dir.path(), &escaping);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("`..` leaves the source folder"), "{text}");

    // A command that never ends is killed at the time limit, with what it left behind.
    let marker = dir.path().join("left-behind");
    let hanging = format!(
        "version: 0.2\nphases:\n  install:\n    commands: ['(sleep 4; touch {}) &']\n  build:\n    commands: [echo started, sleep 100000]\n",
        marker.display()
    );
    let started = std::time::Instant::now();
    let (out, text) = run_build_of(dir.path(), &hanging);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the build failed in build (its time limit, 2 s, ran out"),
        "{text}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    std::thread::sleep(std::time::Duration::from_secs(5));
    assert!(
        !marker.exists(),
        "a process the build left in the background outlived it"
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "host file");
}

#[test]
fn a_commands_action_zips_the_files_its_output_artifact_names() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = source_and_parameters(dir.path());
    let template = build_template(
        dir.path(),
        "version: 0.2\nphases: {build: {commands: [x]}}\n",
    );
    let text = std::fs::read_to_string(&template)
        .unwrap()
        .replace(
            r#""ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "CodeBuild", "Version": "1"},"#,
            r#""ActionTypeId": {"Category": "Build", "Owner": "AWS", "Provider": "Commands", "Version": "1"},"#,
        )
        .replace(
            r#""Configuration": {"ProjectName": {"Ref": "WebBuild"},"#,
            r#""Configuration": {"Commands": ["mkdir -p out/logs", "echo built > out/app.txt", "echo log > out/logs/x.log", "export IMAGE_TAG=cmd"], "OutputVariables": ["IMAGE_TAG"],"#,
        )
        .replace(
            r#""OutputArtifacts": [{"Name": "BuildOut"}]"#,
            r#""OutputArtifacts": [{"Name": "BuildOut", "Files": ["out/*.txt"]}]"#,
        );
    std::fs::write(&template, &text).unwrap();
    let state = dir.path().join("state");
    let (out, output) = run_on(
        &template,
        &source,
        &["--state-dir", state.to_str().unwrap()],
    );
    assert!(out.status.success(), "{output}");
    let site = state.join("s3/pipeline-local-site/cmd");
    assert_eq!(
        std::fs::read_to_string(site.join("out/app.txt"))
            .unwrap()
            .trim(),
        "built"
    );
    assert!(!site.join("out/logs/x.log").exists());

    // An output artifact without Files is a mistake named as such.
    std::fs::write(&template, text.replace(r#", "Files": ["out/*.txt"]"#, "")).unwrap();
    let (out, output) = run_on(&template, &source, &[]);
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(
        output.contains("the Commands action's output artifact BuildOut names no Files"),
        "{output}"
    );
}

#[test]
fn a_container_engine_this_machine_lacks_is_refused_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = source_and_parameters(dir.path());
    let template = build_template(
        dir.path(),
        "version: 0.2\nphases: {build: {commands: [echo hi]}}\n",
    );
    for engine in ["docker", "podman"] {
        let program_exists = std::process::Command::new(engine)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if program_exists {
            continue; // this machine can run containers: the refusal does not apply
        }
        let (out, text) = run_on(&template, &source, &["--container-engine", engine]);
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(
            text.contains(&format!(
                "--container-engine {engine}: `{engine}` is not on this machine"
            )) && text
                .contains("leave --container-engine out to run the build's commands on the host"),
            "{text}"
        );
    }
}

#[test]
fn a_build_with_two_inputs_reads_its_primary_source_and_the_other_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let (source, _) = source_and_parameters(dir.path());
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"build/secrets": {"token": "s3cret"}}"#).unwrap();
    let buildspec = "version: 0.2
env:
  exported-variables: [IMAGE_TAG]
phases:
  build:
    commands:
      - test \"$CODEBUILD_SRC_DIR\" = \"$(pwd)\"
      - test -f \"$CODEBUILD_SRC_DIR_Src/README.md\" && test -f README.md
      - test \"$(basename \"$CODEBUILD_SRC_DIR_Src\")\" = src_Src
      - test \"$TOKEN\" = s3cret
      - mkdir -p out && echo primary > out/which.txt && export IMAGE_TAG=two
artifacts:
  files: [out/which.txt]
";
    let template = build_template(dir.path(), buildspec);
    let text = std::fs::read_to_string(&template)
        .unwrap()
        .replace(
            r#""OutputArtifacts": [{"Name": "Src"}]}]},"#,
            r#""OutputArtifacts": [{"Name": "Src"}]},
          {"Name": "Other",
           "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
           "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
           "OutputArtifacts": [{"Name": "Other"}]}]},"#,
        )
        .replace(
            r#""EnvironmentVariables": "[{\"name\": \"FROM_ACTION\", \"value\": \"action\"}]"},"#,
            r#""PrimarySource": "Other",
               "EnvironmentVariables": "[{\"name\": \"TOKEN\", \"type\": \"SECRETS_MANAGER\", \"value\": \"build/secrets:token\"}]"},"#,
        )
        .replace(
            r#""InputArtifacts": [{"Name": "Src"}], "OutputArtifacts": [{"Name": "BuildOut"}]"#,
            r#""InputArtifacts": [{"Name": "Src"}, {"Name": "Other"}], "OutputArtifacts": [{"Name": "BuildOut"}]"#,
        );
    std::fs::write(&template, &text).unwrap();
    assert!(text.contains("PrimarySource"), "the template edit took");
    let state = dir.path().join("state");
    let (out, output) = run_on(
        &template,
        &source,
        &[
            "--secrets",
            secrets.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{output}");
    assert!(state
        .join("s3/pipeline-local-site/two/out/which.txt")
        .is_file());
}
