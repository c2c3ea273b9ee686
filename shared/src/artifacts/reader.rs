//! Streaming reads of an untrusted zip artifact in S3, with bounded memory.
//!
//! Opening an artifact reads only the end of the object and its central directory (ranged
//! GETs) and checks every entry before any data is touched. Entry data then comes from one
//! sequential GET, decompressed chunk by chunk, with actual sizes and CRCs checked.

use super::central_directory::*;
use super::error::{s3_error, ArtifactError};
use super::limits::ZipLimits;
use super::s3_body::S3Body;
use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};

/// Largest decompressed chunk handed out at once.
const CHUNK: usize = 64 * 1024;

/// An input artifact whose table of contents has been read and checked.
pub struct ArtifactReader {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    entries: Vec<ZipEntry>,
    cd_offset: u64,
    limits: ZipLimits,
    object_size: u64,
}

impl ArtifactReader {
    /// Reads the end of the zip and its central directory with ranged GETs and checks every entry before any data is read.
    pub async fn open(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        limits: ZipLimits,
    ) -> Result<Self, ArtifactError> {
        let head = client
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error("HeadObject", bucket, key, e))?;
        let object_size = head.content_length().unwrap_or(0).max(0) as u64;
        let not_zip = |reason: String| ArtifactError::NotAZip {
            bucket: bucket.into(),
            key: key.into(),
            reason,
        };

        let tail_len = object_size.min(MAX_TAIL);
        let tail_start = object_size - tail_len;
        let tail = if tail_len == 0 {
            Vec::new()
        } else {
            S3Body::get(client, bucket, key, tail_start, object_size)
                .await?
                .read_exact(tail_len as usize)
                .await?
        };
        let end = match parse_tail(&tail, object_size).map_err(not_zip)? {
            Tail::Complete(end) => end,
            Tail::NeedZip64 { offset, eocd_pos } => {
                let record_end = offset
                    .checked_add(ZIP64_EOCD_LEN as u64)
                    .ok_or_else(|| not_zip("zip64 end record lies outside the archive".into()))?;
                let record = if offset >= tail_start && record_end <= object_size {
                    let at = (offset - tail_start) as usize;
                    tail[at..at + ZIP64_EOCD_LEN].to_vec()
                } else if record_end <= object_size {
                    S3Body::get(client, bucket, key, offset, record_end)
                        .await?
                        .read_exact(ZIP64_EOCD_LEN)
                        .await?
                } else {
                    return Err(not_zip("zip64 end record lies outside the archive".into()));
                };
                parse_zip64_eocd(&record, offset, eocd_pos).map_err(not_zip)?
            }
        };
        if end.entries > limits.max_entries {
            return Err(ArtifactError::OverLimit(format!(
                "the archive declares {} entries, more than the limit of {}",
                end.entries, limits.max_entries
            )));
        }

        if end.cd_size > limits.max_directory_bytes {
            return Err(ArtifactError::OverLimit(format!(
                "the central directory is {} bytes, more than the {} bytes this function's memory allows for it (raise the function's memory size)",
                end.cd_size, limits.max_directory_bytes
            )));
        }
        let mut entries = Vec::with_capacity(end.entries.min(limits.max_entries) as usize);
        if end.cd_size > 0 {
            let mut cd = S3Body::get(
                client,
                bucket,
                key,
                end.cd_offset,
                end.cd_offset + end.cd_size,
            )
            .await?;
            let cd_end = end.cd_offset + end.cd_size;
            while cd.position + CENTRAL_HEADER_LEN as u64 <= cd_end {
                let header = cd.read_exact(CENTRAL_HEADER_LEN).await?;
                if u32_at(&header, 0) != CENTRAL_HEADER_SIG {
                    break;
                }
                let rest_len = u16_at(&header, 28) as usize
                    + u16_at(&header, 30) as usize
                    + u16_at(&header, 32) as usize;
                let rest = cd.read_exact(rest_len).await?;
                entries.push(parse_central_header(&header, &rest)?);
                if entries.len() as u64 > limits.max_entries {
                    return Err(ArtifactError::OverLimit(format!(
                        "the archive holds more than {} entries",
                        limits.max_entries
                    )));
                }
            }
        }
        if entries.len() as u64 != end.entries {
            return Err(not_zip(format!(
                "the end record declares {} entries but the central directory holds {}",
                end.entries,
                entries.len()
            )));
        }
        let entries = check_entries(entries, end.cd_offset, &limits)?;
        Ok(Self {
            client: client.clone(),
            bucket: bucket.into(),
            key: key.into(),
            entries,
            cd_offset: end.cd_offset,
            limits,
            object_size,
        })
    }

    /// Every entry, checked, in archive order.
    pub fn entries(&self) -> &[ZipEntry] {
        &self.entries
    }

    /// Total size of the archive object in bytes.
    pub fn object_size(&self) -> u64 {
        self.object_size
    }

    /// Sum of the entries' declared uncompressed sizes.
    pub fn total_size(&self) -> u64 {
        self.entries.iter().map(|e| e.size).sum()
    }

    /// Reads every entry's data once, discarding it, so that CRC-32s, actual sizes and local
    /// headers are all known good before anything is written outside the artifact store.
    /// Memory stays bounded (one chunk at a time).
    pub async fn verify(&self) -> Result<(), ArtifactError> {
        let mut stream = self.stream().await?;
        while stream.next_entry().await?.is_some() {
            while stream.read_chunk().await?.is_some() {}
        }
        Ok(())
    }

    /// Starts the sequential read of every entry's data.
    pub async fn stream(&self) -> Result<EntryStream, ArtifactError> {
        let start = self
            .entries
            .first()
            .map(|e| e.header_offset)
            .unwrap_or(self.cd_offset);
        let body = if start < self.cd_offset {
            Some(S3Body::get(&self.client, &self.bucket, &self.key, start, self.cd_offset).await?)
        } else {
            None
        };
        Ok(EntryStream {
            body,
            entries: self.entries.clone(),
            next: 0,
            current: None,
            total_out: 0,
            limits: self.limits,
        })
    }
}

/// The entries of an archive, read one after the other from one GET.
pub struct EntryStream {
    body: Option<S3Body>,
    entries: Vec<ZipEntry>,
    next: usize,
    current: Option<OpenEntry>,
    total_out: u64,
    limits: ZipLimits,
}

struct OpenEntry {
    entry: ZipEntry,
    compressed_left: u64,
    pending: Bytes,
    inflater: Option<Decompress>,
    produced: u64,
    crc: crc32fast::Hasher,
    done: bool,
}

impl EntryStream {
    /// Moves to the next entry, skipping what is left of the current one.
    pub async fn next_entry(&mut self) -> Result<Option<ZipEntry>, ArtifactError> {
        if let Some(open) = self.current.take() {
            if !open.done {
                if let Some(body) = self.body.as_mut() {
                    body.skip(open.compressed_left).await?;
                }
            }
        }
        let Some(entry) = self.entries.get(self.next).cloned() else {
            return Ok(None);
        };
        self.next += 1;
        let body = self
            .body
            .as_mut()
            .ok_or_else(|| ArtifactError::CorruptEntry {
                name: entry.name.clone(),
                reason: "entry lies outside the archive data".into(),
            })?;
        let corrupt = |reason: String| ArtifactError::CorruptEntry {
            name: entry.name.clone(),
            reason,
        };
        if body.position > entry.header_offset {
            return Err(ArtifactError::UnsafeEntry {
                name: entry.name.clone(),
                reason: "its local header overlaps the previous entry's data".into(),
            });
        }
        body.skip(entry.header_offset - body.position).await?;
        let header = body.read_exact(LOCAL_HEADER_LEN as usize).await?;
        if u32_at(&header, 0) != LOCAL_HEADER_SIG {
            return Err(corrupt("bad local header signature".into()));
        }
        let name_len = u16_at(&header, 26) as usize;
        let extra_len = u16_at(&header, 28) as usize;
        let name = body.read_exact(name_len).await?;
        if name != entry.name.as_bytes() {
            return Err(corrupt(
                "the local header names a different file than the central directory".into(),
            ));
        }
        body.skip(extra_len as u64).await?;
        if u16_at(&header, 8) != entry.method {
            return Err(corrupt(
                "the local header's compression method differs from the central directory's".into(),
            ));
        }
        let local_flags = u16_at(&header, 6);
        if local_flags & FLAG_ENCRYPTED != 0 {
            return Err(ArtifactError::Unsupported {
                name: entry.name.clone(),
                reason: "the local header marks the entry encrypted".into(),
            });
        }
        // Without a data descriptor the local header carries CRC and sizes; a reader that
        // trusts them must see what the central directory says.
        if local_flags & FLAG_DATA_DESCRIPTOR == 0 {
            let differs =
                |local: u32, central: u64| local != 0xFFFF_FFFF && u64::from(local) != central;
            if u32_at(&header, 14) != entry.crc32
                || differs(u32_at(&header, 18), entry.compressed_size)
                || differs(u32_at(&header, 22), entry.size)
            {
                return Err(corrupt(
                    "the local header's CRC-32 or sizes differ from the central directory's".into(),
                ));
            }
        }
        let inflater = (entry.method == METHOD_DEFLATED).then(|| Decompress::new(false));
        self.current = Some(OpenEntry {
            compressed_left: entry.compressed_size,
            pending: Bytes::new(),
            inflater,
            produced: 0,
            crc: crc32fast::Hasher::new(),
            done: false,
            entry: entry.clone(),
        });
        Ok(Some(entry))
    }

    /// The next chunk of the current entry's uncompressed data, or `None` at its end (after its
    /// size and CRC were checked).
    pub async fn read_chunk(&mut self) -> Result<Option<Bytes>, ArtifactError> {
        let (Some(open), Some(body)) = (self.current.as_mut(), self.body.as_mut()) else {
            return Ok(None);
        };
        loop {
            if open.done {
                return Ok(None);
            }
            if open.pending.is_empty() && open.compressed_left > 0 {
                let want = open.compressed_left.min(CHUNK as u64) as usize;
                let bytes = body
                    .take(want)
                    .await?
                    .ok_or_else(|| ArtifactError::CorruptEntry {
                        name: open.entry.name.clone(),
                        reason: "the archive ends inside this entry's data".into(),
                    })?;
                open.compressed_left -= bytes.len() as u64;
                open.pending = bytes;
            }
            let chunk = match open.inflater.as_mut() {
                None => {
                    let out = std::mem::take(&mut open.pending);
                    if open.compressed_left == 0 {
                        open.done = true;
                    }
                    out
                }
                Some(inflater) => {
                    let mut out = Vec::with_capacity(CHUNK);
                    let before_in = inflater.total_in();
                    let status = inflater
                        .decompress_vec(&open.pending, &mut out, FlushDecompress::None)
                        .map_err(|e| ArtifactError::CorruptEntry {
                            name: open.entry.name.clone(),
                            reason: format!("bad deflate data: {e}"),
                        })?;
                    let consumed = (inflater.total_in() - before_in) as usize;
                    let _ = open.pending.split_to(consumed);
                    if status == Status::StreamEnd {
                        open.done = true;
                        // Bytes after the end of the deflate stream belong to nothing; drop them.
                        let leftover = open.compressed_left;
                        open.pending = Bytes::new();
                        open.compressed_left = 0;
                        body.skip(leftover).await?;
                    } else if out.is_empty() && consumed == 0 && open.compressed_left == 0 {
                        return Err(ArtifactError::CorruptEntry {
                            name: open.entry.name.clone(),
                            reason: "the deflate stream ends before its end marker".into(),
                        });
                    }
                    Bytes::from(out)
                }
            };
            open.produced += chunk.len() as u64;
            self.total_out += chunk.len() as u64;
            if open.produced > open.entry.size {
                return Err(ArtifactError::OverLimit(format!(
                    "entry `{}` expands beyond its declared size of {} bytes",
                    open.entry.name, open.entry.size
                )));
            }
            if self.total_out > self.limits.max_total_bytes {
                return Err(ArtifactError::OverLimit(format!(
                    "the archive expands beyond the limit of {} bytes",
                    self.limits.max_total_bytes
                )));
            }
            open.crc.update(&chunk);
            if open.done {
                if open.produced != open.entry.size {
                    return Err(ArtifactError::CorruptEntry {
                        name: open.entry.name.clone(),
                        reason: format!(
                            "{} bytes of data where the header declares {}",
                            open.produced, open.entry.size
                        ),
                    });
                }
                let crc = std::mem::replace(&mut open.crc, crc32fast::Hasher::new()).finalize();
                if crc != open.entry.crc32 {
                    return Err(ArtifactError::CorruptEntry {
                        name: open.entry.name.clone(),
                        reason: format!(
                            "CRC-32 mismatch (data {crc:08x}, header {:08x})",
                            open.entry.crc32
                        ),
                    });
                }
            }
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }

    /// Reads the whole current entry into memory, refusing entries larger than `max_bytes`.
    pub async fn read_to_vec(&mut self, max_bytes: usize) -> Result<Vec<u8>, ArtifactError> {
        let mut out = Vec::new();
        while let Some(chunk) = self.read_chunk().await? {
            if out.len() + chunk.len() > max_bytes {
                let name = self
                    .current
                    .as_ref()
                    .map(|o| o.entry.name.clone())
                    .unwrap_or_default();
                return Err(ArtifactError::OverLimit(format!(
                    "entry `{name}` is larger than {max_bytes} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}
