//! The object store behind the local S3: `s3s-fs` for every operation, with object data
//! read in large blocks on a blocking thread. `s3s-fs` streams a GET in 4 KiB reads, each one
//! a hop through tokio's blocking pool; at that rate the local S3, not the function under
//! test, set the pace of every artifact benchmark.

use bytes::Bytes;
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result, S3};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// One read from disk; up to four are buffered ahead of the network per GET.
const READ_BLOCK: usize = 256 * 1024;
const READ_AHEAD: usize = 4;

pub(super) struct LocalObjectStore {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

impl LocalObjectStore {
    pub fn new(fs: s3s_fs::FileSystem, root: PathBuf) -> Self {
        Self { fs, root }
    }
}

/// Where a GET's bytes start, from the `Content-Range` `s3s-fs` computed (`bytes a-b/size`).
fn range_start(content_range: Option<&str>) -> Option<u64> {
    let range = content_range?.strip_prefix("bytes ")?;
    range.split_once('-')?.0.parse().ok()
}

/// `s3s-fs`'s name for a file about an object: `.bucket-<b>.object-<k>.<kind>.json`, names in
/// unpadded URL-safe base64.
fn object_file_path(root: &Path, bucket: &str, key: &str, kind: &str) -> PathBuf {
    let encode = |s: &str| {
        aws_smithy_types::base64::encode(s)
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_")
    };
    root.join(format!(
        ".bucket-{}.object-{}.{kind}.json",
        encode(bucket),
        encode(key)
    ))
}

/// Where `s3s-fs` keeps an object's internal information (its ETag and checksums).
pub(super) fn internal_info_path(root: &Path, bucket: &str, key: &str) -> PathBuf {
    object_file_path(root, bucket, key, "internal")
}

/// Where `s3s-fs` keeps an object's attributes (user metadata, Content-Type, Cache-Control…).
pub(super) fn metadata_path(root: &Path, bucket: &str, key: &str) -> PathBuf {
    object_file_path(root, bucket, key, "metadata")
}

/// The ETag recorded for an object when it was written, if any.
fn recorded_etag(root: &Path, bucket: &str, key: &str) -> Option<String> {
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(internal_info_path(root, bucket, key)).ok()?).ok()?;
    info.get("e_tag")?.as_str().map(str::to_owned)
}

/// `len` bytes of `path` from `start`, read on a blocking thread.
fn file_stream(
    path: PathBuf,
    start: u64,
    len: u64,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync + 'static {
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(READ_AHEAD);
    tokio::task::spawn_blocking(move || {
        let read = || -> Result<std::fs::File, std::io::Error> {
            let mut file = std::fs::File::open(&path)?;
            file.seek(SeekFrom::Start(start))?;
            Ok(file)
        };
        let mut file = match read() {
            Ok(file) => file.take(len),
            Err(err) => {
                let _ = sender.blocking_send(Err(err));
                return;
            }
        };
        loop {
            let mut block = vec![0u8; READ_BLOCK];
            match file.read(&mut block) {
                Ok(0) => return,
                Ok(n) => {
                    block.truncate(n);
                    if sender.blocking_send(Ok(Bytes::from(block))).is_err() {
                        // The client went away.
                        return;
                    }
                }
                Err(err) => {
                    let _ = sender.blocking_send(Err(err));
                    return;
                }
            }
        }
    });
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// The `S3` implementation: every operation `s3s-fs` has, passed through, except `get_object`,
/// the ETags of `list_objects_v2`, and the common `put_object`.
macro_rules! object_store {
    ($($name:ident: $input:ty => $output:ty;)*) => {
        #[async_trait::async_trait]
        impl S3 for LocalObjectStore {
            /// `s3s-fs` answers (headers, ETag, range checks, errors); the body is ours.
            async fn get_object(
                &self,
                req: S3Request<GetObjectInput>,
            ) -> S3Result<S3Response<GetObjectOutput>> {
                let path = self.root.join(&req.input.bucket).join(&req.input.key);
                let mut response = self.fs.get_object(req).await?;
                let output = &mut response.output;
                let len = output.content_length.unwrap_or(0).max(0) as u64;
                let start = range_start(output.content_range.as_deref()).unwrap_or(0);
                output.body = Some(StreamingBlob::wrap(file_stream(path, start, len)));
                Ok(response)
            }

            async fn put_object(
                &self,
                req: S3Request<PutObjectInput>,
            ) -> S3Result<S3Response<PutObjectOutput>> {
                if super::put::handles(&self.root, &req.input) {
                    super::put::put_object(&self.root, req).await
                } else {
                    self.fs.put_object(req).await
                }
            }

            /// `s3s-fs` lists no ETags; S3 always does, and change detection relies on it.
            async fn list_objects_v2(
                &self,
                req: S3Request<ListObjectsV2Input>,
            ) -> S3Result<S3Response<ListObjectsV2Output>> {
                let bucket = req.input.bucket.clone();
                let mut response = self.fs.list_objects_v2(req).await?;
                for object in response.output.contents.iter_mut().flatten() {
                    if object.e_tag.is_none() {
                        if let Some(key) = &object.key {
                            object.e_tag = recorded_etag(&self.root, &bucket, key).map(ETag::Strong);
                        }
                    }
                }
                Ok(response)
            }

            $(
                async fn $name(&self, req: S3Request<$input>) -> S3Result<S3Response<$output>> {
                    self.fs.$name(req).await
                }
            )*
        }
    };
}

object_store! {
    create_bucket: CreateBucketInput => CreateBucketOutput;
    copy_object: CopyObjectInput => CopyObjectOutput;
    delete_bucket: DeleteBucketInput => DeleteBucketOutput;
    delete_object: DeleteObjectInput => DeleteObjectOutput;
    delete_objects: DeleteObjectsInput => DeleteObjectsOutput;
    get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput;
    head_bucket: HeadBucketInput => HeadBucketOutput;
    head_object: HeadObjectInput => HeadObjectOutput;
    list_buckets: ListBucketsInput => ListBucketsOutput;
    list_objects: ListObjectsInput => ListObjectsOutput;
    create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput;
    upload_part: UploadPartInput => UploadPartOutput;
    upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput;
    list_parts: ListPartsInput => ListPartsOutput;
    complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput;
    abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_start_of_a_content_range() {
        assert_eq!(range_start(Some("bytes 100-199/1000")), Some(100));
        assert_eq!(range_start(Some("bytes 0-0/1")), Some(0));
        assert_eq!(range_start(None), None);
        assert_eq!(range_start(Some("garbage")), None);
    }
}
