//! `manifest`: the artifact's files plus `manifest.json` (`[{"path","size","sha256"}]`, sorted
//! by path); the manifest's own SHA-256 is the `ArtifactSha256` output variable.
//!
//! Memory per file is a position, a size and a raw digest (48 bytes), held against the job's
//! memory budget; names are read from the input's table of contents, and the manifest is
//! streamed into the output as it is written, never held whole.

use crate::params::ManifestStep;
use crate::StepReport;
use pipeline_ext::artifacts::ArtifactWriter;
use pipeline_ext::job::JobError;
use sha2::{Digest, Sha256};

pub const MANIFEST_FILE: &str = "manifest.json";

/// One file of the manifest: its position in the input's entries, its size and SHA-256.
struct FileRecord {
    entry: usize,
    size: u64,
    sha256: [u8; 32],
}

pub async fn run(job: &crate::ProcessorJob, step: &ManifestStep) -> Result<StepReport, JobError> {
    let store = job.artifacts()?;
    let reader = store.open(job.input(&step.input)?).await?;
    if reader.entries().iter().any(|e| e.name == MANIFEST_FILE) {
        return Err(JobError::config(format!(
            "manifest: `{}` already has a {MANIFEST_FILE} at its root",
            step.input
        )));
    }
    let mut entries = reader.stream().await?;
    let mut writer = store.create(job.output(&step.output)?);
    let work = async {
        let mut held = store.budget().reservation();
        let mut records = Vec::new();
        // `stream()` reads every entry in order: the n-th entry is `reader.entries()[n]`.
        let mut position = 0usize;
        while let Some(entry) = entries.next_entry().await? {
            position += 1;
            if entry.is_dir {
                continue;
            }
            held.grow(
                std::mem::size_of::<FileRecord>() as u64,
                "the manifest's list of files",
            )?;
            writer.start_file(&entry.name).await?;
            let mut sha256 = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = entries.read_chunk().await? {
                sha256.update(&chunk);
                size += chunk.len() as u64;
                writer.write(&chunk).await?;
            }
            records.push(FileRecord {
                entry: position - 1,
                size,
                sha256: sha256.finalize().into(),
            });
        }
        let names = reader.entries();
        records.sort_by(|a, b| names[a.entry].name.cmp(&names[b.entry].name));
        let files = records.len();
        let digest = write_manifest(&mut writer, &records, |i| &names[i].name).await?;
        Ok((files, digest))
    }
    .await;
    let ((files, digest), written) = crate::transform::finish_or_abort(writer, work).await?;
    Ok(StepReport {
        summary: format!(
            "{MANIFEST_FILE} of {files} files (sha256 {digest}) into `{}` (s3://{}/{})",
            step.output, written.bucket, written.key
        ),
        variables: vec![("ArtifactSha256", digest)],
    })
}

/// Bytes of the manifest gathered before each write to the output.
const WRITE_CHUNK: usize = 64 * 1024;

/// Writes `manifest.json` in chunks; returns its hex SHA-256.
async fn write_manifest<'a>(
    writer: &mut ArtifactWriter,
    records: &[FileRecord],
    name: impl Fn(usize) -> &'a str,
) -> Result<String, JobError> {
    writer.start_file(MANIFEST_FILE).await?;
    let mut digest = Sha256::new();
    for chunk in ManifestChunks::new(records, name) {
        digest.update(&chunk);
        writer.write(&chunk).await?;
    }
    Ok(hex::encode(digest.finalize()))
}

/// `manifest.json` as `serde_json::to_vec_pretty` of the records writes it, plus a final
/// newline, in chunks of about [`WRITE_CHUNK`] bytes.
struct ManifestChunks<'r, F> {
    records: std::slice::Iter<'r, FileRecord>,
    name: F,
    started: bool,
    done: bool,
}

impl<'r, 'a, F: Fn(usize) -> &'a str> ManifestChunks<'r, F> {
    fn new(records: &'r [FileRecord], name: F) -> Self {
        Self {
            records: records.iter(),
            name,
            started: false,
            done: false,
        }
    }
}

impl<'r, 'a, F: Fn(usize) -> &'a str> Iterator for ManifestChunks<'r, F> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        let mut out = Vec::with_capacity(WRITE_CHUNK + 1024);
        if !self.started && self.records.as_slice().is_empty() {
            self.done = true;
            out.extend_from_slice(b"[]\n");
            return Some(out);
        }
        while out.len() < WRITE_CHUNK {
            let Some(record) = self.records.next() else {
                self.done = true;
                out.extend_from_slice(b"\n]\n");
                break;
            };
            out.extend_from_slice(if self.started { b",\n" } else { b"[\n" });
            self.started = true;
            append_record(&mut out, (self.name)(record.entry), record);
        }
        Some(out)
    }
}

fn append_record(out: &mut Vec<u8>, path: &str, record: &FileRecord) {
    out.extend_from_slice(b"  {\n    \"path\": ");
    // A name serialises as a JSON string whatever it holds: writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, path);
    out.extend_from_slice(b",\n    \"size\": ");
    out.extend_from_slice(record.size.to_string().as_bytes());
    out.extend_from_slice(b",\n    \"sha256\": \"");
    out.extend_from_slice(hex::encode(record.sha256).as_bytes());
    out.extend_from_slice(b"\"\n  }");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(serde::Serialize)]
    struct Pretty<'a> {
        path: &'a str,
        size: u64,
        sha256: String,
    }

    proptest! {
        /// The streamed manifest is byte for byte what `to_vec_pretty` wrote before, so the
        /// `ArtifactSha256` of an unchanged artifact does not change.
        #[test]
        fn streamed_manifest_is_what_serde_pretty_prints(
            files in proptest::collection::vec(("\\PC{0,12}|[\"\\\\\\x00-\\x1f]{0,4}", any::<u64>(), any::<[u8; 32]>()), 0..6),
            long_names in any::<bool>(),
        ) {
            // Long names make several chunks.
            let files: Vec<(String, u64, [u8; 32])> = files
                .into_iter()
                .map(|(p, s, d)| (if long_names { p.repeat(1 + WRITE_CHUNK / 8) } else { p }, s, d))
                .collect();
            let records: Vec<FileRecord> = files
                .iter()
                .enumerate()
                .map(|(entry, (_, size, sha256))| FileRecord { entry, size: *size, sha256: *sha256 })
                .collect();
            let streamed: Vec<u8> =
                ManifestChunks::new(&records, |i| files[i].0.as_str()).flatten().collect();
            let pretty: Vec<Pretty> = files
                .iter()
                .map(|(path, size, sha256)| Pretty { path, size: *size, sha256: hex::encode(sha256) })
                .collect();
            let mut expected = serde_json::to_vec_pretty(&pretty).unwrap();
            expected.push(b'\n');
            prop_assert_eq!(streamed, expected);
        }
    }
}
