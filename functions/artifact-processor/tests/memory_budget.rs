//! Everything a step holds per archive entry counts against one budget, a quarter of the
//! function's memory: an archive of long names fails with a message naming the budget before
//! the process could be killed, with bounded memory, and writes nothing.

mod common;

use common::*;
use serde_json::json;

/// 10,000 files whose names total about 20 MB: under the 32 MiB a 128 MiB function allows for
/// the central directory alone, over it once the names are held twice (the collision check,
/// the manifest, the output's central directory).
fn long_named_files() -> Vec<(String, Vec<u8>)> {
    let long = "n".repeat(1990);
    (0..10_000)
        .map(|i| (format!("d{i:05}/{long}"), b"x".to_vec()))
        .collect()
}

#[tokio::test]
async fn manifest_of_long_names_on_a_128_mib_function_fails_naming_the_budget_with_bounded_memory()
{
    let f = processor(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).await;
    // The process's own footprint, from a small job of the same step.
    let small = event(
        json!([{"manifest": {"input": "Source", "output": "Release"}}]),
        &["Release"],
    );
    f.aws
        .s3
        .put_file(
            ARTIFACTS,
            &input_key(&small),
            &zip_of(&[("index.html".into(), b"<h1>hi</h1>".to_vec())]),
        )
        .unwrap();
    let base = run(&f, small).await;
    success_vars(&base);
    let base_kib = base.invocations[0]
        .peak_rss_kib
        .expect("peak RSS of the small job");

    let e = event(
        json!([{"manifest": {"input": "Source", "output": "Release"}}]),
        &["Release"],
    );
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&long_named_files()))
        .unwrap();
    let run = run(&f, e.clone()).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("over the budget of 33554432 bytes"),
        "the message names the budget: {message}"
    );
    let peak_kib = run.invocations[0].peak_rss_kib.expect("peak RSS");
    let budget_kib = 32 * 1024;
    assert!(
        peak_kib <= base_kib + budget_kib,
        "peak RSS {peak_kib} KiB is over the base {base_kib} KiB plus the budget {budget_kib} KiB"
    );
    assert!(
        !f.aws.s3.exists(ARTIFACTS, &output_key(&e, "Release")),
        "nothing was written"
    );
}

#[tokio::test]
async fn a_manifest_the_budget_allows_is_still_written_whole() {
    // The same 10,000 files with short names fit a 128 MiB function easily.
    let f = processor(&[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")]).await;
    let e = event(
        json!([{"manifest": {"input": "Source", "output": "Release"}}]),
        &["Release"],
    );
    let files: Vec<(String, Vec<u8>)> = (0..10_000)
        .map(|i| (format!("assets/f{i:05}.js"), format!("{i}").into_bytes()))
        .collect();
    f.aws
        .s3
        .put_file(ARTIFACTS, &input_key(&e), &zip_of(&files))
        .unwrap();
    let run = run(&f, e.clone()).await;
    let vars = success_vars(&run);
    let written = read_zip(
        std::fs::read(f.aws.s3.object_path(ARTIFACTS, &output_key(&e, "Release"))).unwrap(),
    );
    let manifest = &written
        .iter()
        .find(|(name, _)| name == "manifest.json")
        .expect("manifest.json")
        .1;
    let listed: Vec<serde_json::Value> = serde_json::from_slice(manifest).unwrap();
    assert_eq!(listed.len(), 10_000);
    assert_eq!(listed[0]["path"], "assets/f00000.js");
    assert_eq!(
        vars["ArtifactSha256"],
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(manifest))
    );
}
