//! `publish` end to end through the binary against the local S3 (every call recorded).

mod common;

use common::*;
use pipeline_local::faults::Fault;
use pipeline_testkit::{noise, JobRunAssertions};
use serde_json::json;

fn site_puts(f: &pipeline_testkit::LocalFunction) -> usize {
    f.aws
        .calls
        .of("s3", "PutObject")
        .iter()
        .filter(|c| c.detail["bucket"] == SITE && !is_release_record(&c.detail["key"]))
        .count()
}

/// The release record publish writes beside the site (README, "publish").
fn is_release_record(key: &serde_json::Value) -> bool {
    key.as_str()
        .is_some_and(|k| k.ends_with(".publish-releases.json"))
}

async fn site_keys(f: &pipeline_testkit::LocalFunction, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut pages = f
        .s3_client()
        .list_objects_v2()
        .bucket(SITE)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        keys.extend(
            page.unwrap()
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .filter(|k| !k.ends_with(".publish-releases.json")),
        );
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn republishing_uploads_only_changed_files_and_deletes_removed_ones() {
    let f = processor(&[]).await;
    let mut files = site(3000, 1);
    let first = event(json!([publish_step("site")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&first), &zip_of(&files))
        .unwrap();
    let run1 = run(&f, first).await;
    let vars = success_vars(&run1);
    assert_eq!(vars["FilesPublished"], "3000");
    assert_eq!(vars["FilesDeleted"], "0");
    assert_eq!(site_puts(&f), 3000);

    // 10 files change (same size, other bytes), 5 are removed.
    for i in (100..1100).step_by(100) {
        files[i].1 = String::from_utf8(files[i].1.clone())
            .unwrap()
            .replace(" v1 ", " v2 ")
            .into_bytes();
    }
    let removed: Vec<String> = files
        .drain(2990..2995)
        .map(|(name, _)| format!("site/{name}"))
        .collect();
    f.aws.calls.clear();
    let second = event(json!([publish_step("site")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&second), &zip_of(&files))
        .unwrap();
    let run2 = run(&f, second).await;
    let vars = success_vars(&run2);
    assert_eq!(vars["FilesPublished"], "10");
    assert_eq!(vars["FilesDeleted"], "5");
    assert_eq!(
        site_puts(&f),
        10,
        "exactly the 10 changed files are uploaded"
    );
    assert_eq!(f.aws.calls.count("s3", "DeleteObjects"), 1);
    assert_eq!(
        f.aws.calls.count("s3", "HeadObject"),
        2 + 10,
        "the listing's ETags decide for unchanged files: HEADs only for the artifact, one published \
         object's header rules, and the 10 files whose ETag differs (an SSE-KMS ETag is no MD5)"
    );
    let keys = site_keys(&f, "site/").await;
    assert_eq!(keys.len(), 2995);
    for gone in &removed {
        assert!(!keys.contains(gone), "{gone} was not deleted");
    }
    let changed = std::fs::read(
        f.aws
            .s3
            .object_path(SITE, &format!("site/{}", files[100].0)),
    )
    .unwrap();
    assert!(String::from_utf8(changed).unwrap().contains(" v2 "));

    // Content-Type and Cache-Control on a sample.
    let s3 = f.s3_client();
    for (key, content_type, cache) in [
        ("site/index.html", "text/html; charset=utf-8", "no-cache"),
        (
            "site/assets/app-0001.js",
            "text/javascript; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        (
            "site/assets/style-0002.css",
            "text/css; charset=utf-8",
            "public, max-age=31536000, immutable",
        ),
        ("site/img/pic-0003.png", "image/png", "public, max-age=300"),
        (
            "site/docs/page-0004.html",
            "text/html; charset=utf-8",
            "public, max-age=300",
        ),
    ] {
        let head = s3.head_object().bucket(SITE).key(key).send().await.unwrap();
        assert_eq!(head.content_type(), Some(content_type), "{key}");
        assert_eq!(head.cache_control(), Some(cache), "{key}");
        assert_eq!(head.metadata().unwrap()["sha256"].len(), 64, "{key}");
    }
}

#[tokio::test]
async fn a_failed_upload_deletes_nothing_and_names_the_key() {
    let f = processor(&[]).await;
    // The site already holds a file the new artifact no longer has.
    f.aws
        .s3
        .put_file(SITE, "site/old-page.html", b"old")
        .unwrap();
    let files = site(200, 1);
    let e = event(json!([publish_step("site")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&files))
        .unwrap();
    f.aws
        .faults
        .add(Fault::new("s3", "PutObject", "InternalError", 500).on_key("docs/page-0100.html"));
    let (kind, message) = failure(&run(&f, e).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("s3://www-example/site/docs/page-0100.html"),
        "{message}"
    );
    assert!(
        message.contains("InternalError") && message.contains("nothing deleted"),
        "{message}"
    );
    assert_eq!(f.aws.calls.count("s3", "DeleteObjects"), 0);
    assert!(f.aws.s3.exists(SITE, "site/old-page.html"));
}

#[tokio::test]
async fn access_denied_on_the_site_bucket_is_a_permission_error() {
    let f = processor(&[]).await;
    let e = event(json!([publish_step("")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&site(20, 1)))
        .unwrap();
    f.aws
        .faults
        .add(Fault::new("s3", "PutObject", "AccessDenied", 403).on_key("index.html"));
    let (kind, message) = failure(&run(&f, e).await);
    assert_eq!(kind, "PermissionError");
    assert!(message.contains("s3://www-example/index.html"), "{message}");
}

async fn assert_hostile_zip_publishes_nothing(zip: Vec<u8>, expected: &str) {
    let f = processor(&[]).await;
    f.aws.s3.put_file(SITE, "site/keep.html", b"keep").unwrap();
    let e = event(json!([publish_step("site")]), &[]);
    f.aws.s3.put_file(ARTIFACTS, &input_key(&e), &zip).unwrap();
    let (kind, message) = failure(&run(&f, e).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains(expected) && message.contains("step 1 (publish)"),
        "{message}"
    );
    assert_eq!(site_puts(&f), 0, "something was published");
    assert_eq!(
        f.aws.calls.count("s3", "DeleteObjects"),
        0,
        "something was deleted"
    );
    assert!(f.aws.s3.exists(SITE, "site/keep.html"));
}

#[tokio::test]
async fn hostile_zips_publish_nothing_and_delete_nothing() {
    let slip = zip_of(&[
        ("index.html".into(), b"ok".to_vec()),
        ("../../etc/evil".into(), b"x".to_vec()),
    ]);
    assert_hostile_zip_publishes_nothing(slip, "path traversal").await;
    let absolute = zip_of(&[("/etc/evil".into(), b"x".to_vec())]);
    assert_hostile_zip_publishes_nothing(absolute, "absolute path").await;
    let backslash = zip_of(&[("a\\b.html".into(), b"x".to_vec())]);
    assert_hostile_zip_publishes_nothing(backslash, "backslash").await;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_symlink(
            "link",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    assert_hostile_zip_publishes_nothing(writer.finish().unwrap().into_inner(), "symbolic link")
        .await;
    let bomb = zip_of(&[("zeros.bin".into(), vec![0u8; 4 * 1024 * 1024])]);
    assert_hostile_zip_publishes_nothing(bomb, "ratio over the limit").await;
}

#[tokio::test]
async fn a_crc_failure_in_the_third_entry_publishes_nothing_at_all() {
    let mut zip = zip_of(&site(5, 1));
    corrupt_crc(&mut zip, 2);
    assert_hostile_zip_publishes_nothing(zip, "CRC-32 mismatch").await;
}

#[tokio::test]
async fn delete_stale_never_touches_keys_outside_the_prefix() {
    let f = processor(&[]).await;
    f.aws.s3.put_file(SITE, "outside/keep.txt", b"x").unwrap();
    f.aws
        .s3
        .put_file(SITE, "site-other/keep.txt", b"x")
        .unwrap();
    f.aws.s3.put_file(SITE, "site/stale.txt", b"x").unwrap();
    let e = event(json!([publish_step("site")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&site(8, 1)))
        .unwrap();
    let vars = success_vars(&run(&f, e).await);
    assert_eq!(vars["FilesDeleted"], "1");
    assert!(!f.aws.s3.exists(SITE, "site/stale.txt"));
    assert!(
        f.aws.s3.exists(SITE, "outside/keep.txt") && f.aws.s3.exists(SITE, "site-other/keep.txt")
    );
}

#[tokio::test]
async fn large_files_are_uploaded_in_parts_without_a_spool_file() {
    let f = processor(&[]).await;
    let big: Vec<u8> = (0..20 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let files = vec![
        ("video/intro.mp4".to_string(), big.clone()),
        ("index.html".to_string(), b"<h1>x</h1>".to_vec()),
    ];
    let e = event(json!([publish_step("")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&files))
        .unwrap();
    assert_eq!(success_vars(&run(&f, e).await)["FilesPublished"], "2");
    assert_eq!(
        std::fs::read(f.aws.s3.object_path(SITE, "video/intro.mp4")).unwrap(),
        big
    );
    assert!(f.aws.calls.count("s3", "UploadPart") >= 3);
    // Again: unchanged, recognised by the SHA-256 in the metadata (a multipart ETag is no MD5).
    f.aws.calls.clear();
    let again = event(json!([publish_step("")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&again), &zip_of(&files))
        .unwrap();
    assert_eq!(success_vars(&run(&f, again).await)["FilesPublished"], "0");
    assert_eq!(f.aws.calls.count("s3", "UploadPart"), 0);
}

#[tokio::test]
async fn a_cache_control_change_updates_the_headers_of_unchanged_files() {
    let f = processor(&[]).await;
    let files = site(8, 1);
    let publish = |step: serde_json::Value| {
        let e = event(json!([step]), &[]);
        f.aws
            .s3
            .put_file(ARTIFACTS, &input_key(&e), &zip_of(&files))
            .unwrap();
        e
    };
    assert!(run(&f, publish(publish_step("site"))).await.succeeded());

    // Same bytes, same rules: nothing is copied, nothing uploaded.
    f.aws.calls.clear();
    let same = run(&f, publish(publish_step("site"))).await;
    assert_eq!(success_vars(&same)["FilesHeadersUpdated"], "0");
    assert_eq!(f.aws.calls.count("s3", "CopyObject"), 0);
    assert_eq!(site_puts(&f), 0);

    // Same bytes, new Cache-Control for the assets: every unchanged file gets its headers.
    f.aws.calls.clear();
    let mut step = publish_step("site");
    step["publish"]["cache_control"] = json!({"assets/**": "public, max-age=60"});
    let changed = run(&f, publish(step)).await;
    let vars = success_vars(&changed);
    assert_eq!(vars["FilesPublished"], "0");
    assert_eq!(vars["FilesHeadersUpdated"], "8");
    assert!(
        changed
            .summary_text()
            .contains("8 updated for headers only"),
        "{}",
        changed.summary_text()
    );
    assert_eq!(site_puts(&f), 0, "no data was sent again");
    let asset = files
        .iter()
        .map(|(name, _)| name)
        .find(|n| n.starts_with("assets/"))
        .unwrap();
    let head = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key(format!("site/{asset}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.cache_control(), Some("public, max-age=60"));
    assert!(
        head.content_type().unwrap().starts_with("text/javascript")
            || head.content_type().unwrap().starts_with("text/css")
    );
    let index = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key("site/index.html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        index.cache_control(),
        Some("public, max-age=300"),
        "the default now applies"
    );
}

/// 48 files of 1 MiB of noise: an archive large enough to be read as parallel streams.
fn noisy_site() -> Vec<(String, Vec<u8>)> {
    (0..48)
        .map(|i| (format!("media/clip-{i:02}.bin"), noise(1 << 20, i + 1)))
        .collect()
}

/// Bytes of the artifact read by ranged GETs since the call log was cleared, and how many GETs.
fn artifact_bytes_read(f: &pipeline_testkit::LocalFunction) -> (u64, usize) {
    let gets = f.aws.calls.of("s3", "GetObject");
    let ranges: Vec<(u64, u64)> = gets
        .iter()
        .filter(|c| c.detail["bucket"] == ARTIFACTS)
        .filter_map(|c| {
            let range = c.detail["range"].as_str()?.strip_prefix("bytes=")?;
            let (start, end) = range.split_once('-')?;
            Some((start.parse().ok()?, end.parse().ok()?))
        })
        .collect();
    (
        ranges.iter().map(|(start, end)| end + 1 - start).sum(),
        ranges.len(),
    )
}

#[tokio::test]
async fn a_republish_reads_only_the_changed_files_of_the_artifact() {
    let f = processor(&[]).await;
    let mut files = noisy_site();
    let first = event(json!([publish_step("media")]), &[]);
    let zip = zip_of(&files);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&first), &zip)
        .unwrap();
    assert_eq!(success_vars(&run(&f, first).await)["FilesPublished"], "48");
    let (read, gets) = artifact_bytes_read(&f);
    assert!(
        gets >= 6,
        "a 48 MiB archive is verified and uploaded in parallel streams ({gets} GETs)"
    );
    assert!(read < 2 * zip.len() as u64 + (1 << 20), "{read} bytes read");
    for (name, data) in [&files[0], &files[23], &files[47]] {
        assert_eq!(
            &std::fs::read(f.aws.s3.object_path(SITE, &format!("media/{name}"))).unwrap(),
            data,
            "{name}"
        );
    }

    files[5].1 = noise(1 << 20, 1005);
    files[40].1 = noise(1 << 20, 1040);
    f.aws.calls.clear();
    let second = event(json!([publish_step("media")]), &[]);
    let zip = zip_of(&files);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&second), &zip)
        .unwrap();
    assert_eq!(success_vars(&run(&f, second).await)["FilesPublished"], "2");
    assert_eq!(site_puts(&f), 2);
    let (read, _) = artifact_bytes_read(&f);
    assert!(
        read < zip.len() as u64 + 3 * (1 << 20),
        "the data pass reads the 2 changed files, not the whole archive again: {read} bytes of {}",
        zip.len()
    );
    assert_eq!(
        std::fs::read(
            f.aws
                .s3
                .object_path(SITE, &format!("media/{}", files[40].0))
        )
        .unwrap(),
        files[40].1
    );
}

#[tokio::test]
async fn a_crc_failure_in_the_last_stream_of_a_large_archive_publishes_nothing() {
    let mut zip = zip_of(&noisy_site());
    corrupt_crc(&mut zip, 46);
    assert_hostile_zip_publishes_nothing(zip, "CRC-32 mismatch").await;
}

#[tokio::test]
async fn uploads_carry_the_checksums_of_the_verify_pass() {
    let f = processor(&[]).await;
    let files = site(3, 1);
    let e = event(json!([publish_step("")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&files))
        .unwrap();
    assert_eq!(success_vars(&run(&f, e).await)["FilesPublished"], "3");
    let head = f
        .s3_client()
        .head_object()
        .bucket(SITE)
        .key(&files[1].0)
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    use sha2::Digest as _;
    let sha256 = sha2::Sha256::digest(&files[1].1);
    assert_eq!(
        head.checksum_sha256(),
        Some(aws_smithy_types::base64::encode(sha256).as_str()),
        "S3 checked the bytes against the SHA-256 computed while verifying"
    );
    assert_eq!(head.metadata().unwrap()["sha256"], hex::encode(sha256));
}

#[tokio::test]
async fn slow_down_answers_are_retried_with_back_off_and_the_publish_completes() {
    let f = processor(&[]).await;
    let files = site(40, 1);
    f.aws.faults.add(
        Fault::new("s3", "PutObject", "SlowDown", 503)
            .on_key("assets/")
            .times(6),
    );
    let e = event(json!([publish_step("site")]), &[]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&files))
        .unwrap();
    let record = run(&f, e).await;
    assert_eq!(success_vars(&record)["FilesPublished"], "40");
    let summary = record.summary_text();
    assert!(
        summary.contains("the bucket throttled 6 requests (SlowDown)") && summary.contains("of 16"),
        "the summary says the window narrowed: {summary}"
    );
    let puts = f.aws.calls.of("s3", "PutObject");
    let slowed = puts.iter().filter(|c| c.status == 503).count();
    assert_eq!(slowed, 6, "every planned SlowDown was answered");
    let site_files = puts
        .iter()
        .filter(|c| c.status == 200 && !is_release_record(&c.detail["key"]));
    assert_eq!(site_files.count(), 40);
    assert_eq!(site_keys(&f, "site/").await.len(), 40);
}
