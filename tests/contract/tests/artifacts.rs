//! Artifact IO through the fixture's `copy` behaviour: streaming read and write, SSE-KMS,
//! the job's own credentials, and every kind of hostile zip refused with nothing uploaded.

mod common;

use common::*;
use pipeline_local::endpoints::ROLE_ACCESS_KEY;
use pipeline_testkit::noise;
use std::time::Duration;

fn read_back(h: &pipeline_testkit::LocalFunction, key: &str) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(h.aws.s3.object_path(BUCKET, key)).expect("output artifact exists");
    pipeline_local::zips::unzip(bytes).expect("output is a valid zip")
}

#[tokio::test]
async fn copies_an_artifact_through_reader_and_writer_with_multipart_and_sse_kms() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let key_id = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let event = with_kms(copy_event(), key_id);
    let big = noise(12 * 1024 * 1024, 7); // incompressible: the output needs two parts
    let files: Vec<(&str, &[u8])> = vec![
        ("index.html", b"<h1>hi</h1>"),
        ("assets/app.js", b"console.log(1)"),
        ("empty.txt", b""),
        ("data/big.bin", &big),
    ];
    h.aws
        .s3
        .put_file(BUCKET, &input_key(&event), &zip_with(&files))
        .unwrap();

    let run = run(&h, event.clone()).await;
    assert!(run.succeeded(), "{:?}", run.record);
    let result = only_result(&run);
    assert_eq!(result["outputVariables"]["Files"], "4");

    let back = read_back(&h, &output_key(&event));
    let expected: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect();
    assert_eq!(back, expected);

    let creates = h.aws.calls.of("s3", "CreateMultipartUpload");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].detail["x-amz-server-side-encryption"], "aws:kms");
    assert_eq!(
        creates[0].detail["x-amz-server-side-encryption-aws-kms-key-id"],
        key_id
    );
    assert_eq!(h.aws.calls.count("s3", "UploadPart"), 2);
    assert_eq!(h.aws.calls.count("s3", "CompleteMultipartUpload"), 1);
}

#[tokio::test]
async fn small_output_is_one_put_object_with_sse_kms_and_no_key_id_without_encryption_key() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let event = copy_event();
    h.aws
        .s3
        .put_file(
            BUCKET,
            &input_key(&event),
            &zip_with(&[("a.txt", b"hello")]),
        )
        .unwrap();
    assert!(run(&h, event.clone()).await.succeeded());
    let puts = h.aws.calls.of("s3", "PutObject");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0].detail["x-amz-server-side-encryption"], "aws:kms");
    assert!(puts[0]
        .detail
        .get("x-amz-server-side-encryption-aws-kms-key-id")
        .is_none());
    assert_eq!(
        read_back(&h, &output_key(&event)),
        [("a.txt".to_string(), b"hello".to_vec())]
    );
}

#[tokio::test]
async fn artifact_io_signs_with_the_job_credentials_never_the_function_role() {
    let h = harness(Duration::from_secs(30), &[]).await;
    let event = copy_event();
    h.aws
        .s3
        .put_file(
            BUCKET,
            &input_key(&event),
            &zip_with(&[("a.txt", b"hello")]),
        )
        .unwrap();
    let run = run(&h, event).await;
    assert!(run.succeeded());
    let job_key = run.record.unwrap().data["artifactCredentials"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let s3_calls: Vec<_> = h
        .aws
        .calls
        .all()
        .into_iter()
        .filter(|c| c.service == "s3")
        .collect();
    assert!(s3_calls.len() >= 4);
    for call in &s3_calls {
        assert_eq!(
            call.access_key.as_deref(),
            Some(job_key.as_str()),
            "{} signed with {:?}",
            call.operation,
            call.access_key
        );
    }
    // CodePipeline itself is called with the function role.
    for call in h.aws.calls.of("codepipeline", "PutJobSuccessResult") {
        assert_eq!(call.access_key.as_deref(), Some(ROLE_ACCESS_KEY));
    }
}

#[tokio::test]
async fn refuses_zip_slip() {
    assert_refused(
        zip_with(&[("ok.txt", b"1"), ("../../evil.sh", b"rm -rf /")]),
        "path traversal",
    )
    .await;
}

#[tokio::test]
async fn refuses_absolute_paths() {
    assert_refused(zip_with(&[("/etc/cron.d/evil", b"x")]), "absolute path").await;
}

#[tokio::test]
async fn refuses_backslash_paths() {
    assert_refused(zip_with(&[("..\\..\\evil.exe", b"x")]), "backslash").await;
}

#[tokio::test]
async fn refuses_symlink_entries() {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    writer
        .add_symlink(
            "passwd",
            "/etc/passwd",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    assert_refused(writer.finish().unwrap().into_inner(), "symbolic link").await;
}

#[tokio::test]
async fn refuses_a_bomb_declaring_ten_gib() {
    let mut zip = zip_with(&[
        ("a.bin", &[0u8; 1000]),
        ("b.bin", &[0u8; 1000]),
        ("c.bin", &[0u8; 1000]),
    ]);
    // Each entry claims 3.33 GiB uncompressed: 10 GiB in all.
    for at in central_headers(&zip) {
        zip[at + 24..at + 28].copy_from_slice(&0xD555_5555u32.to_le_bytes());
    }
    assert_refused(zip, "more than the limit of 4294967296 bytes").await;
}

#[tokio::test]
async fn refuses_data_that_expands_beyond_its_declared_size() {
    let mut zip = zip_with(&[("lies.bin", &vec![0u8; 4 * 1024 * 1024])]);
    for at in central_headers(&zip) {
        zip[at + 24..at + 28].copy_from_slice(&1000u32.to_le_bytes());
    }
    for at in local_headers(&zip) {
        zip[at + 22..at + 26].copy_from_slice(&1000u32.to_le_bytes());
    }
    assert_refused(zip, "expands beyond its declared size").await;
}

#[tokio::test]
async fn refuses_overlapping_entries() {
    let mut zip = zip_with(&[("first.txt", b"aaaa"), ("second.txt", b"bbbb")]);
    let headers = central_headers(&zip);
    // Point the second entry at the first entry's local header.
    zip[headers[1] + 42..headers[1] + 46].copy_from_slice(&0u32.to_le_bytes());
    assert_refused(zip, "overlaps").await;
}

#[tokio::test]
async fn refuses_two_hundred_thousand_entries() {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..200_000 {
        writer.start_file(format!("f{i}"), options).unwrap();
    }
    assert_refused(
        writer.finish().unwrap().into_inner(),
        "declares 200000 entries, more than the limit of 100000",
    )
    .await;
}

#[tokio::test]
async fn refuses_an_object_that_is_not_a_zip() {
    assert_refused(
        b"this is not a zip file at all".to_vec(),
        "not a valid zip archive",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_corrupted_entry_by_its_crc() {
    let mut zip = zip_with(&[("a.txt", b"hello hello hello")]);
    // The same wrong CRC in both headers: only reading the data can tell.
    for at in central_headers(&zip) {
        zip[at + 16] ^= 0xFF;
    }
    for at in local_headers(&zip) {
        zip[at + 14] ^= 0xFF;
    }
    assert_refused(zip, "CRC-32 mismatch").await;
}

#[tokio::test]
async fn refuses_an_entry_with_a_bomb_ratio() {
    // 2 MiB of zeros deflates to about 2 KiB: a ratio near 1000:1.
    assert_refused(
        zip_with(&[("zeros.bin", &vec![0u8; 2 * 1024 * 1024])]),
        "ratio over the limit of 200:1",
    )
    .await;
}

#[tokio::test]
async fn a_central_directory_larger_than_the_memory_budget_is_refused_before_it_is_read() {
    // 1 MiB of function memory: a quarter of it, 256 KiB, for the central directory.
    let h = harness(
        Duration::from_secs(30),
        &[("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1")],
    )
    .await;
    let long = "n".repeat(180);
    let names: Vec<String> = (0..3000).map(|i| format!("{long}/{i:05}")).collect();
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b""[..])).collect();
    let event = copy_event();
    h.aws
        .s3
        .put_file(BUCKET, &input_key(&event), &zip_with(&files))
        .unwrap();
    let run = run(&h, event.clone()).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(
        message.contains("more than the 262144 bytes this function's memory allows"),
        "{message}"
    );
    assert!(!h.aws.s3.exists(BUCKET, &output_key(&event)));
}

#[tokio::test]
async fn at_the_deadline_the_upload_in_flight_is_cancelled_and_its_multipart_upload_aborted() {
    // 8 s timeout: the runner stops the job 5 s before, while the first part hangs.
    let h = harness(Duration::from_secs(8), &[]).await;
    let event = copy_event();
    let zip = zip_with(&[("big.bin", &noise(12 * 1024 * 1024, 7))]);
    h.aws.s3.put_file(BUCKET, &input_key(&event), &zip).unwrap();
    h.aws.faults.add(
        pipeline_local::faults::Fault::new("s3", "UploadPart", pipeline_local::service::HANG, 0)
            .times(1),
    );
    let run = run(&h, event.clone()).await;
    let (kind, message) = failure(&run);
    assert_eq!(kind, "JobFailed");
    assert!(message.contains("ran out of time"), "{message}");
    let reported_at = h
        .aws
        .calls
        .of("codepipeline", "PutJobFailureResult")
        .first()
        .map(|c| c.at_ms)
        .expect("a failure report");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let aborts = h.aws.calls.of("s3", "AbortMultipartUpload");
    assert_eq!(aborts.len(), 1, "the open multipart upload is aborted");
    assert_eq!(aborts[0].status, 204);
    assert_eq!(h.aws.calls.count("s3", "CompleteMultipartUpload"), 0);
    let late_parts = h
        .aws
        .calls
        .of("s3", "UploadPart")
        .iter()
        .filter(|c| c.at_ms > reported_at)
        .count();
    assert_eq!(
        late_parts, 0,
        "a part landed after the failure was reported"
    );
    assert!(!h.aws.s3.exists(BUCKET, &output_key(&event)));
}

/// A seeded object carries its ETag like one written through the protocol, so the local S3
/// serves a GET without hashing the whole object again (which made the local S3, not the
/// function, the cost of every artifact benchmark). Pinned by changing the bytes on disk
/// behind the store's back: the recorded ETag is still the one served.
#[tokio::test]
async fn seeded_objects_are_served_with_their_recorded_etag_and_ranges_read_right() {
    use md5::{Digest as _, Md5};
    let h = harness(Duration::from_secs(30), &[]).await;
    let data = noise(3 * 1024 * 1024 + 17, 11);
    let source = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(source.path(), &data).unwrap();
    h.aws
        .s3
        .put_path(BUCKET, "seeded/path.bin", source.path())
        .unwrap();
    h.aws.s3.put_file(BUCKET, "seeded/file.bin", &data).unwrap();
    let s3 = h.s3_client();
    let md5 = hex::encode(Md5::digest(&data));
    for key in ["seeded/path.bin", "seeded/file.bin"] {
        let head = s3
            .head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.e_tag(), Some(format!("\"{md5}\"").as_str()), "{key}");
    }
    let mut tampered = data.clone();
    tampered[0] ^= 0xFF;
    std::fs::write(h.aws.s3.object_path(BUCKET, "seeded/file.bin"), &tampered).unwrap();
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("seeded/file.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(format!("\"{md5}\"").as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), tampered);

    // Ranged reads across the local S3's read blocks come back byte for byte.
    for (start, end) in [
        (0u64, 0u64),
        (262_143, 262_145),
        (1_000_000, 3 * 1024 * 1024 + 16),
    ] {
        let got = s3
            .get_object()
            .bucket(BUCKET)
            .key("seeded/path.bin")
            .range(format!("bytes={start}-{end}"))
            .send()
            .await
            .unwrap();
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(
            &body[..],
            &data[start as usize..=end as usize],
            "{start}-{end}"
        );
    }
}
