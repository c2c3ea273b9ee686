//! Wire compatibility of the local endpoints with the official AWS CLI (awscli from PyPI,
//! pinned in tests/requirements.txt). The CLI must be installed: these tests fail, never skip,
//! when it is missing.

mod common;

use common::*;
use pipeline_local::endpoints::LocalAws;
use serde_json::{json, Value};
use std::process::Output;

fn run_cli(endpoint: &str, args: &[&str]) -> Output {
    aws_cli(endpoint).args(args).output().expect("aws runs")
}

fn ok(endpoint: &str, args: &[&str]) -> String {
    let out = run_cli(endpoint, args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn endpoints() -> LocalAws {
    let aws = LocalAws::start(None).await.unwrap();
    aws.register_credentials(TEST_KEY, TEST_SECRET);
    aws
}

#[tokio::test]
async fn aws_cli_s3_round_trips_small_and_multipart_objects() {
    let aws = endpoints().await;
    let url = aws.s3_url();
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("hello.txt");
    std::fs::write(&small, "hello from the aws cli\n").unwrap();
    let big = dir.path().join("big.bin");
    let big_data: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &big_data).unwrap();

    let url2 = url.clone();
    let (small_s, big_s) = (
        small.to_str().unwrap().to_string(),
        big.to_str().unwrap().to_string(),
    );
    let dir_path = dir.path().to_path_buf();
    let listing = tokio::task::spawn_blocking(move || {
        ok(&url2, &["s3", "mb", "s3://cli-bucket"]);
        ok(
            &url2,
            &["s3", "cp", &small_s, "s3://cli-bucket/dir/hello.txt"],
        );
        ok(&url2, &["s3", "cp", &big_s, "s3://cli-bucket/dir/big.bin"]);
        let listing = ok(&url2, &["s3", "ls", "s3://cli-bucket/dir/"]);
        let back = dir_path.join("back.bin");
        ok(
            &url2,
            &[
                "s3",
                "cp",
                "s3://cli-bucket/dir/big.bin",
                back.to_str().unwrap(),
            ],
        );
        assert_eq!(std::fs::read(&back).unwrap().len(), 20 * 1024 * 1024);
        let head = ok(
            &url2,
            &[
                "s3api",
                "head-object",
                "--bucket",
                "cli-bucket",
                "--key",
                "dir/hello.txt",
            ],
        );
        let head: Value = serde_json::from_str(&head).unwrap();
        assert_eq!(head["ContentLength"], 23);
        ok(&url2, &["s3", "rm", "s3://cli-bucket/dir/hello.txt"]);
        listing
    })
    .await
    .unwrap();
    assert!(
        listing.contains("hello.txt") && listing.contains("big.bin"),
        "{listing}"
    );
    assert_eq!(
        std::fs::read(aws.s3.object_path("cli-bucket", "dir/big.bin")).unwrap(),
        big_data
    );
    assert!(!aws.s3.exists("cli-bucket", "dir/hello.txt"));
    assert!(
        aws.calls.count("s3", "UploadPart") >= 2,
        "the 20 MiB upload used multipart"
    );
    assert!(aws.calls.count("s3", "CompleteMultipartUpload") == 1);
}

#[tokio::test]
async fn aws_cli_codepipeline_job_and_approval_calls() {
    let aws = endpoints().await;
    aws.codepipeline
        .register_job("job-1", "111111111111", json!({"inputArtifacts": []}));
    aws.codepipeline
        .register_job("job-2", "111111111111", json!({}));
    aws.codepipeline
        .register_approval("token-1", "demo", "Approve", "Manual");
    let url = aws.codepipeline_url();
    let outputs = tokio::task::spawn_blocking(move || {
        let details = ok(
            &url,
            &["codepipeline", "get-job-details", "--job-id", "job-1"],
        );
        ok(
            &url,
            &[
                "codepipeline",
                "put-job-success-result",
                "--job-id",
                "job-1",
                "--execution-details",
                "summary=done by cli,externalExecutionId=e-1,percentComplete=100",
                "--output-variables",
                "Version=42",
            ],
        );
        let again = run_cli(
            &url,
            &[
                "codepipeline",
                "put-job-success-result",
                "--job-id",
                "job-1",
            ],
        );
        let missing = run_cli(
            &url,
            &[
                "codepipeline",
                "put-job-failure-result",
                "--job-id",
                "nope",
                "--failure-details",
                "type=JobFailed,message=x",
            ],
        );
        ok(
            &url,
            &[
                "codepipeline",
                "put-job-failure-result",
                "--job-id",
                "job-2",
                "--failure-details",
                "type=ConfigurationError,message=bad config,externalExecutionId=e-2",
            ],
        );
        let approved = ok(
            &url,
            &[
                "codepipeline",
                "put-approval-result",
                "--pipeline-name",
                "demo",
                "--stage-name",
                "Approve",
                "--action-name",
                "Manual",
                "--token",
                "token-1",
                "--result",
                "summary=looks good,status=Approved",
            ],
        );
        let twice = run_cli(
            &url,
            &[
                "codepipeline",
                "put-approval-result",
                "--pipeline-name",
                "demo",
                "--stage-name",
                "Approve",
                "--action-name",
                "Manual",
                "--token",
                "token-1",
                "--result",
                "summary=again,status=Rejected",
            ],
        );
        (details, again, missing, approved, twice)
    })
    .await
    .unwrap();
    let (details, again, missing, approved, twice) = outputs;
    let details: Value = serde_json::from_str(&details).unwrap();
    assert_eq!(details["jobDetails"]["id"], "job-1");
    assert!(String::from_utf8_lossy(&again.stderr).contains("InvalidJobStateException"));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("JobNotFoundException"));
    assert!(
        serde_json::from_str::<Value>(&approved).unwrap()["approvedAt"].is_number()
            || approved.contains("approvedAt")
    );
    assert!(String::from_utf8_lossy(&twice.stderr).contains("ApprovalAlreadyCompletedException"));
    let job1 = aws.codepipeline.job("job-1").unwrap();
    assert_eq!(
        job1.results[0]["executionDetails"]["summary"],
        "done by cli"
    );
    assert_eq!(job1.results[0]["outputVariables"]["Version"], "42");
    assert_eq!(
        aws.codepipeline.job("job-2").unwrap().results[0]["failureDetails"]["type"],
        "ConfigurationError"
    );
    assert_eq!(
        aws.codepipeline.approval("token-1").unwrap().decision,
        Some(("Approved".into(), "looks good".into()))
    );
}

#[tokio::test]
async fn aws_cli_secretsmanager_get_secret_value() {
    let aws = endpoints().await;
    aws.secrets.put(
        "prod/slack",
        json!({"bot_token": "xoxb-1", "signing_secret": "s3cr3t"}),
    );
    let url = aws.secrets_url();
    let (found, missing) = tokio::task::spawn_blocking(move || {
        (
            ok(
                &url,
                &[
                    "secretsmanager",
                    "get-secret-value",
                    "--secret-id",
                    "prod/slack",
                ],
            ),
            run_cli(
                &url,
                &[
                    "secretsmanager",
                    "get-secret-value",
                    "--secret-id",
                    "absent",
                ],
            ),
        )
    })
    .await
    .unwrap();
    let found: Value = serde_json::from_str(&found).unwrap();
    let secret: Value = serde_json::from_str(found["SecretString"].as_str().unwrap()).unwrap();
    assert_eq!(secret["signing_secret"], "s3cr3t");
    assert_eq!(found["Name"], "prod/slack");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));
}

#[tokio::test]
async fn aws_cli_manages_and_reads_alarms_on_the_local_cloudwatch() {
    let aws = endpoints().await;
    let url = aws.cloudwatch_url();
    let described = tokio::task::spawn_blocking(move || {
        ok(
            &url,
            &[
                "cloudwatch",
                "put-metric-alarm",
                "--alarm-name",
                "HighErrorRate",
                "--namespace",
                "App",
                "--metric-name",
                "Errors",
                "--statistic",
                "Sum",
                "--period",
                "60",
                "--evaluation-periods",
                "1",
                "--threshold",
                "5",
                "--comparison-operator",
                "GreaterThanThreshold",
            ],
        );
        ok(
            &url,
            &[
                "cloudwatch",
                "set-alarm-state",
                "--alarm-name",
                "HighErrorRate",
                "--state-value",
                "ALARM",
                "--state-reason",
                "errors above 5",
            ],
        );
        let missing = run_cli(
            &url,
            &[
                "cloudwatch",
                "set-alarm-state",
                "--alarm-name",
                "Nope",
                "--state-value",
                "OK",
                "--state-reason",
                "x",
            ],
        );
        assert!(!missing.status.success());
        assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFound"));
        ok(
            &url,
            &[
                "cloudwatch",
                "describe-alarms",
                "--alarm-names",
                "HighErrorRate",
            ],
        )
    })
    .await
    .unwrap();
    let described: Value = serde_json::from_str(&described).unwrap();
    let alarm = &described["MetricAlarms"][0];
    assert_eq!(alarm["AlarmName"], "HighErrorRate");
    assert_eq!(alarm["StateValue"], "ALARM");
    assert_eq!(alarm["StateReason"], "errors above 5");
    assert_eq!(
        aws.cloudwatch.alarm("HighErrorRate").unwrap().state,
        "ALARM"
    );
}

// The CLI blocks its thread; the endpoints answer from the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_dynamodb_conditional_writes_and_updates() {
    let aws = endpoints().await;
    let url = aws.dynamodb_url();
    ok(
        &url,
        &[
            "dynamodb",
            "create-table",
            "--table-name",
            "executions",
            "--attribute-definitions",
            "AttributeName=pk,AttributeType=S",
            "--key-schema",
            "AttributeName=pk,KeyType=HASH",
            "--billing-mode",
            "PAY_PER_REQUEST",
        ],
    );
    let put = |condition: &str| {
        run_cli(
            &url,
            &[
                "dynamodb",
                "put-item",
                "--table-name",
                "executions",
                "--item",
                r#"{"pk": {"S": "execution#1"}, "version": {"N": "1"}}"#,
                "--condition-expression",
                condition,
            ],
        )
    };
    assert!(put("attribute_not_exists(pk)").status.success());
    let refused = put("attribute_not_exists(pk)");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("ConditionalCheckFailedException"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let updated: Value = serde_json::from_str(&ok(&url, &["dynamodb", "update-item", "--table-name", "executions",
        "--key", r#"{"pk": {"S": "execution#1"}}"#,
        "--update-expression", "SET #v = #v + :one, ts = :ts ADD replied :keys",
        "--condition-expression", "#v = :current",
        "--expression-attribute-names", r##"{"#v": "version"}"##,
        "--expression-attribute-values", r#"{":one": {"N": "1"}, ":current": {"N": "1"}, ":ts": {"S": "17.01"}, ":keys": {"SS": ["Build/Compile#1"]}}"#,
        "--return-values", "ALL_NEW"])).unwrap();
    assert_eq!(updated["Attributes"]["version"], json!({"N": "2"}));
    assert_eq!(
        updated["Attributes"]["replied"],
        json!({"SS": ["Build/Compile#1"]})
    );
    let item: Value = serde_json::from_str(&ok(
        &url,
        &[
            "dynamodb",
            "get-item",
            "--table-name",
            "executions",
            "--key",
            r#"{"pk": {"S": "execution#1"}}"#,
            "--consistent-read",
        ],
    ))
    .unwrap();
    assert_eq!(item["Item"]["ts"], json!({"S": "17.01"}));
    let missing = run_cli(
        &url,
        &[
            "dynamodb",
            "get-item",
            "--table-name",
            "nope",
            "--key",
            r#"{"pk": {"S": "x"}}"#,
        ],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ResourceNotFoundException"));
}

// The CLI blocks its thread; the endpoints answer from the other worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_cli_reads_pipeline_executions_and_action_executions() {
    let aws = endpoints().await;
    aws.codepipeline
        .register_execution(json!({"pipelineName": "web", "pipelineExecutionId": "e-1",
        "status": "Succeeded", "artifactRevisions": [{"name": "Source", "revisionId": "abc123"}]}));
    aws.codepipeline.register_action_executions("web", "e-1", vec![json!({"pipelineExecutionId": "e-1",
        "stageName": "Build", "actionName": "Compile", "status": "Failed", "startTime": 1_795_255_500.0,
        "output": {"executionResult": {"errorDetails": {"code": "JobFailed", "message": "exit 2"}}}})]);
    let url = aws.codepipeline_url();
    let execution: Value = serde_json::from_str(&ok(
        &url,
        &[
            "codepipeline",
            "get-pipeline-execution",
            "--pipeline-name",
            "web",
            "--pipeline-execution-id",
            "e-1",
        ],
    ))
    .unwrap();
    assert_eq!(
        execution["pipelineExecution"]["artifactRevisions"][0]["revisionId"],
        "abc123"
    );
    let actions: Value = serde_json::from_str(&ok(
        &url,
        &[
            "codepipeline",
            "list-action-executions",
            "--pipeline-name",
            "web",
            "--filter",
            "pipelineExecutionId=e-1",
        ],
    ))
    .unwrap();
    assert_eq!(
        actions["actionExecutionDetails"][0]["output"]["executionResult"]["errorDetails"]
            ["message"],
        "exit 2"
    );
    let missing = run_cli(
        &url,
        &[
            "codepipeline",
            "get-pipeline-execution",
            "--pipeline-name",
            "web",
            "--pipeline-execution-id",
            "e-2",
        ],
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("PipelineExecutionNotFoundException"));
}

#[tokio::test]
async fn aws_cli_assumes_a_declared_role_and_the_local_s3_records_who_wrote() {
    let aws = endpoints().await;
    let role = "arn:aws:iam::222222222222:role/pipeline-publish";
    aws.sts.add_role(role, Some("tooling-123")).unwrap();
    aws.s3.create_bucket("prod-site").unwrap();
    let (sts, s3) = (aws.sts_url(), aws.s3_url());
    let (credentials, denied, identity) = tokio::task::spawn_blocking(move || {
        let denied = run_cli(
            &sts,
            &[
                "sts",
                "assume-role",
                "--role-arn",
                role,
                "--role-session-name",
                "pipeline-abc",
            ],
        );
        let assumed: Value = serde_json::from_str(&ok(
            &sts,
            &[
                "sts",
                "assume-role",
                "--role-arn",
                role,
                "--role-session-name",
                "pipeline-abc",
                "--external-id",
                "tooling-123",
                "--duration-seconds",
                "900",
            ],
        ))
        .unwrap();
        let c = assumed["Credentials"].clone();
        let as_role = |endpoint: &str, args: &[&str]| {
            let out = aws_cli(endpoint)
                .env("AWS_ACCESS_KEY_ID", c["AccessKeyId"].as_str().unwrap())
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    c["SecretAccessKey"].as_str().unwrap(),
                )
                .env("AWS_SESSION_TOKEN", c["SessionToken"].as_str().unwrap())
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let identity: Value =
            serde_json::from_str(&as_role(&sts, &["sts", "get-caller-identity"])).unwrap();
        as_role(
            &s3,
            &[
                "s3api",
                "put-object",
                "--bucket",
                "prod-site",
                "--key",
                "index.html",
            ],
        );
        (c, denied, identity)
    })
    .await
    .unwrap();
    assert!(!denied.status.success());
    let message = String::from_utf8_lossy(&denied.stderr);
    assert!(
        message.contains("AccessDenied") && message.contains(role),
        "{message}"
    );
    assert_eq!(identity["Account"], "222222222222");
    assert_eq!(
        identity["Arn"],
        "arn:aws:sts::222222222222:assumed-role/pipeline-publish/pipeline-abc"
    );
    // The object was written with the role's credentials, and the log says so.
    let put = aws
        .calls
        .of("s3", "PutObject")
        .into_iter()
        .find(|c| c.detail["key"] == "index.html")
        .unwrap();
    let key = put.access_key.unwrap();
    assert_eq!(key, credentials["AccessKeyId"].as_str().unwrap());
    assert_eq!(aws.sts.session_of(&key).unwrap().role_arn, role);
    // The external id never reaches the call log.
    let logged = serde_json::to_string(&aws.calls.of("sts", "AssumeRole")).unwrap();
    assert!(!logged.contains("tooling-123"), "{logged}");
}

#[tokio::test]
async fn aws_cli_puts_and_reads_parameters_on_the_local_parameter_store() {
    let aws = endpoints().await;
    aws.ssm.put("/app/db/password", "hunter2", "SecureString");
    let url = aws.ssm_url();
    let (put, again, overwrite, one, encrypted, by_path, many, missing) =
        tokio::task::spawn_blocking(move || {
            let put = [
                "ssm",
                "put-parameter",
                "--name",
                "/app/db/host",
                "--value",
                "db.internal",
                "--type",
                "String",
            ];
            (
                ok(&url, &put),
                run_cli(&url, &put),
                ok(&url, &[&put[..], &["--overwrite"]].concat()),
                ok(
                    &url,
                    &[
                        "ssm",
                        "get-parameter",
                        "--name",
                        "/app/db/password",
                        "--with-decryption",
                    ],
                ),
                ok(
                    &url,
                    &["ssm", "get-parameter", "--name", "/app/db/password"],
                ),
                ok(
                    &url,
                    &[
                        "ssm",
                        "get-parameters-by-path",
                        "--path",
                        "/app",
                        "--recursive",
                        "--with-decryption",
                    ],
                ),
                ok(
                    &url,
                    &["ssm", "get-parameters", "--names", "/app/db/host", "/nope"],
                ),
                run_cli(&url, &["ssm", "get-parameter", "--name", "/nope"]),
            )
        })
        .await
        .unwrap();
    let version = |text: &str| serde_json::from_str::<Value>(text).unwrap()["Version"].clone();
    assert_eq!(version(&put), 1);
    assert!(String::from_utf8_lossy(&again.stderr).contains("ParameterAlreadyExists"));
    assert_eq!(version(&overwrite), 2);
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["Parameter"]["Value"], "hunter2");
    assert_eq!(
        one["Parameter"]["ARN"],
        "arn:aws:ssm:us-east-1:000000000000:parameter/app/db/password"
    );
    let encrypted: Value = serde_json::from_str(&encrypted).unwrap();
    assert_ne!(encrypted["Parameter"]["Value"], "hunter2");
    let by_path: Value = serde_json::from_str(&by_path).unwrap();
    assert_eq!(by_path["Parameters"].as_array().unwrap().len(), 2);
    let many: Value = serde_json::from_str(&many).unwrap();
    assert_eq!(many["Parameters"][0]["Value"], "db.internal");
    assert_eq!(many["InvalidParameters"], json!(["/nope"]));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("ParameterNotFound"));
    // The call log holds names, never a value.
    let logged = serde_json::to_string(&aws.calls.of("ssm", "PutParameter")).unwrap();
    assert!(
        logged.contains("/app/db/host") && !logged.contains("db.internal"),
        "{logged}"
    );
}
