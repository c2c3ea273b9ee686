//! Streaming reads of an untrusted zip artifact in S3, with bounded memory.
//!
//! Opening an artifact reads only the end of the object and its central directory (ranged
//! GETs) and checks every entry before any data is touched. Entry data then comes from
//! ranged GETs (one per run of wanted entries, several in parallel for a large archive),
//! decompressed chunk by chunk, with actual sizes and CRCs checked.

use super::budget::{MemoryBudget, Reservation};
use super::central_directory::*;
use super::entry_stream::{EntryStream, ObjectSource, Span};
use super::error::{s3_error, ArtifactError};
use super::limits::ZipLimits;
use super::s3_body::S3Body;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Unwanted bytes between two wanted entries read through rather than skipped with a new GET.
const COALESCE_GAP: u64 = 1024 * 1024;
/// Each parallel stream reads at least this much of the archive.
const MIN_PARALLEL_BYTES: u64 = 16 * 1024 * 1024;
/// Parallel GETs for [`ArtifactReader::verify`].
pub const PARALLEL_READS: usize = 2;

/// An input artifact whose table of contents has been read and checked.
pub struct ArtifactReader {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    /// Shared with the streams over them, never copied.
    entries: Arc<[ZipEntry]>,
    cd_offset: u64,
    limits: ZipLimits,
    object_size: u64,
    /// What `entries` holds of the job's memory budget.
    _held: Reservation,
}

impl ArtifactReader {
    /// Reads the end of the zip and its central directory with ranged GETs and checks every entry before any data is read.
    pub async fn open(
        client: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        limits: ZipLimits,
        budget: &MemoryBudget,
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
        // The records are allocated once for the declared count (at most `max_entries`), and
        // held against the budget before they are; each name is added as it is read.
        let declared = end.entries.min(limits.max_entries) as usize;
        let held_records = (declared * std::mem::size_of::<ZipEntry>()) as u64;
        let mut held = budget.reserve(held_records, "reading the archive's table of contents")?;
        let mut entries = Vec::with_capacity(declared);
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
                let entry = parse_central_header(&header, &rest)?;
                held.grow(
                    entry.name.len() as u64,
                    "reading the archive's table of contents",
                )?;
                entries.push(entry);
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
        let entries = check_entries(entries, end.cd_offset, &limits, budget)?;
        Ok(Self {
            client: client.clone(),
            bucket: bucket.into(),
            key: key.into(),
            entries: entries.into(),
            cd_offset: end.cd_offset,
            limits,
            object_size,
            _held: held,
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
    /// Memory stays bounded (one chunk per stream).
    pub async fn verify(&self) -> Result<(), ArtifactError> {
        self.verify_with::<()>(PARALLEL_READS).await.map(|_| ())
    }

    /// Reads and checks every entry's data as [`Self::verify`] does, feeding each entry's
    /// uncompressed data to a fresh `H`, and returns what each one computed, in entry order,
    /// with where the time went. A large archive is read as up to `streams` ranged GETs in
    /// parallel, each on its own task.
    pub async fn verify_with<H: EntryHasher>(
        &self,
        streams: usize,
    ) -> Result<Verified<H::Output>, ArtifactError> {
        let all: Vec<usize> = (0..self.entries.len()).collect();
        let mut readers = tokio::task::JoinSet::new();
        for (group_no, group) in self.partition(&all, streams).into_iter().enumerate() {
            let mut stream = self.stream_selected(&group);
            readers.spawn(async move {
                let mut out = Vec::with_capacity(group.len());
                let mut hashing = Duration::ZERO;
                while stream.next_entry().await?.is_some() {
                    let mut hasher = H::default();
                    while let Some(chunk) = stream.read_chunk().await? {
                        let started = Instant::now();
                        hasher.update(&chunk);
                        hashing += started.elapsed();
                    }
                    out.push(hasher.finish());
                }
                let timings = ReadTimings {
                    network: stream.timings().network,
                    inflate: stream.timings().inflate,
                    hash: hashing,
                };
                Ok::<_, ArtifactError>((group_no, out, timings))
            });
        }
        let mut groups = Vec::new();
        let mut timings = ReadTimings::default();
        while let Some(done) = readers.join_next().await {
            match done {
                Ok(Ok((group_no, out, spent))) => {
                    timings.add(spent);
                    groups.push((group_no, out));
                }
                // Dropping the set stops the other reads.
                Ok(Err(err)) => return Err(err),
                Err(err) => {
                    return Err(ArtifactError::s3_transport(
                        "GetObject",
                        &self.bucket,
                        &self.key,
                        format!("a read task failed: {err}"),
                    ))
                }
            }
        }
        groups.sort_by_key(|(group_no, _)| *group_no);
        Ok(Verified {
            outputs: groups.into_iter().flat_map(|(_, out)| out).collect(),
            timings,
        })
    }

    /// Starts the sequential read of every entry's data.
    pub async fn stream(&self) -> Result<EntryStream, ArtifactError> {
        let all: Vec<usize> = (0..self.entries.len()).collect();
        Ok(self.stream_selected(&all))
    }

    /// A stream over the entries at `indices` (positions in [`Self::entries`], ascending).
    /// Entries that lie close together are read with one GET; a long stretch of entries that
    /// are not wanted is jumped over with a new ranged GET instead of being downloaded.
    pub fn stream_selected(&self, indices: &[usize]) -> EntryStream {
        let mut order = Vec::with_capacity(indices.len());
        let mut spans: Vec<Span> = Vec::new();
        for &i in indices {
            let Some(entry) = self.entries.get(i) else {
                continue;
            };
            let (start, end) = (entry.header_offset, self.data_end(i));
            match spans.last_mut() {
                Some(span)
                    if span.end <= start
                        && start - span.end <= COALESCE_GAP
                        && span.start < span.end =>
                {
                    span.end = end.max(span.end)
                }
                _ => spans.push(Span {
                    first_entry: order.len(),
                    start,
                    end: end.max(start),
                }),
            }
            order.push(i);
        }
        EntryStream::new(
            ObjectSource {
                client: self.client.clone(),
                bucket: self.bucket.clone(),
                key: self.key.clone(),
            },
            self.entries.clone(),
            order,
            spans,
            self.limits,
        )
    }

    /// Splits `indices` (ascending) into at most `parts` runs of about the same number of
    /// archive bytes, for parallel streams. An archive too small to gain from it stays whole.
    pub fn partition(&self, indices: &[usize], parts: usize) -> Vec<Vec<usize>> {
        let weight = |i: usize| {
            self.entries
                .get(i)
                .map(|e| self.data_end(i).saturating_sub(e.header_offset))
                .unwrap_or(0)
        };
        let weights: Vec<u64> = indices.iter().map(|&i| weight(i)).collect();
        split_runs(&weights, parts, MIN_PARALLEL_BYTES)
            .into_iter()
            .map(|run| indices[run].to_vec())
            .collect()
    }

    /// Where entry `i`'s bytes end at the latest: the next entry's local header, or the
    /// central directory.
    fn data_end(&self, i: usize) -> u64 {
        self.entries
            .get(i + 1)
            .map(|e| e.header_offset)
            .unwrap_or(self.cd_offset)
            .min(self.cd_offset)
    }
}

/// Splits items of these weights, in order, into at most `parts` contiguous, non-empty runs
/// of about equal weight, with at least `min_part` per run (one run when the total is small).
fn split_runs(weights: &[u64], parts: usize, min_part: u64) -> Vec<std::ops::Range<usize>> {
    let total = weights.iter().fold(0u64, |sum, w| sum.saturating_add(*w));
    let parts = parts.clamp(
        1,
        (total / min_part.max(1)).clamp(1, usize::MAX as u64) as usize,
    );
    let mut runs = Vec::new();
    let mut start = 0;
    let mut sum = 0u64;
    for (i, weight) in weights.iter().enumerate() {
        let boundary = total / parts as u64 * (runs.len() as u64 + 1);
        if runs.len() + 1 < parts && sum >= boundary && i > start {
            runs.push(start..i);
            start = i;
        }
        sum = sum.saturating_add(*weight);
    }
    if start < weights.len() {
        runs.push(start..weights.len());
    }
    runs
}

/// Something computed over one entry's uncompressed data while it is verified (digests, a
/// count), by [`ArtifactReader::verify_with`].
pub trait EntryHasher: Default + Send + 'static {
    /// What one entry yields.
    type Output: Send + 'static;
    /// Takes the next chunk of the entry's data.
    fn update(&mut self, data: &[u8]);
    /// The result for the whole entry.
    fn finish(self) -> Self::Output;
}

/// What [`ArtifactReader::verify_with`] computed, in entry order, and where its time went.
pub struct Verified<T> {
    /// One per entry, in entry order.
    pub outputs: Vec<T>,
    /// Where the read's time went.
    pub timings: ReadTimings,
}

/// Time spent by a read, summed over its parallel streams (so it can exceed the wall time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadTimings {
    /// Waiting for the archive's bytes: GETs, local headers, skips.
    pub network: Duration,
    /// Inflating and CRC-checking them.
    pub inflate: Duration,
    /// In the caller's hasher.
    pub hash: Duration,
}

impl ReadTimings {
    fn add(&mut self, other: ReadTimings) {
        self.network += other.network;
        self.inflate += other.inflate;
        self.hash += other.hash;
    }
}

/// Nothing computed: a plain check.
impl EntryHasher for () {
    type Output = ();
    fn update(&mut self, _data: &[u8]) {}
    fn finish(self) {}
}

#[cfg(test)]
mod tests {
    use super::split_runs;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn runs_cover_every_item_once_in_order(
            weights in proptest::collection::vec(0u64..u64::MAX / 4, 0..200),
            parts in 0usize..9,
            min_part in 0u64..1_000_000,
        ) {
            let runs = split_runs(&weights, parts, min_part);
            prop_assert!(runs.len() <= parts.max(1));
            let mut next = 0;
            for run in &runs {
                prop_assert_eq!(run.start, next);
                prop_assert!(run.end > run.start, "empty run {:?}", run);
                next = run.end;
            }
            prop_assert_eq!(next, weights.len());
        }
    }

    #[test]
    fn a_small_archive_is_one_run_and_a_large_one_is_split_evenly() {
        assert_eq!(split_runs(&[10, 10, 10], 4, 100), vec![0..3]);
        assert_eq!(split_runs(&[100; 8], 4, 100), vec![0..2, 2..4, 4..6, 6..8]);
        assert_eq!(split_runs(&[100; 8], 2, 300), vec![0..4, 4..8]);
        assert!(split_runs(&[], 4, 1).is_empty());
    }
}
