//! Parsing and checking a zip archive's end record and central directory.
//!
//! The central directory is the archive's table of contents; everything about an untrusted
//! archive is checked here, before a single byte of entry data is read.

use super::entry_name::check_entry_name;
use super::error::ArtifactError;
use super::limits::ZipLimits;

pub(crate) const LOCAL_HEADER_SIG: u32 = 0x0403_4b50;
pub(crate) const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;
pub(crate) const EOCD_SIG: u32 = 0x0605_4b50;
pub(crate) const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
pub(crate) const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
pub(crate) const DATA_DESCRIPTOR_SIG: u32 = 0x0807_4b50;
pub(crate) const LOCAL_HEADER_LEN: u64 = 30;
pub(crate) const CENTRAL_HEADER_LEN: usize = 46;
pub(crate) const EOCD_LEN: usize = 22;
pub(crate) const ZIP64_LOCATOR_LEN: usize = 20;
pub(crate) const ZIP64_EOCD_LEN: usize = 56;
/// Why an archive with more than one possible end record is refused.
const AMBIGUOUS_END: &str = "the archive comment holds zip records (a second archive hidden in the first, which other zip readers would read instead)";
/// The end record plus the longest comment it may carry.
pub(crate) const MAX_TAIL: u64 = (EOCD_LEN + u16::MAX as usize) as u64;

pub(crate) const METHOD_STORED: u16 = 0;
pub(crate) const METHOD_DEFLATED: u16 = 8;
pub(crate) const FLAG_ENCRYPTED: u16 = 1;
/// The latest zip specification version (6.3) an entry may need to be extracted.
const MAX_VERSION_NEEDED: u16 = 63;
pub(crate) const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
pub(crate) const FLAG_UTF8: u16 = 1 << 11;

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

/// One entry as the central directory describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZipEntry {
    /// The entry's path inside the archive.
    pub name: String,
    /// A folder entry (name ends in `/` or the Unix mode says so).
    pub is_dir: bool,
    /// Declared uncompressed size in bytes.
    pub size: u64,
    /// Declared compressed size in bytes.
    pub compressed_size: u64,
    /// Declared CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Compression method (0 stored, 8 deflate).
    pub method: u16,
    /// General-purpose bit flags.
    pub flags: u16,
    /// Offset of the entry's local header in the archive.
    pub header_offset: u64,
    /// Unix permission bits, when the archive was made on Unix.
    pub unix_mode: Option<u32>,
}

/// Where the central directory is, from the end record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EndRecord {
    pub entries: u64,
    pub cd_size: u64,
    pub cd_offset: u64,
    /// Offset of the first byte after the central directory (the zip64 end record or the end record).
    pub cd_end_limit: u64,
}

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// What the end of the archive says, once the zip64 record (if any) is known.
pub(crate) enum Tail {
    Complete(EndRecord),
    /// The archive is zip64: the zip64 end record at `offset` must be read too.
    NeedZip64 {
        offset: u64,
        eocd_pos: u64,
    },
}

/// Finds the end-of-central-directory record in `tail`, the last bytes of an object of
/// `object_size` bytes.
pub(crate) fn parse_tail(tail: &[u8], object_size: u64) -> Result<Tail, String> {
    if tail.len() < EOCD_LEN {
        return Err(format!(
            "{object_size} bytes is too short for a zip archive"
        ));
    }
    let tail_start = object_size - tail.len() as u64;
    // The end record is the one whose comment length reaches exactly the end of the file. Two
    // such records (a whole zip hidden in the comment) mean two readers may see two archives.
    let mut candidates = (0..=tail.len() - EOCD_LEN).rev().filter(|&i| {
        u32_at(tail, i) == EOCD_SIG && i + EOCD_LEN + u16_at(tail, i + 20) as usize == tail.len()
    });
    let pos = candidates
        .next()
        .ok_or("no end-of-central-directory record (not a zip file, or truncated)")?;
    if candidates.next().is_some() {
        return Err(AMBIGUOUS_END.into());
    }
    let eocd = &tail[pos..];
    let comment = &eocd[EOCD_LEN..];
    if [
        LOCAL_HEADER_SIG,
        CENTRAL_HEADER_SIG,
        EOCD_SIG,
        ZIP64_EOCD_SIG,
    ]
    .iter()
    .any(|sig| comment.windows(4).any(|w| w == sig.to_le_bytes()))
    {
        return Err(AMBIGUOUS_END.into());
    }
    if u16_at(eocd, 4) != 0 || u16_at(eocd, 6) != 0 {
        return Err("multi-disk (split) archives are not supported".into());
    }
    let entries = u16_at(eocd, 10) as u64;
    let cd_size = u32_at(eocd, 12) as u64;
    let cd_offset = u32_at(eocd, 16) as u64;
    let eocd_pos = tail_start + pos as u64;
    let has_locator =
        pos >= ZIP64_LOCATOR_LEN && u32_at(tail, pos - ZIP64_LOCATOR_LEN) == ZIP64_LOCATOR_SIG;
    if has_locator {
        let zip64_offset = u64_at(tail, pos - ZIP64_LOCATOR_LEN + 8);
        return Ok(Tail::NeedZip64 {
            offset: zip64_offset,
            eocd_pos,
        });
    }
    if entries == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        return Err("end record points to a zip64 record that is missing".into());
    }
    check_span(cd_offset, cd_size, eocd_pos)?;
    Ok(Tail::Complete(EndRecord {
        entries,
        cd_size,
        cd_offset,
        cd_end_limit: eocd_pos,
    }))
}

/// Reads the zip64 end record (56 bytes at the offset the locator gave).
pub(crate) fn parse_zip64_eocd(
    record: &[u8],
    record_pos: u64,
    eocd_pos: u64,
) -> Result<EndRecord, String> {
    if record.len() < ZIP64_EOCD_LEN || u32_at(record, 0) != ZIP64_EOCD_SIG {
        return Err("zip64 end record is missing or damaged".into());
    }
    if record_pos >= eocd_pos {
        return Err("zip64 end record lies after the end record".into());
    }
    let entries = u64_at(record, 32);
    let cd_size = u64_at(record, 40);
    let cd_offset = u64_at(record, 48);
    check_span(cd_offset, cd_size, record_pos)?;
    Ok(EndRecord {
        entries,
        cd_size,
        cd_offset,
        cd_end_limit: record_pos,
    })
}

fn check_span(cd_offset: u64, cd_size: u64, limit: u64) -> Result<(), String> {
    match cd_offset.checked_add(cd_size) {
        Some(end) if end <= limit => Ok(()),
        _ => Err("central directory lies outside the archive".into()),
    }
}

/// Parses one central directory header from `header` (the 46 fixed bytes) and `rest`
/// (name, extra field and comment), checking the entry against the rules for untrusted input.
pub(crate) fn parse_central_header(header: &[u8], rest: &[u8]) -> Result<ZipEntry, ArtifactError> {
    let corrupt = |reason: &str| ArtifactError::CorruptEntry {
        name: "(central directory)".into(),
        reason: reason.into(),
    };
    if u32_at(header, 0) != CENTRAL_HEADER_SIG {
        return Err(corrupt("bad central directory header signature"));
    }
    let made_by = u16_at(header, 4);
    // The low byte is the zip specification version (63 = 6.3) the entry needs; later
    // versions mean features we do not read, and other readers refuse the whole archive.
    let version_needed = u16_at(header, 6) & 0xFF;
    let flags = u16_at(header, 8);
    let method = u16_at(header, 10);
    let crc32 = u32_at(header, 16);
    let mut compressed_size = u32_at(header, 20) as u64;
    let mut size = u32_at(header, 24) as u64;
    let name_len = u16_at(header, 28) as usize;
    let extra_len = u16_at(header, 30) as usize;
    let external = u32_at(header, 38);
    let mut header_offset = u32_at(header, 42) as u64;
    let name_bytes = &rest[..name_len];
    let extra = &rest[name_len..name_len + extra_len];

    let name = match std::str::from_utf8(name_bytes) {
        Ok(name) => name.to_string(),
        Err(_) => {
            return Err(ArtifactError::UnsafeEntry {
                name: String::from_utf8_lossy(name_bytes).into_owned(),
                reason: "name is not valid UTF-8".into(),
            })
        }
    };
    // Without the UTF-8 flag the zip format says CP437, which Python's zipfile and unzip use:
    // a non-ASCII name would be read as different paths by different tools, so it is refused.
    if flags & FLAG_UTF8 == 0 && !name.is_ascii() {
        return Err(ArtifactError::UnsafeEntry {
            name,
            reason: "non-ASCII name without the UTF-8 flag (bit 11): tools read it as CP437, so its path is ambiguous".into(),
        });
    }
    check_entry_name(&name).map_err(|reason| ArtifactError::UnsafeEntry {
        name: name.clone(),
        reason: reason.into(),
    })?;

    // Zip64 extended information: the 64-bit values, in order, for each field saturated above.
    let mut at = 0usize;
    while at + 4 <= extra.len() {
        let id = u16_at(extra, at);
        let len = u16_at(extra, at + 2) as usize;
        let body = extra
            .get(at + 4..at + 4 + len)
            .ok_or_else(|| corrupt("extra field overruns its header"))?;
        if id == 0x0001 {
            let mut field = 0usize;
            let mut next = |value: &mut u64| -> Result<(), ArtifactError> {
                if *value == 0xFFFF_FFFF {
                    let bytes = body
                        .get(field..field + 8)
                        .ok_or_else(|| corrupt("zip64 extra field too short"))?;
                    *value = u64_at(bytes, 0);
                    field += 8;
                }
                Ok(())
            };
            next(&mut size)?;
            next(&mut compressed_size)?;
            next(&mut header_offset)?;
        }
        at += 4 + len;
    }

    let unix_mode = (made_by >> 8 == 3).then_some(external >> 16);
    let file_type = unix_mode.map(|m| m & S_IFMT).filter(|t| *t != 0);
    match file_type {
        Some(S_IFLNK) => {
            return Err(ArtifactError::UnsafeEntry {
                name,
                reason: "symbolic link entries are refused".into(),
            })
        }
        Some(S_IFREG) | Some(S_IFDIR) | None => {}
        Some(_) => {
            return Err(ArtifactError::UnsafeEntry {
                name,
                reason: "special file (device, FIFO or socket) entries are refused".into(),
            })
        }
    }
    if version_needed > MAX_VERSION_NEEDED {
        return Err(ArtifactError::Unsupported {
            name,
            reason: format!(
                "it needs zip version {}.{} to extract (at most 6.3 is read)",
                version_needed / 10,
                version_needed % 10
            ),
        });
    }
    if flags & FLAG_ENCRYPTED != 0 {
        return Err(ArtifactError::Unsupported {
            name,
            reason: "encrypted entries are not supported".into(),
        });
    }
    if method != METHOD_STORED && method != METHOD_DEFLATED {
        return Err(ArtifactError::Unsupported {
            name,
            reason: format!(
                "compression method {method} is not supported (only stored and deflate)"
            ),
        });
    }
    let is_dir = name.ends_with('/') || file_type == Some(S_IFDIR);
    Ok(ZipEntry {
        name,
        is_dir,
        size,
        compressed_size,
        crc32,
        method,
        flags,
        header_offset,
        unix_mode,
    })
}

/// Checks the whole set of entries against the limits and against overlapping data (the
/// trick of non-recursive zip bombs), and returns them in archive order.
pub(crate) fn check_entries(
    mut entries: Vec<ZipEntry>,
    cd_offset: u64,
    limits: &ZipLimits,
    budget: &super::MemoryBudget,
) -> Result<Vec<ZipEntry>, ArtifactError> {
    let total = entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.size));
    let total_compressed = entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.compressed_size));
    if total > limits.max_total_bytes {
        return Err(ArtifactError::OverLimit(format!(
            "the archive declares {total} uncompressed bytes, more than the limit of {} bytes",
            limits.max_total_bytes
        )));
    }
    if let Some(entry) = entries.iter().find(|e| {
        e.size > ZipLimits::RATIO_FLOOR && e.size / e.compressed_size.max(1) > limits.max_ratio
    }) {
        return Err(ArtifactError::OverLimit(format!(
            "entry `{}` expands {} bytes to {} bytes, a ratio over the limit of {}:1",
            entry.name, entry.compressed_size, entry.size, limits.max_ratio
        )));
    }
    if total > ZipLimits::RATIO_FLOOR && total / total_compressed.max(1) > limits.max_ratio {
        return Err(ArtifactError::OverLimit(format!(
            "the archive expands {total_compressed} bytes to {total} bytes, a ratio over the limit of {}:1",
            limits.max_ratio
        )));
    }
    entries.sort_by_key(|e| e.header_offset);
    if let Some(first) = entries.first() {
        if first.header_offset != 0 {
            return Err(ArtifactError::UnsafeEntry {
                name: first.name.clone(),
                reason: format!(
                    "{} bytes of data come before the first entry (a self-extractor or a hidden archive)",
                    first.header_offset
                ),
            });
        }
    }
    if let Some(folder) = entries.iter().find(|e| e.is_dir && e.size > 0) {
        return Err(ArtifactError::UnsafeEntry {
            name: folder.name.clone(),
            reason: "a folder entry that holds data".into(),
        });
    }
    // The collision check holds every name's extracted identity at once.
    let identities: u64 = entries.iter().map(|e| e.name.len() as u64 + 48).sum();
    let _checking = budget.reserve(identities, "checking the archive's names for collisions")?;
    let mut seen = std::collections::HashMap::with_capacity(entries.len());
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if data_end(a)? > b.header_offset {
            return Err(ArtifactError::UnsafeEntry {
                name: b.name.clone(),
                reason: format!(
                    "its data overlaps entry `{}` (overlapping entries are a zip-bomb technique)",
                    a.name
                ),
            });
        }
    }
    if let Some(last) = entries.last() {
        if data_end(last)? > cd_offset {
            return Err(ArtifactError::UnsafeEntry {
                name: last.name.clone(),
                reason: "its data overlaps the central directory".into(),
            });
        }
    }
    for entry in &entries {
        if let Some(other) = seen.insert(extracted_identity(&entry.name), entry.name.as_str()) {
            return Err(ArtifactError::UnsafeEntry {
                name: entry.name.clone(),
                reason: if other.trim_end_matches('/') == entry.name.trim_end_matches('/') {
                    "the archive holds two entries with this path".into()
                } else {
                    format!("it collides with `{other}` once extracted (names equal ignoring case or Unicode normalization)")
                },
            });
        }
    }
    Ok(entries)
}

/// Where an entry's data ends at the least (local header, name, compressed data); an offset or
/// size past what 64 bits hold is refused, never wrapped.
fn data_end(entry: &ZipEntry) -> Result<u64, ArtifactError> {
    entry
        .header_offset
        .checked_add(LOCAL_HEADER_LEN)
        .and_then(|n| n.checked_add(entry.name.len() as u64))
        .and_then(|n| n.checked_add(entry.compressed_size))
        .ok_or_else(|| ArtifactError::UnsafeEntry {
            name: entry.name.clone(),
            reason: "its offset and size overflow 64 bits".into(),
        })
}

/// The file an entry becomes on a case-insensitive, normalizing file system or key space:
/// NFC-normalized, lower-cased, without a folder's trailing `/`.
fn extracted_identity(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.trim_end_matches('/')
        .nfc()
        .collect::<String>()
        .to_lowercase()
}
