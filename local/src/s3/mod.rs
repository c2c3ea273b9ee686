//! A local S3 endpoint: the `s3s` protocol crate over the `s3s-fs` filesystem backend, with
//! SigV4 checked against the credentials pipeline-local issued, every call recorded, and
//! planned faults injected.

mod object_store;
mod put;

use crate::calls::{access_key_of, ms_since_start, Call, CallLog};
use crate::faults::Faults;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use md5::{Digest as _, Md5};
use s3s::auth::{S3Auth, SecretKey};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{s3_error, S3Result};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Where an object of the folder `root` is on disk, when `bucket` and `key` are plain names: no
/// way out of the bucket's folder, no hidden (metadata) files. For readers outside the
/// protocol (the local website, the console).
pub fn plain_object_path(root: &Path, bucket: &str, key: &str) -> Option<PathBuf> {
    let plain =
        |part: &str| !part.is_empty() && !part.starts_with('.') && !part.contains(['\\', '\0']);
    (plain(bucket) && key.split('/').all(plain)).then(|| root.join(bucket).join(key))
}

/// Access keys the local S3 accepts, with their secrets: the function role's and every set of
/// job credentials handed out.
#[derive(Clone, Default)]
pub struct CredentialRegistry {
    keys: Arc<RwLock<HashMap<String, String>>>,
}

impl CredentialRegistry {
    /// Accepts these credentials' signatures.
    pub fn register(&self, access_key: &str, secret_key: &str) {
        if let Ok(mut keys) = self.keys.write() {
            keys.insert(access_key.into(), secret_key.into());
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for CredentialRegistry {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        let keys = self.keys.read().map_err(|_| s3_error!(InternalError))?;
        match keys.get(access_key) {
            Some(secret) => Ok(SecretKey::from(secret.as_str())),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

/// The local S3: buckets and objects in a folder.
#[derive(Clone)]
pub struct LocalS3 {
    root: PathBuf,
    service: S3Service,
    calls: CallLog,
    faults: Faults,
    /// The account each bucket created with [`LocalS3::create_bucket_in`] belongs to; only
    /// callers acting in it reach the bucket. Other buckets are open to every key we issued.
    owners: Arc<RwLock<HashMap<String, String>>>,
    /// Which account a caller's credentials act in.
    accounts: crate::sts::Accounts,
}

impl LocalS3 {
    /// S3 over `root`, recording into `calls`, answering `faults` first.
    pub fn new(
        root: &Path,
        credentials: CredentialRegistry,
        calls: CallLog,
        faults: Faults,
    ) -> Result<Self, String> {
        std::fs::create_dir_all(root)
            .map_err(|e| format!("cannot create S3 folder {}: {e}", root.display()))?;
        let fs = s3s_fs::FileSystem::new(root)
            .map_err(|e| format!("cannot serve S3 from {}: {e:?}", root.display()))?;
        let store = object_store::LocalObjectStore::new(fs, root.to_path_buf());
        let mut builder = S3ServiceBuilder::new(store);
        builder.set_auth(credentials);
        Ok(Self {
            root: root.to_path_buf(),
            service: builder.build(),
            calls,
            faults,
            owners: Arc::default(),
            accounts: crate::sts::Accounts::default(),
        })
    }

    /// Tells the account of each call's signer from `sts`'s sessions, for buckets of an
    /// account ([`LocalS3::create_bucket_in`]).
    pub fn with_accounts(mut self, sts: crate::sts::LocalSts) -> Self {
        self.accounts = crate::sts::Accounts::from_sts(sts);
        self
    }

    /// Creates a bucket of `account`: callers acting in another account get `AccessDenied`,
    /// as without a bucket policy granting them.
    pub fn create_bucket_in(&self, account: &str, bucket: &str) -> std::io::Result<()> {
        self.create_bucket(bucket)?;
        if let Ok(mut owners) = self.owners.write() {
            owners.insert(bucket.to_string(), account.to_string());
        }
        Ok(())
    }

    /// Why a caller signing with `access_key` may not reach `bucket`, if it may not.
    fn refusal(
        &self,
        bucket: Option<&str>,
        access_key: Option<&str>,
    ) -> Option<(u16, String, String)> {
        let owner = self.owners.read().ok()?.get(bucket?)?.clone();
        match self.accounts.of(access_key) {
            Ok(account) if account == owner => None,
            Ok(_) => Some((403, "AccessDenied".into(), "Access Denied".into())),
            Err(e) => Some((e.status.as_u16(), e.code, e.message)),
        }
    }

    /// Its HTTP routes.
    pub fn router(&self) -> Router {
        Router::new().fallback(handle).with_state(self.clone())
    }

    /// The folder objects are kept in: `<root>/<bucket>/<key>`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates a bucket (a folder).
    pub fn create_bucket(&self, bucket: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(bucket))
    }

    /// Where an object's bytes are on disk.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// Puts an object straight into the folder (for seeding inputs, not through the protocol).
    pub fn put_file(&self, bucket: &str, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.object_path(bucket, key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, bytes)?;
        self.record_etag(bucket, key, &Md5::digest(bytes))
    }

    /// Copies a file into the folder as an object, without holding it in memory.
    pub fn put_path(&self, bucket: &str, key: &str, source: &Path) -> std::io::Result<u64> {
        let path = self.object_path(bucket, key);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut input = std::fs::File::open(source)?;
        let mut output = std::fs::File::create(path)?;
        let mut md5 = Md5::new();
        let mut buffer = vec![0u8; 256 * 1024];
        let mut copied = 0u64;
        loop {
            let n = input.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            md5.update(&buffer[..n]);
            output.write_all(&buffer[..n])?;
            copied += n as u64;
        }
        self.record_etag(bucket, key, &md5.finalize())?;
        Ok(copied)
    }

    /// Stores a seeded object's ETag where `s3s-fs` keeps the ETags of objects written through
    /// the protocol (its per-object internal-info file). Without it `s3s-fs` hashes the whole
    /// object again on every GET and HEAD: eight ranged GETs of a 190 MB artifact cost more
    /// CPU than the function reading them.
    fn record_etag(&self, bucket: &str, key: &str, md5: &[u8]) -> std::io::Result<()> {
        let path = object_store::internal_info_path(&self.root, bucket, key);
        let etag = hex::encode(md5);
        std::fs::write(path, json!({ "e_tag": etag }).to_string())
    }

    /// Puts an object straight into the folder with its standard headers, as `s3s-fs` keeps
    /// them (for actions pipeline-local performs itself, such as the S3 deploy action).
    pub fn put_file_with_headers(
        &self,
        bucket: &str,
        key: &str,
        bytes: &[u8],
        headers: &StoredHeaders,
    ) -> std::io::Result<()> {
        self.put_file(bucket, key, bytes)?;
        let mut attributes = Map::new();
        for (name, value) in [
            ("content_type", &headers.content_type),
            ("content_encoding", &headers.content_encoding),
            ("cache_control", &headers.cache_control),
        ] {
            if let Some(value) = value {
                attributes.insert(name.into(), json!(value));
            }
        }
        std::fs::write(
            object_store::metadata_path(&self.root, bucket, key),
            Value::Object(attributes).to_string(),
        )
    }

    /// Whether the object exists.
    pub fn exists(&self, bucket: &str, key: &str) -> bool {
        self.object_path(bucket, key).is_file()
    }

    /// The HTTP headers an object was stored with (what a website or CDN serves it with).
    pub fn stored_headers(&self, bucket: &str, key: &str) -> StoredHeaders {
        let path = object_store::metadata_path(&self.root, bucket, key);
        let stored: Value = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or(Value::Null);
        let field = |name: &str| stored.get(name).and_then(Value::as_str).map(str::to_owned);
        StoredHeaders {
            content_type: field("content_type"),
            content_encoding: field("content_encoding"),
            cache_control: field("cache_control"),
        }
    }
}

/// The standard headers of a stored object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredHeaders {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
}

/// The S3 operation a path-style request is, by method, path and query.
fn classify(
    method: &Method,
    path: &str,
    query: &str,
    has_copy_source: bool,
) -> (String, Option<String>, Option<String>) {
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = match trimmed.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(b), Some(k)),
        Some((b, _)) => (Some(b), None),
        None if trimmed.is_empty() => (None, None),
        None => (Some(trimmed), None),
    };
    let params: Vec<&str> = query
        .split('&')
        .map(|p| p.split('=').next().unwrap_or(""))
        .collect();
    let has = |name: &str| params.contains(&name);
    let op = match (method.as_str(), key.is_some()) {
        ("GET", false) if bucket.is_none() => "ListBuckets",
        ("GET", false) if has("list-type") => "ListObjectsV2",
        ("GET", false) if has("location") => "GetBucketLocation",
        ("GET", false) => "ListObjects",
        ("PUT", false) => "CreateBucket",
        ("HEAD", false) => "HeadBucket",
        ("DELETE", false) => "DeleteBucket",
        ("POST", false) if has("delete") => "DeleteObjects",
        ("GET", true) if has("uploadId") => "ListParts",
        ("GET", true) => "GetObject",
        ("HEAD", true) => "HeadObject",
        ("PUT", true) if has("partNumber") && has_copy_source => "UploadPartCopy",
        ("PUT", true) if has("partNumber") => "UploadPart",
        ("PUT", true) if has_copy_source => "CopyObject",
        ("PUT", true) => "PutObject",
        ("POST", true) if has("uploads") => "CreateMultipartUpload",
        ("POST", true) if has("uploadId") => "CompleteMultipartUpload",
        ("DELETE", true) if has("uploadId") => "AbortMultipartUpload",
        ("DELETE", true) => "DeleteObject",
        _ => "Unknown",
    };
    let decode = |s: &str| {
        urlencoding::decode(s)
            .map(|c| c.into_owned())
            .unwrap_or_else(|_| s.to_string())
    };
    (op.to_string(), bucket.map(decode), key.map(decode))
}

const RECORDED_HEADERS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-length",
    "range",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-aws-kms-key-id",
    "x-amz-copy-source",
];

async fn handle(State(s3): State<LocalS3>, request: Request) -> Response {
    let at_ms = ms_since_start();
    let uri = request.uri().clone();
    let headers = request.headers().clone();
    let (operation, bucket, key) = classify(
        request.method(),
        uri.path(),
        uri.query().unwrap_or(""),
        headers.contains_key("x-amz-copy-source"),
    );
    let mut detail = Map::new();
    detail.insert("bucket".into(), json!(bucket));
    detail.insert("key".into(), json!(key));
    for name in RECORDED_HEADERS {
        if let Some(value) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            detail.insert((*name).into(), json!(value));
        }
    }
    let metadata: Map<String, Value> = headers
        .iter()
        .filter_map(|(name, value)| {
            let meta = name.as_str().strip_prefix("x-amz-meta-")?;
            Some((meta.to_string(), json!(value.to_str().ok()?)))
        })
        .collect();
    if !metadata.is_empty() {
        detail.insert("metadata".into(), Value::Object(metadata));
    }

    let is_head = request.method() == Method::HEAD;
    let dot_segment = key
        .as_deref()
        .is_some_and(|k| k.split('/').any(|part| part == "." || part == ".."));
    let refusal = s3.refusal(bucket.as_deref(), access_key_of(&headers).as_deref());
    let response = match s3.faults.take("s3", &operation, key.as_deref()) {
        // A bucket of another account than the signer's.
        _ if refusal.is_some() => {
            let (status, code, message) = refusal.unwrap_or_default();
            xml_error(status, &code, &message, key.as_deref(), is_head)
        }
        // S3 takes `..` as a name; a folder on disk takes it as "up", out of the bucket.
        _ if dot_segment => xml_error(
            400,
            "InvalidArgument",
            "the local S3 keeps objects as files and cannot store a key with a `.` or `..` segment",
            key.as_deref(),
            is_head,
        ),
        Some(fault) if fault.code == crate::service::HANG => {
            // Recorded now (status 0): the connection is held until the client gives up.
            s3.calls.record(Call {
                service: "s3",
                operation,
                at_ms,
                status: 0,
                access_key: access_key_of(&headers),
                detail: Value::Object(detail),
            });
            return std::future::pending().await;
        }
        Some(fault) => xml_error(
            fault.status,
            &fault.code,
            &fault.message,
            key.as_deref(),
            is_head,
        ),
        None => {
            let request = request.map(s3s::Body::http_body_unsync);
            match s3.service.call(request).await {
                Ok(response) => response.map(Body::new),
                Err(err) => xml_error(
                    500,
                    "InternalError",
                    &format!("{err:?}"),
                    key.as_deref(),
                    is_head,
                ),
            }
        }
    };
    let mut detail = Value::Object(detail);
    if operation == "DeleteObjects" {
        // The keys are in the XML body, which has been consumed: record the count only.
        detail["note"] = json!("keys are in the request body");
    }
    s3.calls.record(Call {
        service: "s3",
        operation,
        at_ms,
        status: response.status().as_u16(),
        access_key: access_key_of(&headers),
        detail,
    });
    response
}

/// S3's XML error document.
fn xml_error(status: u16, code: &str, message: &str, key: Option<&str>, is_head: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = if is_head {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Key>{}</Key><RequestId>{}</RequestId></Error>",
            escape(code),
            escape(message),
            escape(key.unwrap_or("")),
            uuid::Uuid::new_v4()
        )
    };
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/xml"));
    response
}

#[cfg(test)]
mod tests {
    use super::classify;
    use axum::http::Method;

    #[test]
    fn classifies_path_style_operations() {
        let op = |m: Method, p: &str, q: &str| classify(&m, p, q, false).0;
        assert_eq!(
            op(Method::GET, "/b", "list-type=2&prefix=x"),
            "ListObjectsV2"
        );
        assert_eq!(
            op(Method::PUT, "/b/k/x.zip", "partNumber=2&uploadId=u"),
            "UploadPart"
        );
        assert_eq!(op(Method::POST, "/b/k", "uploads"), "CreateMultipartUpload");
        assert_eq!(op(Method::POST, "/b", "delete"), "DeleteObjects");
        assert_eq!(op(Method::HEAD, "/b/k", ""), "HeadObject");
        let (_, bucket, key) = classify(&Method::GET, "/b/dir/a%20b.txt", "", false);
        assert_eq!(
            (bucket.as_deref(), key.as_deref()),
            (Some("b"), Some("dir/a b.txt"))
        );
    }
}
