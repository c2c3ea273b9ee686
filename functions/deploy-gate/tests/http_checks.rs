//! The HTTP checks at the edges: redirects stay on the checked host unless the check opts in,
//! credentials and secret query values never reach messages or logs, a failed `contains`
//! quotes only a short printable excerpt.

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::{json, Value};
use std::time::Duration;

/// A service on 127.0.0.1 that redirects to its own `localhost` name (another host, to a
/// client) and to itself.
async fn service() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/elsewhere",
            get(move || async move {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, format!("http://localhost:{port}/health"))],
                )
            }),
        )
        .route(
            "/moved",
            get(|| async {
                (
                    StatusCode::MOVED_PERMANENTLY,
                    [(header::LOCATION, "/health")],
                )
            }),
        )
        .route(
            "/broken",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR.into_response() }),
        )
        .route(
            "/binary",
            get(|| async { (StatusCode::OK, [0u8, 1, 2, 0xff, 0xfe, b'x'].repeat(100)) }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://127.0.0.1:{port}")
}

async fn gate(check: Value) -> (pipeline_local::job_invocation::JobRun, String) {
    let function = LocalFunction::start(
        "deploy-gate",
        env!("CARGO_BIN_EXE_deploy-gate"),
        Duration::from_secs(30),
        &[("AWS_LAMBDA_LOG_LEVEL", "DEBUG")],
    )
    .await
    .expect("function host starts");
    let params = json!({"http": [check], "bake_seconds": 0});
    let run = function
        .run(JobEventBuilder::new("deploy-gate", &params).build())
        .await
        .expect("a job event");
    let logs = function.logs();
    (run, logs)
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed_by_default() {
    let base = service().await;
    let (run, _) = gate(json!({"url": format!("{base}/elsewhere"), "retries": 0})).await;
    let (_, message) = run.expect_failure();
    assert!(
        message.contains("redirects to http://localhost:") && message.contains("another host"),
        "{message}"
    );
}

#[tokio::test]
async fn a_redirect_to_another_host_is_followed_when_the_check_opts_in() {
    let base = service().await;
    let (run, _) =
        gate(json!({"url": format!("{base}/elsewhere"), "follow_redirects": "any"})).await;
    assert!(run.succeeded(), "{:?}", run.results());
}

#[tokio::test]
async fn a_redirect_on_the_same_host_is_followed_and_none_judges_the_3xx() {
    let base = service().await;
    let (run, _) = gate(json!({"url": format!("{base}/moved"), "contains": "ok"})).await;
    assert!(run.succeeded(), "{:?}", run.results());
    let (run, _) =
        gate(json!({"url": format!("{base}/moved"), "status": 301, "follow_redirects": "none"}))
            .await;
    assert!(run.succeeded(), "{:?}", run.results());
}

#[tokio::test]
async fn credentials_and_secret_query_values_never_reach_messages_or_logs() {
    let base = service().await;
    let url = base.replace("http://", "http://deployer:hunter2pass@")
        + "/broken?api_key=AKIAVERYSECRET&region=eu-west-1";
    let (run, logs) = gate(json!({"url": url, "retries": 1})).await;
    let (_, message) = run.expect_failure();
    for secret in ["hunter2pass", "AKIAVERYSECRET"] {
        assert!(!message.contains(secret), "{message}");
        assert!(!logs.contains(secret), "{logs}");
    }
    assert!(
        message.contains("region=eu-west-1") && message.contains("status 500"),
        "{message}"
    );
}

#[tokio::test]
async fn a_failed_contains_quotes_a_short_printable_excerpt() {
    let base = service().await;
    let (run, _) =
        gate(json!({"url": format!("{base}/binary"), "contains": "healthy", "retries": 0})).await;
    let (_, message) = run.expect_failure();
    let excerpt = message
        .split("body starts ")
        .nth(1)
        .and_then(|rest| rest.split("\")").next())
        .expect("an excerpt")
        .to_string();
    assert!(
        !excerpt.chars().any(|c| c.is_control() && c != '\n'),
        "{excerpt:?}"
    );
    assert!(excerpt.chars().count() < 120, "{excerpt}");
}
