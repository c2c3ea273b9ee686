//! `pipeline-local run` through its binary, on the repository's own template.yaml and
//! examples/demo, with every function binary (the README's test command builds them first).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{copy_folder, git, repository, run};

#[test]
fn runs_the_example_pipeline_end_to_end() {
    let (out, text) = run(&[]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("execution mode QUEUED: other runs on the same --state-dir are executions beside this one"),
        "{text}"
    );
    for stage in ["Source", "Process", "Plan", "Approve", "Migrate", "Deploy"] {
        assert!(
            text.contains(&format!("▶ {stage}\n")),
            "{stage} missing:\n{text}"
        );
        assert!(
            text.contains(&format!("  {stage}: SUCCEEDED")),
            "{stage} did not succeed:\n{text}"
        );
        assert!(
            text.contains(&format!(":white_check_mark: *{stage}*  SUCCEEDED")),
            "Slack misses {stage}:\n{text}"
        );
    }
    for action in [
        "Demo",
        "Package",
        "Publish",
        "Migrations",
        "ReleaseGate",
        "Apply",
        "Gate",
    ] {
        assert!(
            text.contains(&format!("✓ {action} SUCCEEDED")),
            "{action}:\n{text}"
        );
    }
    assert!(
        text.contains("Approved in Slack by local.approver (U0LOCALAPPROVER)"),
        "{text}"
    );
    // One conversation per execution: the approval is a reply in the execution's thread.
    let thread = text
        .split("↳ reply")
        .nth(1)
        .unwrap_or_else(|| panic!("no thread reply:\n{text}"));
    assert!(
        thread.contains("Approval needed: pipeline-local-ExamplePipeline")
            && thread.contains("*Approved* by <@U0LOCALAPPROVER>"),
        "the approval is in the execution's thread:\n{text}"
    );
    // …and shows what is being released: the execution and the earlier actions' results.
    assert!(
        thread.contains("*Earlier in this execution:*")
            && thread
                .contains(":white_check_mark: *Plan / Migrations*: Plan: 2 pending migrations"),
        "the approval shows the migration plan:\n{text}"
    );
    assert!(text.contains("Migrate.AppliedCount = 2"), "{text}");
    assert!(text.contains("Publish.FilesPublished = 4"), "{text}");
    assert!(
        text.contains("invocations (continuation tokens)"),
        "the bake continues:\n{text}"
    );
    // The approval's custom data got the earlier actions' output variables, the migration
    // plan's one-line summary with its lint tally among them.
    assert!(
        text.contains(". Migrations: 2 pending migrations ("),
        "{text}"
    );
    assert!(text.contains("lint: 0 errors"), "{text}");
    // The snapshot was taken (the SQLite file copied) and waited for before the migrations.
    assert!(
        text.contains("invocation 1: Taking snapshot `migrate-demo-db-"),
        "{text}"
    );
    assert!(
        text.contains("RDS snapshot migrate-demo-db-") && text.contains("database copied to"),
        "{text}"
    );
    assert!(
        text.contains("Migrate.SnapshotId = migrate-demo-db-"),
        "{text}"
    );
    assert!(
        text.contains("Pipeline pipeline-local-ExamplePipeline SUCCEEDED"),
        "{text}"
    );
}

#[test]
fn reject_ends_in_a_rejected_approval_and_a_failing_exit_status() {
    let (out, text) = run(&["--reject"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✗ ReleaseGate FAILED"), "{text}");
    assert!(text.contains("Rejected in Slack by local.approver (U0LOCALAPPROVER): Rejected from pipeline-local run --reject"), "{text}");
    assert!(
        !text.contains("▶ Deploy"),
        "nothing runs after a rejection:\n{text}"
    );
    // pipeline-notifier explained the rejection in the execution's thread.
    assert!(text.contains("↳ reply"), "{text}");
    assert!(
        text.contains(
            "*Approve / ReleaseGate* (approval) was rejected in Slack by <@U0LOCALAPPROVER>"
        ),
        "{text}"
    );
    assert!(
        text.contains("Pipeline pipeline-local-ExamplePipeline FAILED"),
        "{text}"
    );
}

fn psql(database: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "5432",
            "-U",
            "postgres",
            "-d",
            database,
            "-tAc",
            sql,
        ])
        .output()
        .expect("psql is installed with PostgreSQL");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn database_url_applies_the_demo_migrations_to_postgres() {
    let database = format!("run_demo_{}", std::process::id());
    psql("test", &format!("DROP DATABASE IF EXISTS {database}"));
    psql("test", &format!("CREATE DATABASE {database}"));
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");
    let (out, text) = run(&["--database-url", &url]);
    let applied = psql(&database, "SELECT string_agg(version::text, ',' ORDER BY version) FROM _sqlx_migrations WHERE success");
    let notes = psql(&database, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'releases' AND column_name = 'notes'");
    psql("test", &format!("DROP DATABASE {database}"));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("database postgres 127.0.0.1:5432/{database}")),
        "{text}"
    );
    assert_eq!(applied, "20260101000001,20260101000002");
    assert_eq!(notes, "1");
}

/// The example pipeline with a Device Farm test action pipeline-local cannot run.
fn template_with_unemulated_action(dir: &std::path::Path) -> std::path::PathBuf {
    edited_template(
        dir,
        &[(
            "          Actions:\n            - Name: Publish\n",
            "          Actions:\n            - Name: IntegrationTests\n              ActionTypeId: {Category: Test, Owner: AWS, Provider: DeviceFarm, Version: \"1\"}\n              Configuration: {ProjectId: web-tests}\n              InputArtifacts: [{Name: Source}]\n            - Name: Publish\n",
        )],
    )
}

#[test]
fn an_action_it_cannot_run_fails_the_run_instead_of_passing_silently() {
    let dir = tempfile::tempdir().unwrap();
    let path = template_with_unemulated_action(dir.path());
    let (out, text) = run(&["--template", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Test/AWS/DeviceFarm actions are not emulated by pipeline-local")
            && text.contains("pass `--skip Deploy.IntegrationTests` to run the rest without it"),
        "{text}"
    );
    assert!(text.contains("Deploy: FAILED"), "{text}");
}

#[test]
fn an_action_skipped_by_name_is_shown_skipped_and_the_rest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = template_with_unemulated_action(dir.path());
    let (out, text) = run(&[
        "--template",
        path.to_str().unwrap(),
        "--skip",
        "IntegrationTests",
    ]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("– IntegrationTests SKIPPED")
            && text.contains("skipped by `--skip IntegrationTests`"),
        "{text}"
    );
    assert!(
        text.contains("SKIPPED    Deploy         IntegrationTests"),
        "{text}"
    );
    let (out, text) = run(&["--skip", "NoSuchAction"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--skip NoSuchAction: the pipeline has no such action"),
        "{text}"
    );
}

#[test]
fn the_s3_deploy_action_deploys_into_the_local_bucket_for_real() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_template(
        dir.path(),
        &[(
            "          Actions:\n            - Name: Publish\n",
            "          Actions:\n            - Name: CopySite\n              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: S3, Version: \"1\"}\n              Configuration: {BucketName: !Ref ExampleSiteBucket, Extract: \"true\", ObjectKey: copy/, CacheControl: \"max-age=60\", CannedACL: public-read}\n              InputArtifacts: [{Name: Site}]\n            - Name: KeepZip\n              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: S3, Version: \"1\"}\n              Configuration: {BucketName: !Ref ExampleSiteBucket, Extract: \"false\", ObjectKey: releases/site.zip, KMSEncryptionKeyARN: \"arn:aws:kms:us-east-1:111111111111:alias/site\"}\n              InputArtifacts: [{Name: Site}]\n            - Name: Publish\n",
        )],
    );
    let state = dir.path().join("state");
    let (out, text) = run(&[
        "--template",
        path.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("CannedACL public-read checked"), "{text}");
    let bucket = state.join("s3/pipeline-local-examplesitebucket");
    let page = std::fs::read(bucket.join("copy/site/index.html")).unwrap();
    assert_eq!(
        page,
        std::fs::read(repository().join("examples/demo/site/index.html")).unwrap()
    );
    let zip = std::fs::read(bucket.join("releases/site.zip")).unwrap();
    assert!(zip.starts_with(b"PK"), "the artifact is stored whole");

    // A bad configuration fails the action, naming the key.
    let bad = edited_template(
        dir.path(),
        &[(
            "          Actions:\n            - Name: Publish\n",
            "          Actions:\n            - Name: CopySite\n              ActionTypeId: {Category: Deploy, Owner: AWS, Provider: S3, Version: \"1\"}\n              Configuration: {BucketName: !Ref ExampleSiteBucket, Extract: \"yes\"}\n              InputArtifacts: [{Name: Site}]\n            - Name: Publish\n",
        )],
    );
    let (out, text) = run(&["--template", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Extract must be true or false, not `yes`"),
        "{text}"
    );
}

#[test]
fn pipeline_variables_take_their_default_or_the_value_given_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = edited_template(
        dir.path(),
        &[
            (
                "      ExecutionMode: QUEUED\n",
                "      ExecutionMode: QUEUED\n      Variables:\n        - {Name: MaxAge, DefaultValue: \"300\"}\n",
            ),
            (
                "\"default_cache_control\": \"public, max-age=300\"",
                "\"default_cache_control\": \"public, max-age=#{variables.MaxAge}\"",
            ),
        ],
    );
    let cache_control = |args: &[&str]| {
        let state = tempfile::tempdir().unwrap();
        let mut all = vec![
            "--template",
            path.to_str().unwrap(),
            "--state-dir",
            state.path().to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        let (out, text) = run(&all);
        assert!(out.status.success(), "{text}");
        let s3 = pipeline_local::s3::LocalS3::new(
            &state.path().join("s3"),
            Default::default(),
            Default::default(),
            Default::default(),
        )
        .unwrap();
        s3.stored_headers(
            "pipeline-local-examplesitebucket",
            "live/site/assets/app.js",
        )
        .cache_control
    };
    assert_eq!(cache_control(&[]).as_deref(), Some("public, max-age=300"));
    assert_eq!(
        cache_control(&["--variable", "MaxAge=77"]).as_deref(),
        Some("public, max-age=77")
    );
    let (out, text) = run(&[
        "--template",
        path.to_str().unwrap(),
        "--variable",
        "Other=1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "--variable Other: the pipeline declares no such variable (it declares: MaxAge)"
        ),
        "{text}"
    );
}

/// A plain CloudFormation template in JSON (as `cdk synth` writes) with two pipelines, each
/// deploying the source into its own folder of one bucket.
const TWO_PIPELINES_JSON: &str = r#"{
  "AWSTemplateFormatVersion": "2010-09-09",
  "Resources": {
    "Artifacts": {"Type": "AWS::S3::Bucket"},
    "Site": {"Type": "AWS::S3::Bucket"},
    "First": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Deploy", "Actions": [{"Name": "Copy",
          "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"BucketName": {"Ref": "Site"}, "Extract": "true", "ObjectKey": "first"},
          "InputArtifacts": [{"Name": "Src"}]}]}]}},
    "Second": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Deploy", "Actions": [{"Name": "Copy",
          "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"BucketName": {"Ref": "Site"}, "Extract": "true",
                            "ObjectKey": {"Fn::Join": ["", ["sec", "ond"]]}},
          "InputArtifacts": [{"Name": "Src"}]}]}]}}
  }
}"#;

#[test]
fn a_json_template_with_two_pipelines_runs_the_one_chosen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdk.out.template.json");
    std::fs::write(&path, TWO_PIPELINES_JSON).unwrap();
    let template = path.to_str().unwrap();
    let (out, text) = run(&["--template", template]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(
            "declares 2 pipelines (First, Second): choose one with --pipeline LOGICAL_ID"
        ),
        "{text}"
    );
    let (out, text) = run(&["--template", template, "--pipeline", "Third"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("its pipelines: First, Second"), "{text}");

    let state = dir.path().join("state");
    let (out, text) = run(&[
        "--template",
        template,
        "--pipeline",
        "Second",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{text}");
    let site = state.join("s3/pipeline-local-site");
    assert!(site.join("second/site/index.html").is_file(), "{text}");
    assert!(!site.join("first").exists());
}

const GIT_PIPELINE_JSON: &str = r##"{
  "Resources": {
    "Artifacts": {"Type": "AWS::S3::Bucket"},
    "Site": {"Type": "AWS::S3::Bucket"},
    "Web": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source", "Namespace": "SourceVariables",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "CodeStarSourceConnection", "Version": "1"},
          "Configuration": {"ConnectionArn": "arn:aws:codeconnections:us-east-1:111111111111:connection/abc",
                            "FullRepositoryId": "acme/web", "BranchName": "main"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Deploy", "Actions": [{"Name": "Copy",
          "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"BucketName": {"Ref": "Site"}, "Extract": "true",
                            "ObjectKey": "#{SourceVariables.FullRepositoryName}/#{SourceVariables.CommitId}"},
          "InputArtifacts": [{"Name": "Src"}]}]}]}}
  }
}"##;

#[test]
fn a_git_source_delivers_the_committed_tree_at_the_branch_or_the_ref_given() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("web");
    std::fs::create_dir_all(repo.join("site")).unwrap();
    git(&repo, &["init", "--quiet"]);
    std::fs::write(repo.join("site/index.html"), "v1").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "First release"]);
    git(&repo, &["tag", "v1"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("site/index.html"), "v2").unwrap();
    git(
        &repo,
        &["commit", "--quiet", "-am", "Second release\n\nWith a body."],
    );
    let second = git(&repo, &["rev-parse", "HEAD"]);
    // Not committed: never delivered.
    std::fs::write(repo.join("site/draft.html"), "draft").unwrap();
    let template = dir.path().join("template.json");
    std::fs::write(&template, GIT_PIPELINE_JSON).unwrap();
    let state = dir.path().join("state");
    let args = |extra: &[&str]| {
        let mut all = vec![
            "--template".to_string(),
            template.to_str().unwrap().to_string(),
            "--repo".to_string(),
            repo.to_str().unwrap().to_string(),
            "--state-dir".to_string(),
            state.to_str().unwrap().to_string(),
        ];
        all.extend(extra.iter().map(|s| s.to_string()));
        all
    };
    let site = state.join("s3/pipeline-local-site/acme/web");

    let all = args(&[]);
    let (out, text) = run(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{text}");
    assert!(text.contains("\"Second release\""), "{text}");
    assert_eq!(
        std::fs::read_to_string(site.join(&second).join("site/index.html")).unwrap(),
        "v2"
    );
    assert!(!site.join(&second).join("site/draft.html").exists());
    assert!(!site.join(&second).join(".git").exists());

    let all = args(&["--ref", "v1"]);
    let (out, text) = run(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{text}");
    assert_eq!(
        std::fs::read_to_string(site.join(&first).join("site/index.html")).unwrap(),
        "v1"
    );

    // CODEBUILD_CLONE_REF: a clone, `.git` included, checked out at the commit.
    let clone = GIT_PIPELINE_JSON.replace(
        "\"BranchName\": \"main\"",
        "\"BranchName\": \"main\", \"OutputArtifactFormat\": \"CODEBUILD_CLONE_REF\"",
    );
    let clone_template = dir.path().join("clone.json");
    std::fs::write(&clone_template, clone).unwrap();
    let (out, text) = run(&[
        "--template",
        clone_template.to_str().unwrap(),
        "--repo",
        repo.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "--skip",
        "Copy",
    ]);
    assert!(out.status.success(), "{text}");
    let artifact = text
        .split("artifact Src → s3://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let zipped = std::fs::read(state.join("s3").join(artifact)).unwrap();
    let names: Vec<String> = pipeline_local::zips::unzip(zipped)
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(names.iter().any(|n| n == ".git/HEAD"), "{names:?}");
    assert!(names.iter().any(|n| n == "site/index.html"));

    // Triggers: a push of main that changed site/ starts it; a push of the tag v1 does not.
    let triggered = GIT_PIPELINE_JSON.replace(
        r#""PipelineType": "V2","#,
        r#""PipelineType": "V2", "Triggers": [{"ProviderType": "CodeStarSourceConnection",
            "GitConfiguration": {"SourceActionName": "Source",
              "Push": [{"Branches": {"Includes": ["main"]}, "FilePaths": {"Includes": ["site/**"]}}]}}],"#,
    );
    let triggered_template = dir.path().join("triggered.json");
    std::fs::write(&triggered_template, triggered).unwrap();
    let with_triggers = |extra: &[&str]| {
        let mut all = vec![
            "--template",
            triggered_template.to_str().unwrap(),
            "--repo",
            repo.to_str().unwrap(),
        ];
        all.extend_from_slice(extra);
        run(&all)
    };
    let (out, text) = with_triggers(&[]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(
            "trigger: a push of branch main (1 files changed) matches trigger 1, push filter 1"
        ),
        "{text}"
    );
    let (out, text) = with_triggers(&["--ref", "v1"]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("no trigger would start this execution after a push of tag v1: trigger 1, push filter 1: it filters branches and a tag is pushed"),
        "{text}"
    );

    let all = args(&["--ref", "no-such-branch"]);
    let (out, text) = run(&all.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("has no branch, tag or commit `no-such-branch`"),
        "{text}"
    );
}

const DEPLOYS_JSON: &str = r##"{
  "Resources": {
    "Artifacts": {"Type": "AWS::S3::Bucket"},
    "Site": {"Type": "AWS::S3::Bucket"},
    "Release": {"Type": "AWS::CodePipeline::Pipeline", "Properties": {
      "PipelineType": "V2", "ArtifactStore": {"Type": "S3", "Location": {"Ref": "Artifacts"}},
      "Stages": [
        {"Name": "Source", "Actions": [{"Name": "Source",
          "ActionTypeId": {"Category": "Source", "Owner": "AWS", "Provider": "S3", "Version": "1"},
          "Configuration": {"S3Bucket": {"Ref": "Artifacts"}, "S3ObjectKey": "source.zip"},
          "OutputArtifacts": [{"Name": "Src"}]}]},
        {"Name": "Deploy", "Actions": [
          {"Name": "Service", "RunOrder": 1,
           "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "ECS", "Version": "1"},
           "Configuration": {"ClusterName": "web", "ServiceName": "web"},
           "InputArtifacts": [{"Name": "Src"}]},
          {"Name": "Stack", "RunOrder": 1,
           "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "CloudFormation", "Version": "1"},
           "Configuration": {"ActionMode": "CREATE_UPDATE", "StackName": "web",
                             "TemplatePath": "Src::stack.yaml", "ParameterOverrides": "{\"Env\": \"prod\"}",
                             "OutputFileName": "outputs.json"},
           "InputArtifacts": [{"Name": "Src"}], "OutputArtifacts": [{"Name": "StackOut"}]},
          {"Name": "KeepOutputs", "RunOrder": 2,
           "ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "S3", "Version": "1"},
           "Configuration": {"BucketName": {"Ref": "Site"}, "Extract": "true", "ObjectKey": "stack"},
           "InputArtifacts": [{"Name": "StackOut"}]}]}]}}
  }
}"##;

#[test]
fn deploy_actions_it_cannot_perform_are_checked_and_count_only_when_assumed() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("imagedefinitions.json"),
        r#"[{"name": "web", "imageUri": "111111111111.dkr.ecr.us-east-1.amazonaws.com/web:abc"}]"#,
    )
    .unwrap();
    std::fs::write(
        source.join("stack.yaml"),
        "Parameters:\n  Env: {Type: String}\nResources:\n  Queue: {Type: AWS::SQS::Queue}\nOutputs:\n  Region: {Value: us-east-1}\n  QueueUrl: {Value: !Ref Queue}\n",
    )
    .unwrap();
    let template = dir.path().join("template.json");
    std::fs::write(&template, DEPLOYS_JSON).unwrap();
    let state = dir.path().join("state");
    let base = [
        "--template",
        template.to_str().unwrap(),
        "--source",
        source.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ];

    let (out, text) = run(&base);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NOT DEPLOYED (Deploy/AWS/ECS is not emulated by pipeline-local)")
            && text.contains("imagedefinitions.json: 1 containers")
            && text.contains("pass --assume-deployed"),
        "{text}"
    );

    let mut assumed = base.to_vec();
    assumed.push("--assume-deployed");
    let (out, text) = run(&assumed);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("counted as deployed by --assume-deployed"),
        "{text}"
    );
    let outputs: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state.join("s3/pipeline-local-site/stack/outputs.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(outputs["Region"], "us-east-1");
    assert!(outputs["QueueUrl"]
        .as_str()
        .unwrap()
        .contains("not deployed"));

    // A broken file fails the action even when deploys are assumed.
    std::fs::write(source.join("imagedefinitions.json"), r#"[{"name": "web"}]"#).unwrap();
    let (out, text) = run(&assumed);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Deploy/AWS/ECS would fail: imagedefinitions.json: entry 0 needs"),
        "{text}"
    );
    // A parameter the template does not declare, likewise.
    std::fs::write(
        source.join("imagedefinitions.json"),
        r#"[{"name": "web", "imageUri": "web:1"}]"#,
    )
    .unwrap();
    std::fs::write(
        source.join("stack.yaml"),
        "Resources:\n  Queue: {Type: AWS::SQS::Queue}\n",
    )
    .unwrap();
    let (out, text) = run(&assumed);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("ParameterOverrides sets Env, which Src::stack.yaml does not declare"),
        "{text}"
    );
}

#[test]
fn a_blue_green_ecs_deploy_reads_its_task_definition_and_appspec() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("imagedefinitions.json"), "[]").unwrap();
    std::fs::write(
        source.join("stack.yaml"),
        "Parameters:\n  Env: {Type: String}\nResources:\n  Queue: {Type: AWS::SQS::Queue}\n",
    )
    .unwrap();
    std::fs::write(
        source.join("taskdef.json"),
        r#"{"family": "web", "containerDefinitions": [{"name": "web", "image": "<IMAGE1_NAME>"}]}"#,
    )
    .unwrap();
    std::fs::write(
        source.join("appspec.yaml"),
        "version: 0.0\nResources:\n  - TargetService: {Type: AWS::ECS::Service}\n",
    )
    .unwrap();
    let blue_green = DEPLOYS_JSON.replace(
        r#""ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "ECS", "Version": "1"},
           "Configuration": {"ClusterName": "web", "ServiceName": "web"},"#,
        r#""ActionTypeId": {"Category": "Deploy", "Owner": "AWS", "Provider": "CodeDeployToECS", "Version": "1"},
           "Configuration": {"ApplicationName": "web", "DeploymentGroupName": "web-bg",
                             "TaskDefinitionTemplateArtifact": "Src", "AppSpecTemplateArtifact": "Src"},"#,
    );
    assert_ne!(blue_green, DEPLOYS_JSON);
    let template = dir.path().join("template.json");
    std::fs::write(&template, &blue_green).unwrap();
    let args = [
        "--template",
        template.to_str().unwrap(),
        "--source",
        source.to_str().unwrap(),
        "--assume-deployed",
    ];
    let (out, text) = run(&args);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("taskdef.json: a task definition")
            && text.contains("appspec.yaml: an AppSpec with Resources"),
        "{text}"
    );
    std::fs::write(source.join("appspec.yaml"), "version: 0.0\n").unwrap();
    let (out, text) = run(&args);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("Deploy/AWS/CodeDeployToECS would fail: appspec.yaml has no Resources"),
        "{text}"
    );
}

#[test]
fn a_missing_template_is_a_clear_error() {
    let (out, text) = run(&["--template", "nope.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text.contains("error: cannot read nope.yaml"), "{text}");
}

/// `examples/demo` copied, with `index.html` changed to say `note`.
fn demo_copy(dir: &Path, note: &str) -> PathBuf {
    let target = dir.join(note.replace(' ', "-"));
    copy_folder(&repository().join("examples/demo"), &target);
    let index = target.join("site/index.html");
    let page = std::fs::read_to_string(&index).unwrap();
    std::fs::write(&index, format!("{page}<!-- {note} -->\n")).unwrap();
    target
}

/// The approval reply of a run's Slack channel.
fn approval_reply(text: &str) -> &str {
    text.split("↳ reply")
        .find(|reply| reply.contains("Approval needed"))
        .unwrap_or_else(|| panic!("no approval reply:\n{text}"))
}

#[test]
fn approval_shows_the_changes_since_the_last_successful_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let runs = [
        ("release one", false),
        ("change two", true),
        ("fix three", false),
    ];
    let mut outputs = Vec::new();
    for (note, reject) in runs {
        let source = demo_copy(dir.path(), note);
        let mut args = vec![
            "--state-dir",
            state,
            "--source",
            source.to_str().unwrap(),
            "--revision-summary",
            note,
        ];
        if reject {
            args.push("--reject");
        }
        let (out, text) = run(&args);
        assert_eq!(out.status.success(), !reject, "{note}:\n{text}");
        outputs.push(text);
    }
    let first = approval_reply(&outputs[0]);
    assert!(
        first.contains("*No successful execution among the latest 1*"),
        "the first run has nothing to compare with:\n{first}"
    );
    let third = approval_reply(&outputs[2]);
    let since = third
        .split("*Since the last successful execution*")
        .nth(1)
        .unwrap_or_else(|| panic!("no changes section:\n{third}"));
    // The source changed from the first run's revision to this one's, and the rejected run in
    // between is listed with its own revision's message.
    assert!(
        since.contains("→") && since.contains("fix three"),
        "{since}"
    );
    assert!(
        since.contains("*Not released in between* (1):") && since.contains("Failed: `"),
        "{since}"
    );
    assert!(since.contains("change two"), "{since}");
    assert!(
        !since.contains("release one"),
        "the release itself is not a change:\n{since}"
    );

    // Run again on the same folder as the last release: no change.
    let same = dir.path().join("fix-three");
    let (out, text) = run(&["--state-dir", state, "--source", same.to_str().unwrap()]);
    assert!(out.status.success(), "{text}");
    assert!(
        approval_reply(&text).contains("*Demo*: no change (`"),
        "{text}"
    );
}

#[test]
fn runs_the_example_pipeline_over_https_with_tls() {
    let (out, text) = run(&["--tls"]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Pipeline pipeline-local-ExamplePipeline SUCCEEDED"),
        "{text}"
    );
    assert!(
        text.contains("*Approved* by <@U0LOCALAPPROVER>"),
        "Slack over HTTPS too:\n{text}"
    );
}

#[test]
fn fail_forces_an_actions_failure_and_the_thread_explains_it() {
    let (out, text) = run(&["--fail", "Process.Package"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✗ Package FAILED"), "{text}");
    assert!(
        text.contains("forced to fail by `--fail Process.Package`; the action did not run"),
        "{text}"
    );
    assert!(
        !text.contains("▶ Plan"),
        "nothing runs after the failed stage:\n{text}"
    );
    assert!(
        text.contains(":x: *Process / Package*") && text.contains("↳ reply"),
        "pipeline-notifier explains it in the execution's thread:\n{text}"
    );

    let (out, text) = run(&["--fail", "Packge"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--fail Packge: the pipeline has no such action")
            && text.contains("Process.Package"),
        "{text}"
    );
}

/// The rollback story of the README: a good release, then a broken one whose health page is
/// missing: the gate fails, Deploy (OnFailure: ROLLBACK) is rolled back in an execution of its
/// own with the good release's artifacts, and the site serves the good release again.
#[test]
fn a_broken_release_fails_the_gate_and_is_rolled_back_to_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let site = dir
        .path()
        .join("state/s3/pipeline-local-examplesitebucket/live/site");

    // No earlier success of Deploy: a failure there cannot be rolled back.
    let (out, text) = run(&["--state-dir", state, "--fail", "Deploy.Gate"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("nothing to roll back to"), "{text}");

    let (out, text) = run(&["--state-dir", state]);
    assert!(out.status.success(), "{text}");
    let good = std::fs::read_to_string(repository().join("examples/demo/site/index.html")).unwrap();
    assert_eq!(
        std::fs::read_to_string(site.join("index.html")).unwrap(),
        good
    );

    let (out, text) = run(&["--state-dir", state, "--source", "examples/demo-broken"]);
    assert_eq!(out.status.code(), Some(1), "the release failed:\n{text}");
    assert!(
        text.contains("✗ Gate FAILED") && text.contains("health.txt: status 404"),
        "{text}"
    );
    assert!(
        text.contains("↺ Rollback of stage Deploy (OnFailure: ROLLBACK)")
            && text.contains("type ROLLBACK, trigger AutomatedRollback"),
        "{text}"
    );
    assert!(text.contains("SUCCEEDED  ↺ Deploy       Publish"), "{text}");
    assert!(text.contains("SUCCEEDED  ↺ Deploy       Gate"), "{text}");
    assert!(
        text.contains("Pipeline pipeline-local-ExamplePipeline FAILED")
            && text.contains("Rollback execution ")
            && text.trim_end().ends_with("SUCCEEDED"),
        "{text}"
    );
    // The site serves the good release again, health page included.
    assert_eq!(
        std::fs::read_to_string(site.join("index.html")).unwrap(),
        good
    );
    assert_eq!(
        std::fs::read_to_string(site.join("health.txt")).unwrap(),
        "ok\n"
    );
    // pipeline-notifier: the rollback's own message, labelled, and a pointer to it in the
    // failed execution's thread.
    assert!(
        text.contains(":rewind: *Rollback* (automatic, after a stage failed) to execution <"),
        "{text}"
    );
    let failed_thread = text
        .split("↳ reply")
        .find(|reply| reply.contains("Rolled back automatically"))
        .unwrap_or_else(|| panic!("no pointer to the rollback:\n{text}"));
    assert!(failed_thread.contains(":rewind: *Rolled back automatically* by execution <"));
}

#[test]
fn a_second_run_on_a_state_folder_in_use_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    // Another process holds the folder (as a run in progress does).
    let holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.path().join(".pipeline-local.lock"))
        .unwrap();
    holder.try_lock().unwrap();
    let state = dir.path().to_str().unwrap();
    let (out, text) = run(&["--state-dir", state]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("another pipeline-local process is using the state folder"),
        "{text}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [".pipeline-local.lock"], "nothing written");
    drop(holder);
    let (out, text) = run(&["--state-dir", state]);
    assert!(out.status.success(), "free again:\n{text}");
}

/// template.yaml with `edits` applied (each `from` must be there), written to `dir`.
fn edited_template(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mut template = std::fs::read_to_string(repository().join("template.yaml")).unwrap();
    for (from, to) in edits {
        assert!(
            template.contains(from),
            "template.yaml no longer has {from:?}"
        );
        template = template.replace(from, to);
    }
    let path = dir.join("template.yaml");
    std::fs::write(&path, template).unwrap();
    path
}

#[test]
fn an_alarm_during_the_on_success_condition_rolls_the_stage_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    // The gate watches only the health page here, so the alarm is the OnSuccess rule's alone.
    let template = edited_template(
        dir.path(),
        &[(
            r#""alarms": ["${ExampleSiteErrorsAlarm}"], "#,
            r#""alarms": [], "#,
        )],
    );
    let template = template.to_str().unwrap();
    let (out, text) = run(&["--state-dir", state, "--template", template]);
    assert!(out.status.success(), "{text}");
    let (out, text) = run(&[
        "--state-dir",
        state,
        "--template",
        template,
        "--alarm",
        "pipeline-local-publish-errors=ALARM",
    ]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("✓ Gate SUCCEEDED"), "{text}");
    assert!(
        text.contains("NOT MET    Deploy         OnSuccess rule NoPublishErrors"),
        "{text}"
    );
    assert!(
        text.contains("✗ OnSuccess condition of Deploy, rule NoPublishErrors (CloudWatchAlarm): alarm pipeline-local-publish-errors is in ALARM"),
        "{text}"
    );
    assert!(
        text.contains("the stage fails on its OnSuccess condition (ROLLBACK)")
            && text.contains("↺ Rollback of stage Deploy"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("SUCCEEDED") && text.contains("Rollback execution "),
        "{text}"
    );
    // pipeline-notifier reads the rules back (ListRuleExecutions): the failed execution's
    // message says which rule failed the stage and what it found.
    assert!(
        text.contains(":x: *Deploy* · rule NoPublishErrors (CloudWatchAlarm) Failed: alarm pipeline-local-publish-errors is in ALARM"),
        "{text}"
    );
    assert!(
        text.contains(
            ":white_check_mark: *Deploy* · rule MigrationLintClean (VariableCheck) Succeeded"
        ),
        "{text}"
    );
}

#[test]
fn retry_reruns_only_the_failed_actions_and_unemulated_rules_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let template = edited_template(
        dir.path(),
        &[
            (
                "          OnFailure:\n            Result: ROLLBACK\n",
                "          OnFailure:\n            Result: RETRY\n            RetryConfiguration: {RetryMode: FAILED_ACTIONS}\n",
            ),
            (
                "                      AlarmName: !Ref ExampleSiteErrorsAlarm\n                      WaitTime: \"1\"\n",
                "                      AlarmName: !Ref ExampleSiteErrorsAlarm\n                      WaitTime: \"1\"\n                  - Name: AskTheOracle\n                    RuleTypeId: {Category: Rule, Owner: AWS, Provider: LambdaInvoke, Version: \"1\"}\n                    Configuration: {FunctionName: oracle}\n",
            ),
        ],
    );
    let template = template.to_str().unwrap();
    let (out, text) = run(&["--template", template, "--fail", "Deploy.Gate"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("↻ OnFailure: RETRY (FAILED_ACTIONS): attempt 2 of Deploy"),
        "{text}"
    );
    assert_eq!(text.matches("✓ Publish SUCCEEDED").count(), 1, "{text}");
    assert_eq!(text.matches("✗ Gate FAILED").count(), 2, "{text}");
    assert!(
        text.contains("FAILED     Deploy         Gate (attempt 2)"),
        "the timeline shows the retry:\n{text}"
    );
    assert!(!text.contains("↺ Rollback"), "{text}");

    // Passing, the LambdaInvoke rule is reported as not emulated, never as met.
    let (out, text) = run(&["--template", template]);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("⚠ OnSuccess condition of Deploy, rule AskTheOracle (LambdaInvoke): NOT EMULATED: LambdaInvoke rules"),
        "{text}"
    );
    assert!(
        text.contains("NOT EMULATED Deploy         OnSuccess rule AskTheOracle")
            && text.contains("MET        Deploy         OnSuccess rule NoPublishErrors"),
        "the timeline shows the conditions:\n{text}"
    );
    assert!(
        text.contains(":warning: *Deploy* · rule AskTheOracle (LambdaInvoke) Abandoned: NOT EMULATED: LambdaInvoke rules"),
        "pipeline-notifier's message tells the rule was not run:\n{text}"
    );

    // A BeforeEntry rule not met keeps the stage from being entered.
    let strict = edited_template(
        dir.path(),
        &[(
            "                      Value: \"0\"\n",
            "                      Value: \"7\"\n",
        )],
    );
    let (out, text) = run(&["--template", strict.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✗ BeforeEntry condition of Deploy, rule MigrationLintClean (VariableCheck)")
            && text.contains("the stage is not entered (FAIL)"),
        "{text}"
    );
    assert!(!text.contains("Publish SUCCEEDED"), "{text}");
}

/// `(start, took)` in seconds of a stage's action in the run's timeline.
fn timeline_entry(text: &str, stage: &str, action: &str) -> (f64, f64) {
    let timeline = text.split("\nTimeline\n").nth(1).expect("a timeline");
    let line = timeline
        .lines()
        .find(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            words.len() >= 8 && words[6] == stage && words[7] == action
        })
        .unwrap_or_else(|| panic!("{stage} {action} not in the timeline:\n{timeline}"));
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.trim_start_matches('+').parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

#[test]
fn actions_of_the_same_run_order_run_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let template = edited_template(
        dir.path(),
        &[(
            "              OutputArtifacts: [{Name: Site}, {Name: Release}]\n",
            "              OutputArtifacts: [{Name: Site}, {Name: Release}]\n            - Name: Lint\n              RunOrder: 1\n              ActionTypeId: {Category: Invoke, Owner: AWS, Provider: Lambda, Version: \"1\"}\n              Configuration:\n                FunctionName: !Ref MigrationRunnerFunction\n                UserParameters: !Sub '{\"database_secret_arn\": \"${DatabaseSecretArn}\", \"input\": \"Source\", \"path\": \"migrations\", \"mode\": \"plan\"}'\n              InputArtifacts: [{Name: Source}]\n",
        )],
    );
    let (out, text) = run(&["--template", template.to_str().unwrap()]);
    assert!(out.status.success(), "{text}");
    let (package_start, package_took) = timeline_entry(&text, "Process", "Package");
    let (lint_start, lint_took) = timeline_entry(&text, "Process", "Lint");
    // Each began before the other ended: they overlapped.
    assert!(lint_start < package_start + package_took, "{text}");
    assert!(package_start < lint_start + lint_took, "{text}");
    // RunOrder 2 (Publish in Deploy) still waits for RunOrder 1 of its stage.
    let (publish_start, publish_took) = timeline_entry(&text, "Deploy", "Publish");
    let (gate_start, _) = timeline_entry(&text, "Deploy", "Gate");
    assert!(gate_start >= publish_start + publish_took - 0.01, "{text}");
}
