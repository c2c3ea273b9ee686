//! `publish` against moto_server, an independent implementation of S3 and CloudFront: the
//! function's S3 and CloudFront endpoints point there, CodePipeline stays local. moto lists
//! ETags, so unchanged files are recognised by MD5 here (the local S3 makes the function HEAD).

mod common;

use common::*;
use pipeline_testkit::MotoServer;
use serde_json::{json, Value};

#[tokio::test]
async fn republishing_on_moto_uploads_changes_deletes_removals_and_invalidates() {
    let moto = MotoServer::start();
    let distribution = moto.cli(&[
        "cloudfront",
        "create-distribution",
        "--origin-domain-name",
        "www-example.s3.amazonaws.com",
    ]);
    let distribution_id = distribution["Distribution"]["Id"]
        .as_str()
        .unwrap()
        .to_string();
    let env = [
        ("AWS_ENDPOINT_URL_S3", moto.url.as_str()),
        ("AWS_ENDPOINT_URL_CLOUDFRONT", moto.url.as_str()),
    ];
    let f = processor(&env).await;
    let s3 = pipeline_testkit::s3_client(&moto.url, "testing", "testing");
    for bucket in [ARTIFACTS, SITE] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
    }
    let mut step = publish_step("");
    step["publish"]["cloudfront_distribution_id"] = json!(distribution_id);
    step["publish"]["invalidate_all_over"] = json!(20);

    let mut files = site(300, 1);
    let put_input = |e: &Value, files: &[(String, Vec<u8>)]| {
        let (s3, key, body) = (s3.clone(), input_key(e), zip_of(files));
        async move {
            s3.put_object()
                .bucket(ARTIFACTS)
                .key(key)
                .body(body.into())
                .send()
                .await
                .unwrap()
        }
    };
    let first = event(json!([step.clone()]), &[]);
    put_input(&first, &files).await;
    let vars = success_vars(&run(&f, first).await);
    assert_eq!(vars["FilesPublished"], "300");
    assert!(vars.contains_key("InvalidationId"));

    for i in (10..110).step_by(10) {
        files[i].1 = String::from_utf8(files[i].1.clone())
            .unwrap()
            .replace(" v1 ", " v2 ")
            .into_bytes();
    }
    files.drain(290..295);
    let second = event(json!([step]), &[]);
    put_input(&second, &files).await;
    let vars = success_vars(&run(&f, second).await);
    assert_eq!(vars["FilesPublished"], "10");
    assert_eq!(vars["FilesDeleted"], "5");
    let invalidation_id = vars["InvalidationId"].as_str().unwrap().to_string();

    let listed = s3
        .list_objects_v2()
        .bucket(SITE)
        .max_keys(1000)
        .send()
        .await
        .unwrap();
    // 295 files and the release record.
    assert_eq!(listed.key_count(), Some(296));
    let head = s3
        .head_object()
        .bucket(SITE)
        .key("index.html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/html; charset=utf-8"));
    assert_eq!(head.cache_control(), Some("no-cache"));
    let body = s3
        .get_object()
        .bucket(SITE)
        .key(&files[10].0)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(body.as_ref(), files[10].1.as_slice());

    // 10 changed + 5 deleted paths: under the threshold of 20, so each path is listed.
    let invalidation = moto.cli(&[
        "cloudfront",
        "get-invalidation",
        "--distribution-id",
        &distribution_id,
        "--id",
        &invalidation_id,
    ]);
    let paths = invalidation["Invalidation"]["InvalidationBatch"]["Paths"]["Items"]
        .as_array()
        .unwrap();
    assert_eq!(paths.len(), 15, "{paths:?}");
    assert!(paths.iter().all(|p| p.as_str().unwrap().starts_with('/')));
}
