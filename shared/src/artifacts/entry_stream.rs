//! The data of an archive's entries, read in archive order from ranged GETs and decompressed
//! chunk by chunk, with actual sizes, CRCs and local headers checked against the central
//! directory.

use super::central_directory::*;
use super::error::ArtifactError;
use super::limits::ZipLimits;
use super::s3_body::S3Body;
use bytes::Bytes;
use flate2::{Decompress, FlushDecompress, Status};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest decompressed chunk handed out at once.
const CHUNK: usize = 64 * 1024;

/// Where the entry stream reads from.
#[derive(Clone)]
pub(crate) struct ObjectSource {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
}

/// A byte range of the archive read with one GET, and the position in the stream's entry
/// list of the first entry it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub first_entry: usize,
    pub start: u64,
    pub end: u64,
}

/// Entries of an archive, read one after the other. Each run of entries that lie close
/// together is one ranged GET, opened when the stream reaches it.
pub struct EntryStream {
    source: ObjectSource,
    body: Option<S3Body>,
    /// The archive's entries, shared with its reader.
    entries: Arc<[ZipEntry]>,
    /// Positions in `entries` this stream reads, in order.
    order: Vec<usize>,
    spans: Vec<Span>,
    next_span: usize,
    next: usize,
    current: Option<OpenEntry>,
    total_out: u64,
    limits: ZipLimits,
    timings: StreamTimings,
}

/// Where a stream's time went: waiting for the archive's bytes (GETs, headers, skips), and
/// inflating and checking them (deflate, CRC-32).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTimings {
    /// Waiting for the archive's bytes.
    pub network: Duration,
    /// Inflating and CRC-checking them.
    pub inflate: Duration,
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
    pub(crate) fn new(
        source: ObjectSource,
        entries: Arc<[ZipEntry]>,
        order: Vec<usize>,
        spans: Vec<Span>,
        limits: ZipLimits,
    ) -> Self {
        Self {
            source,
            body: None,
            entries,
            order,
            spans,
            next_span: 0,
            next: 0,
            current: None,
            total_out: 0,
            limits,
            timings: StreamTimings::default(),
        }
    }

    /// Where this stream's time went so far.
    pub fn timings(&self) -> StreamTimings {
        self.timings
    }

    /// Moves to the next entry, skipping what is left of the current one.
    pub async fn next_entry(&mut self) -> Result<Option<ZipEntry>, ArtifactError> {
        let started = Instant::now();
        let next = self.open_next_entry().await;
        self.timings.network += started.elapsed();
        next
    }

    async fn open_next_entry(&mut self) -> Result<Option<ZipEntry>, ArtifactError> {
        if let Some(open) = self.current.take() {
            if !open.done {
                if let Some(body) = self.body.as_mut() {
                    body.skip(open.compressed_left).await?;
                }
            }
        }
        let Some(entry) = self
            .order
            .get(self.next)
            .and_then(|&i| self.entries.get(i))
            .cloned()
        else {
            return Ok(None);
        };
        if let Some(span) = self.spans.get(self.next_span).copied() {
            if span.first_entry == self.next {
                self.next_span += 1;
                // An empty span holds an entry whose header lies outside the archive data.
                self.body = if span.start < span.end {
                    let ObjectSource {
                        client,
                        bucket,
                        key,
                    } = &self.source;
                    Some(S3Body::get(client, bucket, key, span.start, span.end).await?)
                } else {
                    None
                };
            }
        }
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
                let waiting = Instant::now();
                let taken = body.take(want).await;
                self.timings.network += waiting.elapsed();
                let bytes = taken?.ok_or_else(|| ArtifactError::CorruptEntry {
                    name: open.entry.name.clone(),
                    reason: "the archive ends inside this entry's data".into(),
                })?;
                open.compressed_left -= bytes.len() as u64;
                open.pending = bytes;
            }
            let inflating = Instant::now();
            let mut skip_wait = Duration::ZERO;
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
                        let waiting = Instant::now();
                        let skipped = body.skip(leftover).await;
                        skip_wait = waiting.elapsed();
                        self.timings.network += skip_wait;
                        skipped?;
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
            self.timings.inflate += inflating.elapsed().saturating_sub(skip_wait);
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
    }

    /// Reads the whole current entry into memory, refusing entries larger than `max_bytes`.
    pub async fn read_to_vec(&mut self, max_bytes: usize) -> Result<Vec<u8>, ArtifactError> {
        // The size was checked against the data when the entry was verified, and is checked
        // again as it is read: one allocation of the right size, not a doubling series.
        let declared = self.current.as_ref().map_or(0, |o| o.entry.size);
        let mut out = Vec::with_capacity(declared.min(max_bytes as u64) as usize);
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
