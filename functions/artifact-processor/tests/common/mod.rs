//! The artifact-processor binary behind the Runtime API host, and site artifacts to feed it.
#![allow(dead_code)]

use pipeline_local::job_invocation::JobRun;
#[allow(unused_imports)]
pub use pipeline_testkit::zip_records::{central_headers, local_headers};
use pipeline_testkit::{JobEventBuilder, JobRunAssertions, LocalFunction};
use serde_json::Value;
use std::time::Duration;

pub const ARTIFACTS: &str = "codepipeline-artifacts";
pub const SITE: &str = "www-example";
pub const KMS_KEY: &str =
    "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";

pub async fn processor(env: &[(&str, &str)]) -> LocalFunction {
    let f = LocalFunction::start(
        "artifact-processor",
        env!("CARGO_BIN_EXE_artifact-processor"),
        Duration::from_secs(120),
        env,
    )
    .await
    .expect("function host starts");
    for bucket in [ARTIFACTS, SITE, "releases"] {
        f.aws.s3.create_bucket(bucket).expect("bucket");
    }
    f
}

pub async fn run(f: &LocalFunction, event: Value) -> JobRun {
    f.run(event).await.expect("a job event")
}

/// A job with the given steps, input `Source` (stored at `in/<id>.zip`) and the named outputs.
pub fn event(steps: Value, outputs: &[&str]) -> Value {
    let id = pipeline_testkit::new_job_id();
    let mut builder =
        JobEventBuilder::new("artifact-processor", &serde_json::json!({ "steps": steps }))
            .input("Source", ARTIFACTS, &format!("in/{id}.zip"))
            .kms_key(KMS_KEY);
    for name in outputs {
        builder = builder.output(name, ARTIFACTS, &format!("out/{id}/{name}.zip"));
    }
    builder.build()
}

pub fn input_key(event: &Value) -> String {
    event["CodePipeline.job"]["data"]["inputArtifacts"][0]["location"]["s3Location"]["objectKey"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn output_key(event: &Value, name: &str) -> String {
    let outputs = event["CodePipeline.job"]["data"]["outputArtifacts"]
        .as_array()
        .unwrap();
    let artifact = outputs.iter().find(|a| a["name"] == name).unwrap();
    artifact["location"]["s3Location"]["objectKey"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn zip_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    pipeline_local::zips::zip_files(files).expect("zip")
}

pub fn read_zip(bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    pipeline_local::zips::unzip(bytes).expect("a valid zip")
}

/// A site of `n` files of several kinds, each a few hundred bytes; `version` changes content.
pub fn site(n: usize, version: u32) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let name = match i % 4 {
                0 if i == 0 => "index.html".to_string(),
                0 => format!("docs/page-{i:04}.html"),
                1 => format!("assets/app-{i:04}.js"),
                2 => format!("assets/style-{i:04}.css"),
                _ => format!("img/pic-{i:04}.png"),
            };
            (
                name,
                format!("file {i:04} v{version} {}", "x".repeat(200 + i % 50)).into_bytes(),
            )
        })
        .collect()
}

pub fn success_vars(run: &JobRun) -> serde_json::Map<String, Value> {
    run.expect_variables()
}

/// The failure of a job that reported exactly once.
pub fn failure(run: &JobRun) -> (String, String) {
    run.only_result();
    run.expect_failure()
}

pub fn publish_step(prefix: &str) -> Value {
    serde_json::json!({"publish": {
        "input": "Source", "bucket": SITE, "prefix": prefix, "delete_stale": true,
        "cache_control": {"index.html": "no-cache", "assets/**": "public, max-age=31536000, immutable"},
        "default_cache_control": "public, max-age=300"
    }})
}

/// The same wrong CRC-32 in both headers of entry `index`: only reading its data can tell.
pub fn corrupt_crc(zip: &mut [u8], index: usize) {
    let central = central_headers(zip)[index];
    let local = local_headers(zip)[index];
    zip[central + 16] ^= 0xFF;
    zip[local + 14] ^= 0xFF;
}
