//! `publish` for a real site, through the binary on the local S3 and CloudFront: old assets
//! kept for open pages (`prune`), compressed files served with the right headers, and an
//! invalidation that survives throttling and is waited for across continuations.

mod common;

use common::*;
use pipeline_local::faults::Fault;
use pipeline_testkit::{JobRunAssertions, LocalFunction};
use serde_json::{json, Value};
use std::io::Read;

const DISTRIBUTION: &str = "E2SITE0TEST";
const RECORD: &str = "live/.publish-releases.json";

/// Publishes `files` with `step` (the `publish` object) as a new job.
async fn publish(
    f: &LocalFunction,
    files: &[(String, Vec<u8>)],
    step: Value,
) -> pipeline_local::job_invocation::JobRun {
    let event = event(json!([{ "publish": step }]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&event), &zip_of(files))
        .unwrap();
    run(f, event).await
}

fn file(name: &str, content: &str) -> (String, Vec<u8>) {
    (name.to_string(), content.as_bytes().to_vec())
}

fn release(n: u32) -> Vec<(String, Vec<u8>)> {
    vec![
        file(
            "index.html",
            &format!("<script src=assets/app-{n}.js></script> release {n}"),
        ),
        file(&format!("assets/app-{n}.js"), &format!("console.log({n})")),
        file("assets/logo.svg", "<svg/>"),
    ]
}

async fn object(f: &LocalFunction, key: &str) -> Option<Vec<u8>> {
    let got = f
        .s3_client()
        .get_object()
        .bucket(SITE)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(got.body.collect().await.unwrap().into_bytes().to_vec())
}

fn site_step(extra: Value) -> Value {
    let mut step = json!({"input": "Source", "bucket": SITE, "prefix": "live"});
    for (k, v) in extra.as_object().unwrap() {
        step[k] = v.clone();
    }
    step
}

#[tokio::test]
async fn three_releases_with_keep_releases_one_keep_only_the_previous_releases_assets() {
    let f = processor(&[]).await;
    let step = site_step(json!({"prune": {"keep_releases": 1}}));
    for n in 1..=3 {
        let run = publish(&f, &release(n), step.clone()).await;
        let vars = success_vars(&run);
        assert_eq!(vars["Release"], n.to_string(), "{:?}", run.summary());
        // The page is always the new one.
        let page = object(&f, "live/index.html").await.unwrap();
        assert!(String::from_utf8(page)
            .unwrap()
            .ends_with(&format!("release {n}")));
        if n == 2 {
            assert_eq!(vars["FilesKept"], "1", "{:?}", run.summary());
            assert!(object(&f, "live/assets/app-1.js").await.is_some());
        }
    }
    // Release 3: release 1's asset is gone, release 2's kept for pages still open.
    assert!(object(&f, "live/assets/app-1.js").await.is_none());
    assert!(object(&f, "live/assets/app-2.js").await.is_some());
    assert!(object(&f, "live/assets/app-3.js").await.is_some());
    let record: Value = serde_json::from_slice(&object(&f, RECORD).await.unwrap()).unwrap();
    assert_eq!(record["release"], 3);
    assert_eq!(record["keys"]["assets/app-2.js"], 2);
    assert_eq!(record["keys"]["index.html"], 3);

    // The page of release 3 went up after its script.
    let puts = f.aws.calls.of("s3", "PutObject");
    let at = |key: &str| {
        puts.iter()
            .filter(|c| c.detail["key"] == key)
            .map(|c| c.at_ms)
            .next_back()
            .unwrap()
    };
    assert!(at("live/assets/app-3.js") < at("live/index.html"));
}

#[tokio::test]
async fn a_damaged_release_record_deletes_nothing_old_and_says_why() {
    let f = processor(&[]).await;
    let step = site_step(json!({"prune": {"keep_releases": 0}}));
    publish(&f, &release(1), step.clone())
        .await
        .expect_variables();
    f.s3_client()
        .put_object()
        .bucket(SITE)
        .key(RECORD)
        .body(b"{\"format\":1,\"release\":".to_vec().into())
        .send()
        .await
        .unwrap();
    let run = publish(&f, &release(2), step.clone()).await;
    let vars = success_vars(&run);
    assert_eq!(vars["FilesDeleted"], "0");
    let summary = run.summary().unwrap();
    assert!(
        summary.contains("nothing old deleted") && summary.contains("damaged"),
        "{summary}"
    );
    assert!(object(&f, "live/assets/app-1.js").await.is_some());
    // The record is whole again: the next release prunes by it.
    let run = publish(&f, &release(3), step).await;
    assert_eq!(
        success_vars(&run)["FilesDeleted"],
        "2",
        "{:?}",
        run.summary()
    );
    assert!(object(&f, "live/assets/app-2.js").await.is_none());
    // app-1.js was first seen by the record in release 2: kept zero releases after, it goes too.
    assert!(object(&f, "live/assets/app-1.js").await.is_none());
}

#[tokio::test]
async fn a_prune_dry_run_lists_what_would_go_and_deletes_nothing() {
    let f = processor(&[]).await;
    publish(&f, &release(1), site_step(json!({"prune": {}})))
        .await
        .expect_variables();
    let run = publish(
        &f,
        &release(2),
        site_step(json!({"prune": {"dry_run": true}})),
    )
    .await;
    let vars = success_vars(&run);
    assert_eq!(
        (vars["FilesToPrune"].as_str(), vars["FilesDeleted"].as_str()),
        (Some("1"), Some("0"))
    );
    let summary = run.summary().unwrap();
    assert!(
        summary.contains("would delete 1: assets/app-1.js"),
        "{summary}"
    );
    assert!(object(&f, "live/assets/app-1.js").await.is_some());
}

/// A plain HTTP GET of the local website with this `Accept-Encoding`.
async fn fetch(base: &str, path: &str, accept: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let client = pipeline_ext::https::client_builder().build().unwrap();
    let answer = client
        .get(format!("{base}/{SITE}/{path}"))
        .header("accept-encoding", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{path}");
    let headers = answer.headers().clone();
    (headers, answer.bytes().await.unwrap().to_vec())
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &data[..], &mut out, &Default::default()).unwrap();
    out
}

fn unbrotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(data, 4096)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap())
}

#[tokio::test]
async fn precompressed_and_compressed_files_are_served_with_their_encoding() {
    let f = processor(&[]).await;
    let script = "function hello() { return 'hello, world'; }\n".repeat(200);
    let styles = "body { margin: 0; padding: 0; color: #333; }\n".repeat(200);
    let files = vec![
        file("index.html", "<html>hello</html>"),
        file("app.js", &script),
        ("app.js.br".to_string(), brotli(script.as_bytes())),
        ("app.js.gz".to_string(), gzip(script.as_bytes())),
        file("css/site.css", &styles),
        // A gzip file with no plain file beside it is a download, published as one.
        ("backup.tar.gz".to_string(), gzip(b"tar")),
    ];
    let step = site_step(json!({
        "compress": ["*.css"], "compress_level": {"br": 5, "gzip": 6},
        "cache_control": {"**/*.css": "public, max-age=31536000, immutable"}
    }));
    let run = publish(&f, &files, step.clone()).await;
    let vars = success_vars(&run);
    // 6 files of the artifact and two compressed copies of site.css.
    assert_eq!(vars["FilesPublished"], "8", "{:?}", run.summary());

    let head = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key("live/app.js.br")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/javascript; charset=utf-8"));
    assert_eq!(head.content_encoding(), Some("br"));
    let head = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key("live/css/site.css.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/css; charset=utf-8"));
    assert_eq!(head.content_encoding(), Some("gzip"));
    assert_eq!(
        head.cache_control(),
        Some("public, max-age=31536000, immutable")
    );
    let head = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key("live/backup.tar.gz")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_encoding(), None);

    let site = pipeline_local::pipeline::serve_website(f.aws.s3.clone())
        .await
        .unwrap();
    for (path, original) in [
        ("live/app.js", script.as_bytes()),
        ("live/css/site.css", styles.as_bytes()),
    ] {
        let (headers, body) = fetch(&site, path, "gzip, deflate, br").await;
        assert_eq!(header(&headers, "content-encoding"), "br", "{path}");
        assert_eq!(header(&headers, "vary"), "Accept-Encoding");
        assert!(
            header(&headers, "content-type").starts_with("text/"),
            "{path}"
        );
        assert_eq!(unbrotli(&body), original, "{path}");
        let (headers, body) = fetch(&site, path, "gzip").await;
        assert_eq!(header(&headers, "content-encoding"), "gzip");
        assert_eq!(gunzip(&body), original);
        let (headers, body) = fetch(&site, path, "identity").await;
        assert_eq!(header(&headers, "content-encoding"), "");
        assert_eq!(header(&headers, "vary"), "Accept-Encoding");
        assert_eq!(body, original);
    }

    // The same artifact again: nothing is compressed or uploaded a second time.
    let run = publish(&f, &files, step).await;
    assert_eq!(
        success_vars(&run)["FilesPublished"],
        "0",
        "{:?}",
        run.summary()
    );
}

#[tokio::test]
async fn a_variant_in_place_is_served_under_the_plain_name() {
    let f = processor(&[]).await;
    let script = "let answer = 42;\n".repeat(300);
    let files = vec![
        file("app.js", &script),
        ("app.js.gz".to_string(), gzip(script.as_bytes())),
        ("app.js.br".to_string(), brotli(script.as_bytes())),
        file("site.css", &"p { margin: 0 }\n".repeat(100)),
    ];
    let step = site_step(json!({"precompressed": "gzip", "compress": ["**/*.css"]}));
    let run = publish(&f, &files, step).await;
    assert_eq!(
        success_vars(&run)["FilesPublished"],
        "2",
        "{:?}",
        run.summary()
    );
    assert!(object(&f, "live/app.js.gz").await.is_none());
    assert!(object(&f, "live/app.js.br").await.is_none());
    let site = pipeline_local::pipeline::serve_website(f.aws.s3.clone())
        .await
        .unwrap();
    let (headers, body) = fetch(&site, "live/app.js", "gzip, br").await;
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(
        header(&headers, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(gunzip(&body), script.as_bytes());
    let (headers, body) = fetch(&site, "live/site.css", "gzip").await;
    assert_eq!(header(&headers, "content-encoding"), "gzip");
    assert_eq!(gunzip(&body), "p { margin: 0 }\n".repeat(100).as_bytes());
}

fn cloudfront_step(extra: Value) -> Value {
    let mut step = site_step(extra);
    step["cloudfront_distribution_id"] = json!(DISTRIBUTION);
    step
}

fn continuations(run: &pipeline_local::job_invocation::JobRun) -> usize {
    run.results()
        .iter()
        .filter(|r| r.get("continuationToken").is_some())
        .count()
}

#[tokio::test]
async fn an_invalidation_throttled_twice_is_made_and_waited_for_across_continuations() {
    let f = processor(&[]).await;
    f.aws.cloudfront.set_reads_to_complete(3);
    f.aws
        .faults
        .add(Fault::new("cloudfront", "CreateInvalidation", "Throttling", 400).times(2));
    let run = publish(
        &f,
        &release(1),
        cloudfront_step(json!({"invalidation": {"wait": true}})),
    )
    .await;
    let vars = success_vars(&run);
    assert_eq!(f.aws.calls.count("cloudfront", "CreateInvalidation"), 3);
    assert_eq!(f.aws.calls.count("cloudfront", "GetInvalidation"), 3);
    assert!(continuations(&run) >= 2, "{:?}", run.results());
    let made = f.aws.cloudfront.invalidations();
    assert_eq!(made.len(), 1);
    assert_eq!(vars["InvalidationId"], made[0].id.as_str());
    let summary = run.summary().unwrap();
    assert!(
        summary.contains("after 3 attempts") && summary.contains("completed"),
        "{summary}"
    );
}

#[tokio::test]
async fn five_thousand_changed_paths_are_collapsed_within_cloudfronts_limits() {
    let f = processor(&[]).await;
    let files = site(5000, 1);
    let run = publish(
        &f,
        &files,
        cloudfront_step(json!({"invalidate_all_over": 3000})),
    )
    .await;
    assert_eq!(success_vars(&run)["FilesPublished"], "5000");
    let made = f.aws.cloudfront.invalidations();
    assert_eq!(made.len(), 1);
    let paths = &made[0].paths;
    let wildcards = paths.iter().filter(|p| p.ends_with('*')).count();
    assert!(
        paths.len() <= 3000 && wildcards <= 15,
        "{} paths, {wildcards} wildcards",
        paths.len()
    );
    assert_ne!(paths, &vec!["/*".to_string()]);
    for (name, _) in &files {
        let path = format!("/live/{name}");
        assert!(
            paths
                .iter()
                .any(|p| p == &path || p.strip_suffix('*').is_some_and(|w| path.starts_with(w))),
            "{path} is not invalidated"
        );
    }
}

#[tokio::test]
async fn a_failed_invalidation_says_the_files_are_live_and_the_next_publish_invalidates_them() {
    let f = processor(&[]).await;
    f.aws.faults.add(Fault::new(
        "cloudfront",
        "CreateInvalidation",
        "ServiceUnavailable",
        503,
    ));
    let run = publish(&f, &release(1), cloudfront_step(json!({}))).await;
    let (_, message) = failure(&run);
    assert!(
        message.contains("The files are live, the cache is not"),
        "{message}"
    );
    assert!(message.contains("after 6 attempts"), "{message}");
    assert_eq!(f.aws.calls.count("cloudfront", "CreateInvalidation"), 6);
    assert!(object(&f, "live/index.html").await.is_some());

    // CloudFront is back; the same artifact changes nothing, yet the paths left are invalidated.
    f.aws.faults.clear();
    let run = publish(&f, &release(1), cloudfront_step(json!({}))).await;
    let vars = success_vars(&run);
    assert_eq!(vars["FilesPublished"], "0");
    let made = f.aws.cloudfront.invalidations();
    assert_eq!(made.len(), 1);
    assert!(
        made[0].paths.contains(&"/live/index.html".to_string()),
        "{:?}",
        made[0].paths
    );
    let record: Value = serde_json::from_slice(&object(&f, RECORD).await.unwrap()).unwrap();
    assert!(record["pending_invalidation"].is_null(), "{record}");
}

#[tokio::test]
async fn a_wait_whose_progress_cannot_be_read_says_the_files_are_live() {
    let f = processor(&[]).await;
    f.aws.faults.add(Fault::new(
        "cloudfront",
        "GetInvalidation",
        "AccessDenied",
        403,
    ));
    let run = publish(
        &f,
        &release(1),
        cloudfront_step(json!({"invalidation": {"wait": true}})),
    )
    .await;
    let (_, message) = failure(&run);
    assert!(
        message.contains("The files are live") && message.contains("cloudfront:GetInvalidation"),
        "{message}"
    );
    assert_eq!(f.aws.cloudfront.invalidations().len(), 1);
}

#[tokio::test]
async fn a_forged_continuation_token_is_refused_and_nothing_is_published() {
    let f = processor(&[]).await;
    let forged = |step: Value, state: Value| {
        let mut event = event(json!([{ "publish": step }]), &[]);
        event["CodePipeline.job"]["data"]["continuationToken"] =
            json!(json!({"v": 1, "state": state}).to_string());
        event
    };
    let waiting = |since_ms: u64| {
        json!({"step": 0, "summary": ["step 1 (publish): done"], "variables": {},
               "wait": {"distribution": DISTRIBUTION, "ids": ["IFORGED"], "since_ms": since_ms}})
    };
    // A step that does not wait, a wait that starts in the future, another distribution.
    let mut other = cloudfront_step(json!({"invalidation": {"wait": true}}));
    other["cloudfront_distribution_id"] = json!("E2OTHER");
    for (step, state) in [
        (cloudfront_step(json!({})), waiting(0)),
        (
            cloudfront_step(json!({"invalidation": {"wait": true}})),
            waiting(u64::MAX / 2),
        ),
        (other, waiting(0)),
    ] {
        let event = forged(step, state);
        f.aws
            .s3
            .put_file(ARTIFACTS, &input_key(&event), &zip_of(&release(1)))
            .unwrap();
        let (_, message) = failure(&run(&f, event).await);
        assert!(
            message.contains("continuation token is inconsistent"),
            "{message}"
        );
    }
    assert_eq!(f.aws.calls.count("s3", "PutObject"), 0);
    assert_eq!(f.aws.calls.count("cloudfront", "GetInvalidation"), 0);
}

#[tokio::test]
async fn a_file_too_large_to_compress_in_memory_is_published_plain_and_named() {
    let f = processor(&[]).await;
    // Text that does not compress 200:1 (the archive reader refuses that as a bomb).
    let big = hex::encode(pipeline_testkit::noise(9 << 19, 7));
    let files = vec![file("bundle.js", &big), file("small.js", "let a = 1;\n")];
    let run = publish(
        &f,
        &files,
        site_step(json!({"compress": ["**/*.js"], "compress_level": {"br": 1}})),
    )
    .await;
    let summary = run
        .summary()
        .unwrap_or_else(|| panic!("{:?}", run.failure()))
        .to_string();
    assert!(
        summary.contains("1 not compressed (over 8 MiB)"),
        "{summary}"
    );
    assert!(object(&f, "live/bundle.js.br").await.is_none());
    assert!(object(&f, "live/small.js.br").await.is_some());
    let head = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key("live/bundle.js")
        .send()
        .await;
    assert_eq!(head.unwrap().content_length(), Some(9 << 20));
}

#[tokio::test]
async fn an_entry_page_too_large_to_hold_still_goes_up_after_every_asset() {
    let f = processor(&[]).await;
    let page = format!(
        "<html>{}</html>",
        hex::encode(pipeline_testkit::noise(9 << 19, 8))
    );
    let mut files = vec![
        file("index.html", &page),
        file("about.html", "<html>about</html>"),
    ];
    files.extend((0..40).map(|i| file(&format!("assets/a{i}.js"), &format!("var a{i} = {i};"))));
    let run = publish(&f, &files, site_step(json!({}))).await;
    assert_eq!(success_vars(&run)["FilesPublished"], "42");
    let calls = f.aws.calls.all();
    let last_asset = calls
        .iter()
        .filter(|c| {
            c.operation == "PutObject"
                && c.detail["key"]
                    .as_str()
                    .is_some_and(|k| k.contains("/assets/"))
        })
        .map(|c| c.at_ms)
        .fold(0.0, f64::max);
    let first_page = calls
        .iter()
        .filter(|c| {
            matches!(c.operation.as_str(), "PutObject" | "CreateMultipartUpload")
                && c.detail["key"]
                    .as_str()
                    .is_some_and(|k| k.ends_with(".html"))
        })
        .map(|c| c.at_ms)
        .fold(f64::MAX, f64::min);
    assert!(
        last_asset < first_page,
        "an asset went up at {last_asset} ms, a page at {first_page} ms"
    );
    assert_eq!(
        object(&f, "live/index.html").await.unwrap().len(),
        page.len()
    );
}

#[tokio::test]
async fn an_invalidation_waits_out_the_wildcards_other_invalidations_hold() {
    let f = processor(&[]).await;
    // Another deploy's invalidation holds all 15 wildcard paths for a second and a half.
    f.aws.cloudfront.set_reads_to_complete(u32::MAX);
    f.aws
        .cloudfront
        .set_complete_after(std::time::Duration::from_millis(1500));
    let config = aws_sdk_cloudfront::config::Builder::new()
        .behavior_version(aws_sdk_cloudfront::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudfront::config::Region::new("us-east-1"))
        .endpoint_url(f.aws.cloudfront_url())
        .http_client(pipeline_ext::https::sdk_http_client())
        .credentials_provider(aws_sdk_cloudfront::config::Credentials::new(
            "AKIAOTHER",
            "secret",
            None,
            None,
            "test",
        ))
        .build();
    let other = aws_sdk_cloudfront::Client::from_conf(config);
    let paths: Vec<String> = (0..15).map(|i| format!("/other{i}/*")).collect();
    other
        .create_invalidation()
        .distribution_id(DISTRIBUTION)
        .invalidation_batch(
            aws_sdk_cloudfront::types::InvalidationBatch::builder()
                .caller_reference("another-deploy")
                .paths(
                    aws_sdk_cloudfront::types::Paths::builder()
                        .quantity(15)
                        .set_items(Some(paths))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    // 40 changed files in four folders, past `invalidate_all_over`: folder wildcards.
    let files: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| file(&format!("d{}/f{i}.js", i % 4), &format!("var f{i};")))
        .collect();
    let run = publish(
        &f,
        &files,
        cloudfront_step(json!({"invalidate_all_over": 10})),
    )
    .await;
    success_vars(&run);
    let creates = f.aws.calls.of("cloudfront", "CreateInvalidation");
    assert!(creates.len() >= 3, "{creates:?}");
    assert!(creates[1..creates.len() - 1]
        .iter()
        .all(|c| c.status == 400));
    let ours = f.aws.cloudfront.invalidations().pop().unwrap();
    assert_eq!(
        ours.paths,
        vec!["/live/d0/*", "/live/d1/*", "/live/d2/*", "/live/d3/*"]
    );
}

#[tokio::test]
async fn an_invalidation_request_that_hangs_is_given_up_and_made_again() {
    let f = processor(&[]).await;
    f.aws.faults.add(
        Fault::new(
            "cloudfront",
            "CreateInvalidation",
            pipeline_local::service::HANG,
            0,
        )
        .times(1),
    );
    let run = publish(&f, &release(1), cloudfront_step(json!({}))).await;
    let vars = success_vars(&run);
    assert_eq!(f.aws.calls.count("cloudfront", "CreateInvalidation"), 2);
    assert_eq!(f.aws.cloudfront.invalidations().len(), 1);
    assert!(vars["InvalidationId"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
}
