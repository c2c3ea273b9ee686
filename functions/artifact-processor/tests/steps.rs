//! The output-writing steps end to end: every output is a valid zip written with SSE-KMS and
//! the job's key, read back and checked.

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::Digest;

fn source_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "taskdef.json".into(),
            br#"{"family": "web", "image": "<IMAGE1_NAME>", "env": "{{ STAGE }}"}"#.to_vec(),
        ),
        (
            "appspec.yaml".into(),
            b"TaskDefinition: <TASK_DEFINITION>\n".to_vec(),
        ),
        (
            "dist/index.html".into(),
            b"<html><body>{{STAGE}}</body></html>".to_vec(),
        ),
        ("dist/app.js".into(), b"console.log('hi')".to_vec()),
        ("dist/app.js.map".into(), b"{}".to_vec()),
        ("README.md".into(), b"# demo".to_vec()),
    ]
}

fn output(f: &pipeline_testkit::LocalFunction, e: &Value, name: &str) -> Vec<(String, Vec<u8>)> {
    read_zip(
        std::fs::read(f.aws.s3.object_path(ARTIFACTS, &output_key(e, name)))
            .expect("output written"),
    )
}

#[tokio::test]
async fn every_step_writes_a_valid_zip_with_sse_kms_and_the_job_key() {
    let f = processor(&[]).await;
    let steps = json!([
        {"image_definitions": {"output": "DeployInput", "containers": {"web": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123", "worker": "public.ecr.aws/x/worker:1"}}},
        {"image_definitions": {"output": "BlueGreen", "format": "imagedetail", "containers": {"web": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123"}}},
        {"render": {"input": "Source", "output": "Rendered", "files": ["taskdef.json", "appspec.yaml"],
                    "values": {"IMAGE1_NAME": "web:abc123", "STAGE": "prod", "TASK_DEFINITION": "arn:task:1"}}},
        {"manifest": {"input": "Source", "output": "Release"}},
        {"filter": {"input": "Source", "output": "Slim", "include": ["dist/**"], "exclude": ["**/*.map"]}}
    ]);
    let e = event(
        steps,
        &["DeployInput", "BlueGreen", "Rendered", "Release", "Slim"],
    );
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&source_files()))
        .unwrap();
    let run = run(&f, e.clone()).await;
    let vars = success_vars(&run);

    let defs = output(&f, &e, "DeployInput");
    assert_eq!(defs[0].0, "imagedefinitions.json");
    let parsed: Value = serde_json::from_slice(&defs[0].1).unwrap();
    assert_eq!(
        parsed,
        json!([{"name": "web", "imageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123"}, {"name": "worker", "imageUri": "public.ecr.aws/x/worker:1"}])
    );

    let detail = output(&f, &e, "BlueGreen");
    assert_eq!(detail[0].0, "imageDetail.json");
    assert_eq!(
        serde_json::from_slice::<Value>(&detail[0].1).unwrap(),
        json!({"ImageURI": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:abc123"})
    );

    let rendered = output(&f, &e, "Rendered");
    assert_eq!(rendered.len(), 6);
    assert_eq!(
        rendered[0],
        (
            "taskdef.json".to_string(),
            br#"{"family": "web", "image": "web:abc123", "env": "prod"}"#.to_vec()
        )
    );
    assert_eq!(rendered[1].1, b"TaskDefinition: arn:task:1\n");
    // Not listed in `files`: copied untouched.
    assert_eq!(rendered[2].1, b"<html><body>{{STAGE}}</body></html>");

    let release = output(&f, &e, "Release");
    let (manifest_name, manifest) = release.last().unwrap();
    assert_eq!(manifest_name, "manifest.json");
    assert_eq!(
        vars["ArtifactSha256"],
        hex::encode(sha2::Sha256::digest(manifest))
    );
    let records: Vec<Value> = serde_json::from_slice(manifest).unwrap();
    let paths: Vec<&str> = records
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted);
    for (name, data) in source_files() {
        let record = records.iter().find(|r| r["path"] == name.as_str()).unwrap();
        assert_eq!(record["size"], data.len());
        assert_eq!(record["sha256"], hex::encode(sha2::Sha256::digest(&data)));
    }
    assert_eq!(release.len(), 7);

    let slim: Vec<String> = output(&f, &e, "Slim").into_iter().map(|(n, _)| n).collect();
    assert_eq!(slim, ["dist/index.html", "dist/app.js"]);

    let puts: Vec<_> = f
        .aws
        .calls
        .of("s3", "PutObject")
        .into_iter()
        .filter(|c| c.detail["bucket"] == ARTIFACTS)
        .collect();
    assert_eq!(puts.len(), 5);
    for put in puts {
        assert_eq!(put.detail["x-amz-server-side-encryption"], "aws:kms");
        assert_eq!(
            put.detail["x-amz-server-side-encryption-aws-kms-key-id"],
            KMS_KEY
        );
    }
    let summary = run.record.unwrap().results[0]["executionDetails"]["summary"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(summary.contains("step 5 (filter)"), "{summary}");
}

#[tokio::test]
async fn render_lists_every_placeholder_without_a_value_and_writes_nothing() {
    let f = processor(&[]).await;
    let steps = json!([{"render": {"input": "Source", "output": "Rendered", "files": ["taskdef.json", "appspec.yaml"], "values": {"STAGE": "prod"}}}]);
    let e = event(steps, &["Rendered"]);
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&source_files()))
        .unwrap();
    let (kind, message) = failure(&run(&f, e.clone()).await);
    assert_eq!(kind, "ConfigurationError");
    assert!(
        message.contains("IMAGE1_NAME (in taskdef.json)")
            && message.contains("TASK_DEFINITION (in appspec.yaml)"),
        "{message}"
    );
    assert!(!f.aws.s3.exists(ARTIFACTS, &output_key(&e, "Rendered")));
}

#[tokio::test]
async fn configuration_mistakes_are_reported_before_anything_runs() {
    let f = processor(&[]).await;
    let cases = [
        (
            json!([{"publish": {"input": "Source", "bucket": SITE, "prefx": "x"}}]),
            "unknown field `prefx`",
        ),
        (
            json!([{"manifest": {"input": "Source", "output": "Out"}}, {"filter": {"input": "Source", "output": "Out"}}]),
            "written by step 1 and step 2",
        ),
        (
            json!([{"manifest": {"input": "Build", "output": "Out"}}]),
            "no input artifact named `Build`",
        ),
        (
            json!([{"image_definitions": {"output": "Out", "containers": {"web": "Repo/Web:1"}}}]),
            "must be lowercase",
        ),
        (
            json!([{"filter": {"input": "Source", "output": "Out", "include": ["a["]}}]),
            "invalid glob `a[`",
        ),
        (json!([{"deploy": {}}]), "unknown variant `deploy`"),
        (json!([]), "`steps` is empty"),
    ];
    for (steps, expected) in cases {
        let e = event(steps, &["Out"]);
        f.aws
            .s3
            .put_file(ARTIFACTS, &input_key(&e), &zip_of(&source_files()))
            .unwrap();
        let (kind, message) = failure(&run(&f, e.clone()).await);
        assert_eq!(kind, "ConfigurationError", "{message}");
        assert!(
            message.contains(expected),
            "expected `{expected}` in: {message}"
        );
        assert!(!f.aws.s3.exists(ARTIFACTS, &output_key(&e, "Out")));
    }
}

#[tokio::test]
async fn promote_copies_the_artifact_with_the_configured_encryption() {
    let f = processor(&[]).await;
    let steps = json!([{"promote": {"input": "Source", "bucket": "releases", "key": "web/abc123.zip", "encryption": "aws:kms", "kms_key_id": "alias/releases"}}]);
    let e = event(steps, &[]);
    let zip = zip_of(&source_files());
    f.aws.s3.put_file(ARTIFACTS, &input_key(&e), &zip).unwrap();
    let run = run(&f, e).await;
    success_vars(&run);
    assert_eq!(
        std::fs::read(f.aws.s3.object_path("releases", "web/abc123.zip")).unwrap(),
        zip
    );
    let put = f
        .aws
        .calls
        .of("s3", "PutObject")
        .into_iter()
        .find(|c| c.detail["bucket"] == "releases")
        .unwrap();
    assert_eq!(put.detail["x-amz-server-side-encryption"], "aws:kms");
    assert_eq!(
        put.detail["x-amz-server-side-encryption-aws-kms-key-id"],
        "alias/releases"
    );
}

#[tokio::test]
async fn promote_refuses_a_hostile_artifact() {
    let f = processor(&[]).await;
    let e = event(
        json!([{"promote": {"input": "Source", "bucket": "releases", "key": "x.zip"}}]),
        &[],
    );
    f.aws
        .s3
        .put_file(
            ARTIFACTS,
            &input_key(&e),
            &zip_of(&[("../x".into(), b"x".to_vec())]),
        )
        .unwrap();
    let (kind, message) = failure(&run(&f, e).await);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("path traversal"), "{message}");
    assert!(!f.aws.s3.exists("releases", "x.zip"));
}

/// Promotes `zip` and checks it was refused with `expected` and nothing reached the release bucket.
async fn assert_promote_refuses(zip: Vec<u8>, expected: &str) {
    let f = processor(&[]).await;
    let e = event(
        json!([{"promote": {"input": "Source", "bucket": "releases", "key": "x.zip"}}]),
        &[],
    );
    f.aws.s3.put_file(ARTIFACTS, &input_key(&e), &zip).unwrap();
    let (kind, message) = failure(&run(&f, e).await);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains(expected),
        "expected `{expected}` in: {message}"
    );
    assert!(!f.aws.s3.exists("releases", "x.zip"));
    let release_writes = f
        .aws
        .calls
        .all()
        .into_iter()
        .filter(|c| c.service == "s3" && c.detail["bucket"] == "releases")
        .count();
    assert_eq!(release_writes, 0, "the release bucket was touched");
}

#[tokio::test]
async fn promote_checks_every_crc_before_shipping() {
    let mut zip = zip_of(&source_files());
    corrupt_crc(&mut zip, 0);
    assert_promote_refuses(zip, "CRC-32 mismatch").await;
}

#[tokio::test]
async fn promote_refuses_a_local_header_named_differently_from_the_central_directory() {
    let mut zip = zip_of(&[("harmless-name.txt".into(), b"x".to_vec())]);
    let local = local_headers(&zip)[0];
    zip[local + 30..local + 47].copy_from_slice(b"../../evil.txt...");
    assert_promote_refuses(zip, "names a different file").await;
}

#[tokio::test]
async fn promote_refuses_a_bomb_that_declares_a_small_size() {
    // 300 MiB of zeros, declared as 100 bytes in both headers.
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .start_file("bomb.bin", zip::write::SimpleFileOptions::default())
        .unwrap();
    let block = vec![0u8; 1024 * 1024];
    for _ in 0..300 {
        std::io::Write::write_all(&mut writer, &block).unwrap();
    }
    let mut zip = writer.finish().unwrap().into_inner();
    for at in central_headers(&zip) {
        zip[at + 24..at + 28].copy_from_slice(&100u32.to_le_bytes());
    }
    for at in local_headers(&zip) {
        zip[at + 22..at + 26].copy_from_slice(&100u32.to_le_bytes());
    }
    assert_promote_refuses(zip, "expands beyond its declared size").await;
}

#[tokio::test]
async fn render_past_the_memory_budget_fails_cleanly_with_bounded_memory() {
    // 1 MiB of placeholders, each replaced by 10 KiB: 2 GiB rendered, against a budget of a
    // quarter of the function's 512 MiB.
    let f = processor(&[]).await;
    let steps = json!([{"render": {"input": "Source", "output": "Rendered", "files": ["bomb.json"],
        "values": {"X": "x".repeat(10 * 1024)}}}]);
    let e = event(steps, &["Rendered"]);
    let template = "{{X}}".repeat(200 * 1024).into_bytes();
    let zip = zip_of(&[("bomb.json".into(), template)]);
    f.aws.s3.put_file(ARTIFACTS, &input_key(&e), &zip).unwrap();
    let run = run(&f, e.clone()).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("`bomb.json` would grow past 128 MiB once rendered"),
        "{message}"
    );
    let peak_mib = run.invocations[0].peak_rss_kib.unwrap_or(0) / 1024;
    assert!(
        peak_mib < 400,
        "peak RSS {peak_mib} MiB: memory was not bounded"
    );
    assert!(!f.aws.s3.exists(ARTIFACTS, &output_key(&e, "Rendered")));
}
