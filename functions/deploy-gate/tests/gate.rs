//! deploy-gate end to end: the binary behind the Runtime API host, CodePipeline and CloudWatch
//! (rpc-v2-cbor, driven here with the real SDK) on loopback, and a local HTTP service whose
//! health the tests control.

use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use pipeline_local::job_invocation::JobRun;
use pipeline_local::runtime_api::Outcome;
use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A service whose `/health` answers 200 "ok" for its first `healthy_for` requests, then 503.
#[derive(Clone)]
struct Service {
    hits: Arc<AtomicU32>,
    healthy_for: u32,
}

async fn health(State(service): State<Service>) -> (StatusCode, &'static str) {
    let n = service.hits.fetch_add(1, Ordering::SeqCst);
    if n < service.healthy_for {
        (StatusCode::OK, "{\"status\":\"ok\"}")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "{\"status\":\"draining\"}")
    }
}

async fn hang() -> &'static str {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    "never"
}

/// Starts the service; returns its base URL and hit counter.
async fn service(healthy_for: u32) -> (String, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new()
        .route("/health", get(health))
        .route("/hang", get(hang))
        .with_state(Service {
            hits: hits.clone(),
            healthy_for,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

struct Gate {
    function: LocalFunction,
    cloudwatch: aws_sdk_cloudwatch::Client,
}

async fn gate(timeout: Duration) -> Gate {
    let function = LocalFunction::start(
        "deploy-gate",
        env!("CARGO_BIN_EXE_deploy-gate"),
        timeout,
        &[],
    )
    .await
    .expect("function host starts");
    let config = aws_sdk_cloudwatch::config::Builder::new()
        .behavior_version(aws_sdk_cloudwatch::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudwatch::config::Region::new("us-east-1"))
        .endpoint_url(function.aws.cloudwatch_url())
        .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .http_client(pipeline_ext::https::sdk_http_client())
        .build();
    Gate {
        function,
        cloudwatch: aws_sdk_cloudwatch::Client::from_conf(config),
    }
}

impl Gate {
    async fn alarm(&self, name: &str, state: StateValue) {
        self.cloudwatch
            .put_metric_alarm()
            .alarm_name(name)
            .namespace("App")
            .metric_name("Errors")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .expect("PutMetricAlarm");
        self.set_state(name, state).await;
    }

    async fn set_state(&self, name: &str, state: StateValue) {
        self.cloudwatch
            .set_alarm_state()
            .alarm_name(name)
            .state_value(state)
            .state_reason("set by the test")
            .send()
            .await
            .expect("SetAlarmState");
    }

    async fn run(&self, params: Value) -> JobRun {
        let event = JobEventBuilder::new("deploy-gate", &params).build();
        self.function.run(event).await.expect("a job event")
    }
}

fn results(run: &JobRun) -> &[Value] {
    &run.record.as_ref().expect("a job record").results
}

fn final_failure(run: &JobRun) -> (String, String) {
    run.expect_failure()
}

fn continuations(run: &JobRun) -> usize {
    results(run)
        .iter()
        .filter(|r| r.get("continuationToken").is_some())
        .count()
}

#[tokio::test]
async fn passes_after_baking_through_continuations_when_all_is_healthy() {
    let gate = gate(Duration::from_secs(30)).await;
    let (url, hits) = service(u32::MAX).await;
    gate.alarm("HighErrorRate", StateValue::Ok).await;
    let run = gate
        .run(json!({
            "http": [{"url": format!("{url}/health"), "status": 200, "contains": "ok", "timeout_ms": 2000}],
            "alarms": ["HighErrorRate"], "bake_seconds": 3, "interval_seconds": 1
        }))
        .await;
    assert!(run.succeeded(), "{:?}", results(&run));
    assert!(continuations(&run) >= 3, "{:?}", results(&run));
    let last = results(&run).last().unwrap();
    assert_eq!(last["outputVariables"]["ChecksPassed"], "2");
    let baked: u64 = last["outputVariables"]["BakeSeconds"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(baked >= 3, "baked {baked} s");
    let summary = last["executionDetails"]["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("GET {url}/health passed")),
        "{summary}"
    );
    assert!(
        summary.contains("alarm HighErrorRate passed: OK"),
        "{summary}"
    );
    assert!(hits.load(Ordering::SeqCst) >= 4);
    // Each continuation reports progress.
    let first = &results(&run)[0];
    assert!(
        first["executionDetails"]["percentComplete"].is_number(),
        "{first}"
    );
    // No invocation waited longer than about one interval.
    for invocation in &run.invocations {
        assert!(invocation.duration_ms() < 5_000.0, "{invocation:?}");
    }
}

#[tokio::test]
async fn fails_naming_the_url_when_an_endpoint_turns_unhealthy_mid_bake() {
    let gate = gate(Duration::from_secs(30)).await;
    let (url, _) = service(2).await;
    let run = gate
        .run(json!({
            "http": [{"url": format!("{url}/health"), "contains": "ok", "retries": 1}],
            "bake_seconds": 60, "interval_seconds": 1
        }))
        .await;
    let (kind, message) = final_failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains(&format!("GET {url}/health")), "{message}");
    assert!(
        message.contains("status 503, expected 200 (2 attempts)"),
        "{message}"
    );
    // Two healthy rounds, then the third sees 503 twice.
    assert!(message.contains("round 3"), "{message}");
    assert_eq!(continuations(&run), 2);
}

#[tokio::test]
async fn fails_naming_the_alarm_that_goes_into_alarm_mid_bake() {
    let gate = Arc::new(gate(Duration::from_secs(30)).await);
    let (url, hits) = service(u32::MAX).await;
    gate.alarm("HighLatency", StateValue::Ok).await;
    let flipper = {
        let gate = gate.clone();
        tokio::spawn(async move {
            while hits.load(Ordering::SeqCst) < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            gate.set_state("HighLatency", StateValue::Alarm).await;
        })
    };
    let run = gate
        .run(json!({
            "http": [{"url": format!("{url}/health")}],
            "alarms": ["HighLatency"], "bake_seconds": 60, "interval_seconds": 1
        }))
        .await;
    flipper.await.unwrap();
    let (kind, message) = final_failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("alarm HighLatency: in ALARM: set by the test"),
        "{message}"
    );
    assert!(continuations(&run) >= 1);
}

#[tokio::test]
async fn insufficient_data_passes_by_default_and_fails_when_configured() {
    let gate = gate(Duration::from_secs(30)).await;
    gate.alarm("NewService", StateValue::InsufficientData).await;
    let run = gate.run(json!({"alarms": ["NewService"]})).await;
    assert!(run.succeeded(), "{:?}", results(&run));
    let run = gate
        .run(json!({"alarms": ["NewService"], "insufficient_data": "fail"}))
        .await;
    let (_, message) = final_failure(&run);
    assert!(
        message.contains("alarm NewService: INSUFFICIENT_DATA"),
        "{message}"
    );
}

#[tokio::test]
async fn a_hanging_endpoint_fails_at_its_timeout_and_the_job_is_reported_in_time() {
    // 10 s Lambda timeout: the runner keeps 5 s back, so the checks get about 5 s.
    let gate = gate(Duration::from_secs(10)).await;
    let (url, _) = service(u32::MAX).await;
    let run = gate
        .run(json!({"http": [
            {"url": format!("{url}/hang"), "timeout_ms": 1000, "retries": 1},
            {"url": format!("{url}/hang?slow"), "timeout_ms": 4000, "retries": 3}
        ]}))
        .await;
    let (kind, message) = final_failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains(&format!(
            "GET {url}/hang: timed out after 1000 ms (2 attempts)"
        )),
        "{message}"
    );
    // The slow check was cut short by the invocation's deadline, not by the endpoint.
    assert!(
        message.contains(&format!(
            "GET {url}/hang?slow: not answered when the invocation's time ran out"
        )),
        "{message}"
    );
    let invocation = run.invocations.last().unwrap();
    assert!(
        matches!(invocation.outcome, Outcome::Response { .. }),
        "the function must answer before its deadline: {invocation:?}"
    );
}

#[tokio::test]
async fn bad_configuration_is_a_configuration_error() {
    let gate = gate(Duration::from_secs(30)).await;
    gate.alarm("Known", StateValue::Ok).await;
    let cases = [
        (
            json!({"http": [{"url": "http://127.0.0.1:9/"}], "bake_secs": 10}),
            "unknown field `bake_secs`",
        ),
        (json!({"http": [{"status": 200}]}), "missing field `url`"),
        (
            json!({"http": [{"url": "localhost/health"}]}),
            "is not a URL",
        ),
        (
            json!({"alarms": ["Known", "NoSuchAlarm"]}),
            "no CloudWatch alarm named `NoSuchAlarm`",
        ),
        (json!({}), "nothing to check"),
    ];
    for (params, needle) in cases {
        let run = gate.run(params.clone()).await;
        let (kind, message) = final_failure(&run);
        assert_eq!(kind, "ConfigurationError", "{params}: {message}");
        assert!(message.contains(needle), "{params}: {message}");
    }
}

/// Serves the healthy service over HTTPS with a CA made for the test; returns the base URL and
/// the CA (its `trust_env` trusts it).
async fn https_service() -> (String, pipeline_local::tls::LocalTls) {
    let tls = pipeline_local::tls::LocalTls::generate().expect("a CA");
    let app = axum::Router::new().route("/health", get(|| async { "{\"status\":\"ok\"}" }));
    let (addr, _task) = pipeline_local::tls::serve(app, Some(&tls))
        .await
        .expect("HTTPS service");
    (format!("https://127.0.0.1:{}", addr.port()), tls)
}

#[tokio::test]
async fn smoke_checks_over_https_pass_when_the_certificate_is_trusted() {
    let (url, tls) = https_service().await;
    let trust = tls.trust_env();
    let env: Vec<(&str, &str)> = trust
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let function = LocalFunction::start(
        "deploy-gate",
        env!("CARGO_BIN_EXE_deploy-gate"),
        Duration::from_secs(30),
        &env,
    )
    .await
    .expect("function host starts");
    let params =
        json!({"http": [{"url": format!("{url}/health"), "contains": "ok"}], "bake_seconds": 0});
    let run = function
        .run(JobEventBuilder::new("deploy-gate", &params).build())
        .await
        .expect("a job event");
    assert!(run.succeeded(), "{:?}", results(&run));
    let summary = run.summary_text();
    assert!(
        summary.contains(&format!("GET {url}/health passed")),
        "{summary}"
    );
}

#[tokio::test]
async fn smoke_checks_over_https_fail_naming_the_certificate_when_it_is_not_trusted() {
    let (url, _tls) = https_service().await;
    let gate = gate(Duration::from_secs(30)).await;
    let run = gate
        .run(json!({"http": [{"url": format!("{url}/health"), "retries": 0}], "bake_seconds": 0}))
        .await;
    let (kind, message) = final_failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains(&format!("GET {url}/health")), "{message}");
    assert!(
        message.to_ascii_lowercase().contains("certificate"),
        "the cause names the certificate: {message}"
    );
}
