//! Over HTTPS, as on Lambda (`--tls`): the endpoints serve a certificate from a CA made for the
//! run; a function that trusts it (SSL_CERT_FILE) reads its artifact and reports, one that
//! does not cannot report at all, and plain HTTP gets no answer. The AWS CLI (botocore, an
//! independent TLS stack) trusts it through AWS_CA_BUNDLE.

mod common;

use common::*;
use pipeline_local::endpoints::LocalAws;
use pipeline_local::job_invocation::run_job;
use pipeline_local::runtime_api::{FunctionHost, FunctionSpec, Outcome};
use pipeline_local::tls::LocalTls;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn https_endpoints() -> LocalAws {
    let tls = Arc::new(LocalTls::generate().expect("a certificate"));
    let aws = LocalAws::start_with(None, Some(tls)).await.unwrap();
    aws.register_credentials(TEST_KEY, TEST_SECRET);
    aws.s3.create_bucket(BUCKET).unwrap();
    aws
}

async fn fixture(aws: &LocalAws, trusts_the_ca: bool) -> FunctionHost {
    let mut spec = FunctionSpec::new("fixture-action", env!("CARGO_BIN_EXE_fixture-action"));
    spec.env = aws
        .function_env()
        .into_iter()
        .filter(|(name, _)| trusts_the_ca || !name.ends_with("_BUNDLE") && name != "SSL_CERT_FILE")
        .collect();
    spec.timeout = Duration::from_secs(20);
    FunctionHost::start(spec).await.unwrap()
}

#[tokio::test]
async fn a_function_trusting_the_runs_ca_reads_and_reports_over_https() {
    let aws = https_endpoints().await;
    assert!(aws.codepipeline_url().starts_with("https://127.0.0.1:"));
    assert!(aws.s3_url().starts_with("https://127.0.0.1:"));
    let host = fixture(&aws, true).await;
    let event = copy_event();
    aws.s3
        .put_file(
            BUCKET,
            &input_key(&event),
            &zip_with(&[("a.txt", b"over tls")]),
        )
        .unwrap();
    let run = run_job(&aws, &host, event.clone(), 10).await.unwrap();
    assert!(
        run.succeeded(),
        "{:?}\n{}",
        run.record,
        host.logs().join("\n")
    );
    assert!(aws.s3.exists(BUCKET, &output_key(&event)));
    assert!(
        aws.calls.count("s3", "GetObject") > 0,
        "the artifact was read over HTTPS"
    );
}

#[tokio::test]
async fn a_function_that_does_not_trust_the_ca_cannot_report() {
    let aws = https_endpoints().await;
    let host = fixture(&aws, false).await;
    let run = run_job(
        &aws,
        &host,
        job_event(serde_json::json!({"succeed": {}})),
        10,
    )
    .await
    .unwrap();
    assert!(
        run.results().is_empty(),
        "a certificate from an unknown CA must be refused"
    );
    assert!(
        matches!(run.invocations[0].outcome, Outcome::Error { .. }),
        "{:?}",
        run.invocations[0].outcome
    );
    assert_eq!(
        aws.calls.count("codepipeline", "PutJobSuccessResult"),
        0,
        "no request got through the handshake"
    );
}

#[tokio::test]
async fn plain_http_to_an_https_endpoint_gets_no_http_answer() {
    let aws = https_endpoints().await;
    let address = aws.codepipeline_url().replace("https://", "");
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        aws.calls.all().is_empty(),
        "the request never reached the service"
    );
}

#[tokio::test]
async fn the_aws_cli_trusts_the_endpoints_through_aws_ca_bundle() {
    let aws = https_endpoints().await;
    aws.codepipeline
        .register_job("job-tls", "111111111111", serde_json::json!({}));
    let url = aws.codepipeline_url();
    let bundle = aws.tls().unwrap().bundle().to_path_buf();
    let call = move |bundle: Option<&std::path::Path>| {
        let mut command = aws_cli(&url);
        command
            .args(["codepipeline", "get-job-details", "--job-id", "job-tls"])
            .env("AWS_MAX_ATTEMPTS", "1")
            .env_remove("AWS_CA_BUNDLE");
        if let Some(bundle) = bundle {
            command.env("AWS_CA_BUNDLE", bundle);
        }
        command.output().expect("the AWS CLI runs")
    };
    let (trusted, untrusted) =
        tokio::task::spawn_blocking(move || (call(Some(&bundle)), call(None)))
            .await
            .unwrap();
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("111111111111"));
    let refused = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success());
    assert!(
        refused.contains("SSL") || refused.contains("certificate"),
        "{refused}"
    );
}
