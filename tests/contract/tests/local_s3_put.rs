//! The local S3's `PutObject`: the common case is written by pipeline-local's own path, the
//! rest by `s3s-fs`; both must leave the same object, and refuse the same bad requests
//! without writing anything.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;
use aws_smithy_types::base64;
use md5::{Digest as _, Md5};
use pipeline_local::endpoints::LocalAws;
use pipeline_testkit::{s3_client, CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY};
use sha2::Sha256;

const BUCKET: &str = "put-bucket";

async fn local_s3() -> (LocalAws, aws_sdk_s3::Client) {
    let aws = LocalAws::start(None).await.unwrap();
    aws.register_credentials(CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY);
    aws.s3.create_bucket(BUCKET).unwrap();
    let client = s3_client(&aws.s3_url(), CLIENT_ACCESS_KEY, CLIENT_SECRET_KEY);
    (aws, client)
}

fn content() -> Vec<u8> {
    (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

/// Files in the S3 folder that are neither objects nor `s3s-fs`'s records of them.
fn stray_files(aws: &LocalAws) -> Vec<String> {
    std::fs::read_dir(aws.s3.root())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp") || name.ends_with(".part"))
        .collect()
}

#[tokio::test]
async fn the_fast_and_the_general_put_store_the_same_object() {
    let (aws, client) = local_s3().await;
    let data = content();
    let md5 = base64::encode(Md5::digest(&data));
    let sha256 = base64::encode(Sha256::digest(&data));
    for (key, general) in [("site/fast.js", false), ("site/general.js", true)] {
        let mut put = client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .content_type("text/javascript; charset=utf-8")
            .cache_control("public, max-age=300")
            .metadata("sha256", "abc")
            .content_md5(&md5)
            .checksum_sha256(&sha256)
            .body(ByteStream::from(data.clone()));
        if general {
            // A conditional write is left to s3s-fs.
            put = put.if_none_match("*");
        }
        let out = put.send().await.unwrap();
        assert_eq!(out.checksum_sha256(), Some(sha256.as_str()));
    }
    let head = |key: &'static str| {
        client
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
    };
    let (fast, general) = (
        head("site/fast.js").await.unwrap(),
        head("site/general.js").await.unwrap(),
    );
    assert_eq!(fast.e_tag(), general.e_tag());
    assert_eq!(
        fast.e_tag().unwrap().trim_matches('"'),
        hex::encode(Md5::digest(&data))
    );
    assert_eq!(fast.content_type(), general.content_type());
    assert_eq!(fast.cache_control(), Some("public, max-age=300"));
    assert_eq!(fast.cache_control(), general.cache_control());
    assert_eq!(fast.metadata(), general.metadata());
    assert_eq!(fast.metadata().unwrap()["sha256"], "abc");
    assert_eq!(fast.checksum_sha256(), general.checksum_sha256());
    assert_eq!(fast.content_length(), Some(data.len() as i64));
    let body = client
        .get_object()
        .bucket(BUCKET)
        .key("site/fast.js")
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(body.as_ref(), data.as_slice());
    let listed = client
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("site/")
        .send()
        .await
        .unwrap();
    let etags: Vec<_> = listed
        .contents()
        .iter()
        .map(|o| o.e_tag().map(str::to_owned))
        .collect();
    assert_eq!(etags.len(), 2);
    assert_eq!(
        etags[0], etags[1],
        "the listing has the fast put's ETag too"
    );
    assert!(stray_files(&aws).is_empty(), "{:?}", stray_files(&aws));
}

#[tokio::test]
async fn a_put_whose_bytes_differ_from_its_digests_is_refused_and_writes_nothing() {
    let (aws, client) = local_s3().await;
    let data = content();
    let other = base64::encode(Md5::digest(b"other bytes"));
    let refused = client
        .put_object()
        .bucket(BUCKET)
        .key("a.bin")
        .content_md5(other)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(refused.raw_response().unwrap().status().as_u16(), 400);
    assert!(format!("{refused:?}").contains("BadDigest"), "{refused:?}");

    let refused = client
        .put_object()
        .bucket(BUCKET)
        .key("b.bin")
        .checksum_sha256(base64::encode(Sha256::digest(b"other bytes")))
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("BadDigest"), "{refused:?}");

    for key in ["a.bin", "b.bin"] {
        assert!(!aws.s3.exists(BUCKET, key), "{key} was written");
    }
    assert!(stray_files(&aws).is_empty(), "{:?}", stray_files(&aws));
}

#[tokio::test]
async fn a_put_into_a_missing_bucket_or_outside_a_plain_key_is_not_written_there() {
    let (aws, client) = local_s3().await;
    let refused = client
        .put_object()
        .bucket("no-such-bucket")
        .key("a.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{refused:?}").contains("NoSuchBucket"),
        "{refused:?}"
    );
    assert!(!aws.s3.root().join("no-such-bucket").exists());

    // `..` is a name to S3 and "up" to a folder: refused, never written outside the bucket.
    for key in ["../escape.txt", "a/../../escape.txt", "./escape.txt"] {
        let refused = client
            .put_object()
            .bucket(BUCKET)
            .key(key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert!(
            format!("{refused:?}").contains("InvalidArgument"),
            "{key}: {refused:?}"
        );
    }
    // A hidden segment (`.well-known`) is an ordinary key.
    client
        .put_object()
        .bucket(BUCKET)
        .key(".well-known/security.txt")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert!(aws.s3.exists(BUCKET, ".well-known/security.txt"));
    assert!(!aws.s3.root().join("escape.txt").exists());
    assert!(!aws.s3.root().parent().unwrap().join("escape.txt").exists());
}
