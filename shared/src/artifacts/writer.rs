//! Streaming zip output straight into S3.
//!
//! Entries are deflated as they are written and use data descriptors, so no entry is ever
//! held whole in memory; zip64 records are written when sizes or counts need them.

use super::budget::Reservation;
use super::central_directory::*;
use super::entry_name::check_entry_name;
use super::error::ArtifactError;
use super::upload::ObjectUpload;
use flate2::{Compress, Compression, FlushCompress, Status};

const VERSION_MADE_BY_UNIX: u16 = (3 << 8) | 45;
const VERSION_NEEDED: u16 = 20;
const VERSION_NEEDED_ZIP64: u16 = 45;
/// DOS date 1980-01-01 00:00: fixed so that the same content gives the same archive bytes.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

/// What was written, for summaries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenArtifact {
    /// The bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// How many entries the zip holds.
    pub entries: usize,
    /// Size of the zip in bytes.
    pub bytes: u64,
}

struct Written {
    name: String,
    crc32: u32,
    compressed_size: u64,
    size: u64,
    offset: u64,
    method: u16,
    mode: u32,
}

struct Open {
    name: String,
    offset: u64,
    crc: crc32fast::Hasher,
    size: u64,
    compressed_size: u64,
    deflate: Option<Compress>,
    mode: u32,
}

/// An output artifact being written. Call [`ArtifactWriter::finish`] to publish it; on an
/// error or [`ArtifactWriter::abort`] nothing is left in S3.
pub struct ArtifactWriter {
    upload: ObjectUpload,
    offset: u64,
    entries: Vec<Written>,
    open: Option<Open>,
    out: Vec<u8>,
    bucket: String,
    key: String,
    entry_count: usize,
    /// What `entries` (the central directory to come) holds of the job's memory budget.
    held: Reservation,
}

impl ArtifactWriter {
    pub(crate) fn new(upload: ObjectUpload, bucket: &str, key: &str, held: Reservation) -> Self {
        Self {
            upload,
            offset: 0,
            entries: Vec::new(),
            open: None,
            out: Vec::with_capacity(64 * 1024),
            bucket: bucket.into(),
            key: key.into(),
            entry_count: 0,
            held,
        }
    }

    /// Starts a file entry (deflated, mode 0644). The previous entry is finished first.
    pub async fn start_file(&mut self, name: &str) -> Result<(), ArtifactError> {
        self.start(name, true, 0o100_644).await
    }

    /// Starts a file entry stored without compression (for data that is already compressed).
    pub async fn start_stored_file(&mut self, name: &str) -> Result<(), ArtifactError> {
        self.start(name, false, 0o100_644).await
    }

    /// Adds a directory entry; `name` gets a trailing `/` if it lacks one.
    pub async fn add_directory(&mut self, name: &str) -> Result<(), ArtifactError> {
        let name = if name.ends_with('/') {
            name.to_string()
        } else {
            format!("{name}/")
        };
        self.start(&name, false, 0o040_755).await?;
        self.finish_entry().await
    }

    /// Adds a whole file from memory.
    pub async fn add_file(&mut self, name: &str, data: &[u8]) -> Result<(), ArtifactError> {
        self.start_file(name).await?;
        self.write(data).await?;
        self.finish_entry().await
    }

    async fn start(&mut self, name: &str, deflate: bool, mode: u32) -> Result<(), ArtifactError> {
        self.finish_entry().await?;
        check_entry_name(name)
            .map_err(|reason| ArtifactError::InvalidWrite(format!("`{name}`: {reason}")))?;
        if name.len() > u16::MAX as usize {
            return Err(ArtifactError::InvalidWrite(format!(
                "`{name}`: name longer than 65535 bytes"
            )));
        }
        self.held.grow(
            (std::mem::size_of::<Written>() + name.len()) as u64,
            "the output artifact's central directory",
        )?;
        let method = if deflate {
            METHOD_DEFLATED
        } else {
            METHOD_STORED
        };
        let mut header = Vec::with_capacity(30 + name.len());
        header.extend_from_slice(&LOCAL_HEADER_SIG.to_le_bytes());
        header.extend_from_slice(&VERSION_NEEDED_ZIP64.to_le_bytes());
        header.extend_from_slice(&(FLAG_DATA_DESCRIPTOR | FLAG_UTF8).to_le_bytes());
        header.extend_from_slice(&method.to_le_bytes());
        header.extend_from_slice(&DOS_TIME.to_le_bytes());
        header.extend_from_slice(&DOS_DATE.to_le_bytes());
        header.extend_from_slice(&[0u8; 12]); // CRC and sizes follow the data, in the descriptor.
        header.extend_from_slice(&(name.len() as u16).to_le_bytes());
        header.extend_from_slice(&0u16.to_le_bytes());
        header.extend_from_slice(name.as_bytes());
        let offset = self.offset;
        self.emit(&header).await?;
        self.open = Some(Open {
            name: name.to_string(),
            offset,
            crc: crc32fast::Hasher::new(),
            size: 0,
            compressed_size: 0,
            deflate: deflate.then(|| Compress::new(Compression::default(), false)),
            mode,
        });
        Ok(())
    }

    /// Appends data to the open entry.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), ArtifactError> {
        let Some(open) = self.open.as_mut() else {
            return Err(ArtifactError::InvalidWrite(
                "write with no open entry".into(),
            ));
        };
        open.crc.update(data);
        open.size += data.len() as u64;
        match open.deflate.as_mut() {
            None => {
                open.compressed_size += data.len() as u64;
                let data = data.to_vec();
                self.emit(&data).await
            }
            Some(deflate) => {
                while !data.is_empty() {
                    self.out.clear();
                    let before = deflate.total_in();
                    deflate
                        .compress_vec(data, &mut self.out, FlushCompress::None)
                        .map_err(|e| ArtifactError::InvalidWrite(format!("deflate failed: {e}")))?;
                    data = &data[(deflate.total_in() - before) as usize..];
                    open.compressed_size += self.out.len() as u64;
                    let chunk = std::mem::take(&mut self.out);
                    self.offset += chunk.len() as u64;
                    self.upload.write(&chunk).await?;
                    self.out = chunk;
                }
                Ok(())
            }
        }
    }

    /// Closes the open entry (if any) with its data descriptor.
    pub async fn finish_entry(&mut self) -> Result<(), ArtifactError> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        let method = if let Some(deflate) = open.deflate.as_mut() {
            loop {
                self.out.clear();
                let status = deflate
                    .compress_vec(&[], &mut self.out, FlushCompress::Finish)
                    .map_err(|e| ArtifactError::InvalidWrite(format!("deflate failed: {e}")))?;
                open.compressed_size += self.out.len() as u64;
                let chunk = std::mem::take(&mut self.out);
                self.offset += chunk.len() as u64;
                self.upload.write(&chunk).await?;
                self.out = chunk;
                if status == Status::StreamEnd {
                    break;
                }
            }
            METHOD_DEFLATED
        } else {
            METHOD_STORED
        };
        let crc32 = open.crc.clone().finalize();
        let zip64 = open.size >= 0xFFFF_FFFF || open.compressed_size >= 0xFFFF_FFFF;
        let mut descriptor = Vec::with_capacity(24);
        descriptor.extend_from_slice(&DATA_DESCRIPTOR_SIG.to_le_bytes());
        descriptor.extend_from_slice(&crc32.to_le_bytes());
        if zip64 {
            descriptor.extend_from_slice(&open.compressed_size.to_le_bytes());
            descriptor.extend_from_slice(&open.size.to_le_bytes());
        } else {
            descriptor.extend_from_slice(&(open.compressed_size as u32).to_le_bytes());
            descriptor.extend_from_slice(&(open.size as u32).to_le_bytes());
        }
        self.emit(&descriptor).await?;
        self.entries.push(Written {
            name: open.name,
            crc32,
            compressed_size: open.compressed_size,
            size: open.size,
            offset: open.offset,
            method,
            mode: open.mode,
        });
        Ok(())
    }

    async fn emit(&mut self, bytes: &[u8]) -> Result<(), ArtifactError> {
        self.offset += bytes.len() as u64;
        self.upload.write(bytes).await
    }

    /// Writes the central directory and completes the upload.
    pub async fn finish(mut self) -> Result<WrittenArtifact, ArtifactError> {
        match self.write_central_directory().await {
            Ok(()) => {}
            Err(err) => {
                self.upload.abort().await;
                return Err(err);
            }
        }
        let entries = self.entry_count;
        let (bucket, key) = (self.bucket.clone(), self.key.clone());
        let bytes = self.upload.finish().await?;
        Ok(WrittenArtifact {
            bucket,
            key,
            entries,
            bytes,
        })
    }

    /// Abandons the artifact; any multipart upload is aborted.
    pub async fn abort(mut self) {
        self.upload.abort().await;
    }

    async fn write_central_directory(&mut self) -> Result<(), ArtifactError> {
        self.finish_entry().await?;
        let cd_offset = self.offset;
        let mut cd = Vec::with_capacity(64 * 1024);
        let written = std::mem::take(&mut self.entries);
        self.entry_count = written.len();
        for entry in &written {
            let needs64 = entry.size >= 0xFFFF_FFFF
                || entry.compressed_size >= 0xFFFF_FFFF
                || entry.offset >= 0xFFFF_FFFF;
            let mut extra = Vec::new();
            if needs64 {
                extra.extend_from_slice(&1u16.to_le_bytes());
                extra.extend_from_slice(&24u16.to_le_bytes());
                extra.extend_from_slice(&entry.size.to_le_bytes());
                extra.extend_from_slice(&entry.compressed_size.to_le_bytes());
                extra.extend_from_slice(&entry.offset.to_le_bytes());
            }
            let sat = |v: u64| if needs64 { 0xFFFF_FFFFu32 } else { v as u32 };
            cd.extend_from_slice(&CENTRAL_HEADER_SIG.to_le_bytes());
            cd.extend_from_slice(&VERSION_MADE_BY_UNIX.to_le_bytes());
            cd.extend_from_slice(
                &(if needs64 {
                    VERSION_NEEDED_ZIP64
                } else {
                    VERSION_NEEDED
                })
                .to_le_bytes(),
            );
            cd.extend_from_slice(&(FLAG_DATA_DESCRIPTOR | FLAG_UTF8).to_le_bytes());
            cd.extend_from_slice(&entry.method.to_le_bytes());
            cd.extend_from_slice(&DOS_TIME.to_le_bytes());
            cd.extend_from_slice(&DOS_DATE.to_le_bytes());
            cd.extend_from_slice(&entry.crc32.to_le_bytes());
            cd.extend_from_slice(&sat(entry.compressed_size).to_le_bytes());
            cd.extend_from_slice(&sat(entry.size).to_le_bytes());
            cd.extend_from_slice(&(entry.name.len() as u16).to_le_bytes());
            cd.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            cd.extend_from_slice(&0u16.to_le_bytes()); // comment
            cd.extend_from_slice(&0u16.to_le_bytes()); // disk
            cd.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            cd.extend_from_slice(&(entry.mode << 16).to_le_bytes());
            cd.extend_from_slice(&sat(entry.offset).to_le_bytes());
            cd.extend_from_slice(entry.name.as_bytes());
            cd.extend_from_slice(&extra);
            if cd.len() >= 64 * 1024 {
                let chunk = std::mem::take(&mut cd);
                self.emit(&chunk).await?;
            }
        }
        self.emit(&cd).await?;
        let cd_size = self.offset - cd_offset;
        let count = written.len() as u64;
        let mut end = Vec::with_capacity(ZIP64_EOCD_LEN + ZIP64_LOCATOR_LEN + EOCD_LEN);
        let zip64 = count >= 0xFFFF || cd_size >= 0xFFFF_FFFF || cd_offset >= 0xFFFF_FFFF;
        if zip64 {
            let record_offset = self.offset;
            end.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
            end.extend_from_slice(&44u64.to_le_bytes());
            end.extend_from_slice(&VERSION_MADE_BY_UNIX.to_le_bytes());
            end.extend_from_slice(&VERSION_NEEDED_ZIP64.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&count.to_le_bytes());
            end.extend_from_slice(&cd_size.to_le_bytes());
            end.extend_from_slice(&cd_offset.to_le_bytes());
            end.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
            end.extend_from_slice(&0u32.to_le_bytes());
            end.extend_from_slice(&record_offset.to_le_bytes());
            end.extend_from_slice(&1u32.to_le_bytes());
        }
        let count16 = if zip64 { 0xFFFF } else { count as u16 };
        let sat = |v: u64| if zip64 { 0xFFFF_FFFFu32 } else { v as u32 };
        end.extend_from_slice(&EOCD_SIG.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&count16.to_le_bytes());
        end.extend_from_slice(&count16.to_le_bytes());
        end.extend_from_slice(&sat(cd_size).to_le_bytes());
        end.extend_from_slice(&sat(cd_offset).to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        self.emit(&end).await
    }
}
