//! Parameters no HTTP request can carry (a CR/LF in a header value, a bucket name with a line
//! break) are refused up front as a `ConfigurationError` naming the key by path, before any
//! S3 request is made.

mod common;

use common::*;
use serde_json::{json, Value};

/// Every header- or host-bearing parameter, with a CR/LF slipped in, and the path the error
/// must name.
fn hostile_steps() -> Vec<(Value, &'static str)> {
    let injected = "no-cache\r\nX-Injected: 1";
    vec![
        (
            json!([{"publish": {"input": "Source", "bucket": SITE,
                "cache_control": {"index.html": injected}}}]),
            "steps[0].publish.cache_control.index.html",
        ),
        (
            json!([{"publish": {"input": "Source", "bucket": SITE,
                "default_cache_control": "public,\nmax-age=1"}}]),
            "steps[0].publish.default_cache_control",
        ),
        (
            json!([{"publish": {"input": "Source", "bucket": "www\r\nHost: evil"}}]),
            "steps[0].publish.bucket",
        ),
        (
            json!([{"publish": {"input": "Source", "bucket": SITE,
                "cloudfront_distribution_id": "E2ABC\r\n"}}]),
            "steps[0].publish.cloudfront_distribution_id",
        ),
        (
            json!([{"manifest": {"input": "Source", "output": "Release"}},
                   {"promote": {"input": "Source", "bucket": "releases", "key": "web/1.zip",
                    "encryption": "aws:kms", "kms_key_id": "alias/x\nX-Amz-Evil: 1"}}]),
            "steps[1].promote.kms_key_id",
        ),
        (
            json!([{"promote": {"input": "Source", "bucket": "rel\neases", "key": "web/1.zip"}}]),
            "steps[0].promote.bucket",
        ),
    ]
}

fn s3_calls(f: &pipeline_testkit::LocalFunction) -> Vec<pipeline_local::calls::Call> {
    f.aws
        .calls
        .all()
        .into_iter()
        .filter(|c| c.service == "s3")
        .collect()
}

#[tokio::test]
async fn crlf_in_any_header_bearing_parameter_is_a_configuration_error_before_any_s3_request() {
    let f = processor(&[]).await;
    for (steps, path) in hostile_steps() {
        let e = event(steps, &["Release"]);
        f.aws
            .s3
            .put_file(
                ARTIFACTS,
                &input_key(&e),
                &zip_of(&[("index.html".into(), b"<h1>hi</h1>".to_vec())]),
            )
            .unwrap();
        let s3_calls_before = s3_calls(&f).len();
        let run = run(&f, e).await;
        let (kind, message) = failure(&run);
        assert_eq!(kind, "ConfigurationError", "{path}: {message}");
        assert!(
            message.contains(&format!("`{path}`")),
            "the key is named by path `{path}`: {message}"
        );
        assert!(
            message.contains("line break (CR or LF)") || message.contains("is not"),
            "{message}"
        );
        let after = s3_calls(&f);
        assert_eq!(
            after.len(),
            s3_calls_before,
            "{path}: no S3 request may be made: {after:?}"
        );
    }
    assert!(
        !f.aws.s3.exists(SITE, "index.html"),
        "nothing was published"
    );
}
