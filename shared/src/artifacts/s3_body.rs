//! A sequential reader over one S3 GET response body, holding at most one network chunk.

use super::error::ArtifactError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Buf, Bytes};

pub(crate) struct S3Body {
    body: ByteStream,
    chunk: Bytes,
    /// Offset in the object of the next unread byte.
    pub position: u64,
    bucket: String,
    key: String,
}

impl S3Body {
    pub async fn get(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        start: u64,
        end_exclusive: u64,
    ) -> Result<Self, ArtifactError> {
        let mut request = client.get_object().bucket(bucket).key(key);
        if end_exclusive > start {
            request = request.range(format!("bytes={start}-{}", end_exclusive - 1));
        }
        let output = request
            .send()
            .await
            .map_err(|e| super::error::s3_error("GetObject", bucket, key, e))?;
        Ok(Self {
            body: output.body,
            chunk: Bytes::new(),
            position: start,
            bucket: bucket.into(),
            key: key.into(),
        })
    }

    fn stream_error(&self, message: String) -> ArtifactError {
        ArtifactError::s3_transport("GetObject", &self.bucket, &self.key, message)
    }

    /// Makes sure some bytes are buffered; false at the end of the body.
    async fn fill(&mut self) -> Result<bool, ArtifactError> {
        while self.chunk.is_empty() {
            match self.body.next().await {
                Some(Ok(bytes)) => self.chunk = bytes,
                Some(Err(err)) => {
                    return Err(self.stream_error(format!("reading the body failed: {err}")))
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Up to `max` bytes, or `None` at the end of the body.
    pub async fn take(&mut self, max: usize) -> Result<Option<Bytes>, ArtifactError> {
        if max == 0 || !self.fill().await? {
            return Ok(None);
        }
        let n = max.min(self.chunk.len());
        self.position += n as u64;
        Ok(Some(self.chunk.split_to(n)))
    }

    pub async fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, ArtifactError> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.take(n - out.len()).await? {
                Some(bytes) => out.extend_from_slice(&bytes),
                None => {
                    return Err(self
                        .stream_error(format!("the object ended {} bytes early", n - out.len())))
                }
            }
        }
        Ok(out)
    }

    pub async fn skip(&mut self, mut n: u64) -> Result<(), ArtifactError> {
        while n > 0 {
            if !self.fill().await? {
                return Err(self.stream_error("the object ended while skipping".into()));
            }
            let step = (n.min(self.chunk.len() as u64)) as usize;
            self.chunk.advance(step);
            self.position += step as u64;
            n -= step as u64;
        }
        Ok(())
    }
}
