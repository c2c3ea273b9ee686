//! `PutObject` for the common case, in the files `s3s-fs` reads: the body is taken in memory
//! (bounded), hashed and checked as S3 checks it, then the object, its attributes and its
//! internal information are written by one blocking task. `s3s-fs` writes the same three
//! files through `tokio::fs`, a hop through the blocking pool for every create, write, flush,
//! rename and folder; at thousands of small objects those hops, not the disk, set the pace of
//! every publish benchmark, and every client alike paid them.
//!
//! Anything unusual (conditional writes, folder keys, hidden path segments, unknown storage
//! classes, bodies without a length or over [`IN_MEMORY_MAX`]) is left to `s3s-fs`.

use futures_util::StreamExt;
use md5::{Digest as _, Md5};
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bodies up to this size are taken in memory.
pub(super) const IN_MEMORY_MAX: i64 = 16 * 1024 * 1024;

static TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// Every object's files are created and renamed in the root folder (`s3s-fs`'s layout), whose
/// directory lock the kernel takes for each. Writers that meet there spin in the kernel for it
/// (a profile of a 3,000-file publish: a fifth of all CPU in `rwsem_spin_on_owner`); taking
/// turns here, asleep, costs nothing of that.
static ROOT_FOLDER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// True when this `PutObject` is one the fast path writes exactly as `s3s-fs` would.
pub(super) fn handles(root: &Path, input: &PutObjectInput) -> bool {
    input.if_match.is_none()
        && input.if_none_match.is_none()
        && input.body.is_some()
        && input
            .content_length
            .is_some_and(|len| (0..=IN_MEMORY_MAX).contains(&len))
        && input
            .storage_class
            .as_ref()
            .is_none_or(|c| ["STANDARD", "REDUCED_REDUNDANCY"].contains(&c.as_str()))
        && super::plain_object_path(root, &input.bucket, &input.key).is_some()
}

/// The hashers S3 runs for a request: the ones whose value it sent, and the one it named.
fn hashers(input: &PutObjectInput) -> S3Result<s3s::checksum::ChecksumHasher> {
    let mut checksum = s3s::checksum::ChecksumHasher::default();
    if input.checksum_crc32.is_some() {
        checksum.crc32 = Some(Default::default());
    }
    if input.checksum_crc32c.is_some() {
        checksum.crc32c = Some(Default::default());
    }
    if input.checksum_sha1.is_some() {
        checksum.sha1 = Some(Default::default());
    }
    if input.checksum_sha256.is_some() {
        checksum.sha256 = Some(Default::default());
    }
    if input.checksum_crc64nvme.is_some() {
        checksum.crc64nvme = Some(Default::default());
    }
    if let Some(algorithm) = &input.checksum_algorithm {
        match algorithm.as_str() {
            ChecksumAlgorithm::CRC32 => checksum.crc32 = Some(Default::default()),
            ChecksumAlgorithm::CRC32C => checksum.crc32c = Some(Default::default()),
            ChecksumAlgorithm::SHA1 => checksum.sha1 = Some(Default::default()),
            ChecksumAlgorithm::SHA256 => checksum.sha256 = Some(Default::default()),
            ChecksumAlgorithm::CRC64NVME => checksum.crc64nvme = Some(Default::default()),
            _ => return Err(s3_error!(NotImplemented, "Unsupported checksum algorithm")),
        }
    }
    Ok(checksum)
}

/// Checksums sent after the body (aws-chunked trailers) count as if sent in the headers.
fn take_trailers(req: &mut S3Request<PutObjectInput>) -> S3Result<()> {
    let Some(trailers) = req.trailing_headers.take().and_then(|t| t.take()) else {
        return Ok(());
    };
    let input = &mut req.input;
    let read = |name: &str| -> S3Result<Option<String>> {
        trailers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map(str::to_owned)
                    .map_err(|_| s3_error!(InvalidArgument))
            })
            .transpose()
    };
    if let Some(v) = read("x-amz-checksum-crc32")? {
        input.checksum_crc32 = Some(v);
    }
    if let Some(v) = read("x-amz-checksum-crc32c")? {
        input.checksum_crc32c = Some(v);
    }
    if let Some(v) = read("x-amz-checksum-sha1")? {
        input.checksum_sha1 = Some(v);
    }
    if let Some(v) = read("x-amz-checksum-sha256")? {
        input.checksum_sha256 = Some(v);
    }
    if let Some(v) = read("x-amz-checksum-crc64nvme")? {
        input.checksum_crc64nvme = Some(v);
    }
    Ok(())
}

/// Refuses content whose digests differ from the ones the client sent.
fn verify(input: &PutObjectInput, md5: &str, computed: &Checksum) -> S3Result<()> {
    if let Some(content_md5) = &input.content_md5 {
        let sent = aws_smithy_types::base64::decode(content_md5)
            .map_err(|_| s3_error!(InvalidDigest, "Content-MD5 is not base64"))?;
        if hex::encode(sent) != md5 {
            return Err(s3_error!(BadDigest, "content_md5 mismatch"));
        }
    }
    let pairs = [
        ("crc32", &computed.checksum_crc32, &input.checksum_crc32),
        ("crc32c", &computed.checksum_crc32c, &input.checksum_crc32c),
        ("sha1", &computed.checksum_sha1, &input.checksum_sha1),
        ("sha256", &computed.checksum_sha256, &input.checksum_sha256),
        (
            "crc64nvme",
            &computed.checksum_crc64nvme,
            &input.checksum_crc64nvme,
        ),
    ];
    for (name, computed, sent) in pairs {
        if computed != sent {
            return Err(s3_error!(
                BadDigest,
                "checksum_{name} mismatch: expected `{}`, got `{}`",
                sent.as_deref().unwrap_or_default(),
                computed.as_deref().unwrap_or_default()
            ));
        }
    }
    Ok(())
}

/// The object's attributes as `s3s-fs` keeps them (`.bucket-….object-….metadata.json`).
fn attributes(input: &PutObjectInput) -> Value {
    let mut attributes = Map::new();
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            attributes.insert(name.into(), value);
        }
    };
    put("user_metadata", input.metadata.as_ref().map(|m| json!(m)));
    put(
        "content_encoding",
        input.content_encoding.as_ref().map(|v| json!(v)),
    );
    put(
        "content_type",
        input.content_type.as_ref().map(|v| json!(v)),
    );
    put(
        "content_disposition",
        input.content_disposition.as_ref().map(|v| json!(v)),
    );
    put(
        "content_language",
        input.content_language.as_ref().map(|v| json!(v)),
    );
    put(
        "cache_control",
        input.cache_control.as_ref().map(|v| json!(v)),
    );
    put(
        "expires",
        input.expires.as_ref().and_then(|ts| {
            let mut buf = Vec::new();
            ts.format(TimestampFormat::DateTime, &mut buf).ok()?;
            Some(json!(String::from_utf8_lossy(&buf)))
        }),
    );
    put(
        "website_redirect_location",
        input.website_redirect_location.as_ref().map(|v| json!(v)),
    );
    Value::Object(attributes)
}

/// Writes `bytes` to `path` through a temporary file in `root`, so a reader never sees half.
fn write_whole(root: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = root.join(format!(
        ".tmp-put.{}.{}.internal.part",
        std::process::id(),
        TEMPORARY.fetch_add(1, Ordering::Relaxed)
    ));
    let written = std::fs::write(&temporary, bytes).and_then(|()| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::rename(&temporary, path)
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

/// What one `PutObject` writes.
struct Written {
    object: PathBuf,
    data: Vec<u8>,
    attributes_path: PathBuf,
    attributes: Vec<u8>,
    info_path: PathBuf,
    info: Vec<u8>,
}

pub(super) async fn put_object(
    root: &Path,
    mut req: S3Request<PutObjectInput>,
) -> S3Result<S3Response<PutObjectOutput>> {
    let bucket = req.input.bucket.clone();
    let key = req.input.key.clone();
    let Some(object) = super::plain_object_path(root, &bucket, &key) else {
        return Err(s3_error!(InvalidArgument, "not a plain key"));
    };
    if !root.join(&bucket).is_dir() {
        return Err(s3_error!(NoSuchBucket));
    }
    let mut hashers = hashers(&req.input)?;
    let expected = req.input.content_length.unwrap_or(0).max(0) as usize;
    let Some(mut body) = req.input.body.take() else {
        return Err(s3_error!(IncompleteBody));
    };
    let mut data = Vec::with_capacity(expected);
    let mut md5 = Md5::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| s3_error!(IncompleteBody, "{e}"))?;
        if data.len() + chunk.len() > expected {
            return Err(s3_error!(
                IncompleteBody,
                "the body is longer than its Content-Length"
            ));
        }
        md5.update(&chunk);
        hashers.update(&chunk);
        data.extend_from_slice(&chunk);
    }
    if data.len() != expected {
        return Err(s3_error!(
            IncompleteBody,
            "the body is shorter than its Content-Length"
        ));
    }
    let md5 = hex::encode(md5.finalize());
    take_trailers(&mut req)?;
    let checksum = hashers.finalize();
    verify(&req.input, &md5, &checksum)?;

    let mut info = Map::new();
    info.insert("e_tag".into(), json!(md5));
    for (name, value) in [
        ("checksum_crc32", &checksum.checksum_crc32),
        ("checksum_crc32c", &checksum.checksum_crc32c),
        ("checksum_sha1", &checksum.checksum_sha1),
        ("checksum_sha256", &checksum.checksum_sha256),
        ("checksum_crc64nvme", &checksum.checksum_crc64nvme),
    ] {
        if let Some(value) = value {
            info.insert(name.into(), json!(value));
        }
    }
    let written = Written {
        object,
        data,
        attributes_path: super::object_store::metadata_path(root, &bucket, &key),
        attributes: attributes(&req.input).to_string().into_bytes(),
        info_path: super::object_store::internal_info_path(root, &bucket, &key),
        info: Value::Object(info).to_string().into_bytes(),
    };
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let _turn = ROOT_FOLDER.lock().unwrap_or_else(|e| e.into_inner());
        write_whole(&root, &written.object, &written.data)?;
        write_whole(&root, &written.attributes_path, &written.attributes)?;
        write_whole(&root, &written.info_path, &written.info)
    })
    .await
    .map_err(|e| s3_error!(InternalError, "the write task failed: {e}"))?
    .map_err(|e| s3_error!(InternalError, "cannot write the object: {e}"))?;

    Ok(S3Response::new(PutObjectOutput {
        e_tag: Some(ETag::Strong(md5)),
        checksum_crc32: checksum.checksum_crc32,
        checksum_crc32c: checksum.checksum_crc32c,
        checksum_sha1: checksum.checksum_sha1,
        checksum_sha256: checksum.checksum_sha256,
        checksum_crc64nvme: checksum.checksum_crc64nvme,
        ..Default::default()
    }))
}
