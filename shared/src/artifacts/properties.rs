//! Property tests of the zip parsers: whatever the bytes, no panic and no wrapped arithmetic;
//! and whatever we accept, Python's `zipfile` reads as the same entries.

use super::central_directory::*;
use super::entry_name::check_entry_name;
use super::limits::ZipLimits;
use proptest::prelude::*;
use std::io::Write;

/// The entries we would accept from `bytes`, read with the same parsers `ArtifactReader::open`
/// uses (without S3: the whole archive is at hand).
fn accepted_entries(bytes: &[u8]) -> Result<Vec<String>, String> {
    let size = bytes.len() as u64;
    let tail_len = size.min(MAX_TAIL) as usize;
    let tail = &bytes[bytes.len() - tail_len..];
    let end = match parse_tail(tail, size)? {
        Tail::Complete(end) => end,
        Tail::NeedZip64 { offset, eocd_pos } => {
            let start = usize::try_from(offset).map_err(|e| e.to_string())?;
            let record = bytes
                .get(start..start.saturating_add(ZIP64_EOCD_LEN))
                .ok_or("zip64 record outside")?;
            parse_zip64_eocd(record, offset, eocd_pos)?
        }
    };
    let limits = ZipLimits::default();
    if end.entries > limits.max_entries {
        return Err("too many entries".into());
    }
    let cd_start = end.cd_offset as usize;
    let cd = &bytes[cd_start..cd_start + end.cd_size as usize];
    let mut at = 0;
    let mut entries = Vec::new();
    while at + CENTRAL_HEADER_LEN <= cd.len() {
        let header = &cd[at..at + CENTRAL_HEADER_LEN];
        if u32_at(header, 0) != CENTRAL_HEADER_SIG {
            break;
        }
        let rest_len =
            u16_at(header, 28) as usize + u16_at(header, 30) as usize + u16_at(header, 32) as usize;
        let rest = cd
            .get(at + CENTRAL_HEADER_LEN..at + CENTRAL_HEADER_LEN + rest_len)
            .ok_or("header overruns the central directory")?;
        entries.push(parse_central_header(header, rest).map_err(|e| e.to_string())?);
        at += CENTRAL_HEADER_LEN + rest_len;
    }
    if entries.len() as u64 != end.entries {
        return Err("entry count differs".into());
    }
    let entries = check_entries(
        entries,
        end.cd_offset,
        &limits,
        &crate::artifacts::MemoryBudget::new(u64::MAX),
    )
    .map_err(|e| e.to_string())?;
    Ok(entries.into_iter().map(|e| e.name).collect())
}

fn python_names(bytes: &[u8]) -> Option<Vec<String>> {
    let mut file = tempfile::NamedTempFile::new().ok()?;
    file.write_all(bytes).ok()?;
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import json, sys, zipfile; print(json.dumps(zipfile.ZipFile(sys.argv[1]).namelist()))",
        ])
        .arg(file.path())
        .output()
        .expect("python3 runs (the test command installs it)");
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn zip_of(files: &[(String, Vec<u8>)], comment: &[u8]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(data).unwrap();
    }
    let mut bytes = writer.finish().unwrap().into_inner();
    let eocd = bytes.len() - EOCD_LEN;
    bytes[eocd + 20..eocd + 22].copy_from_slice(&(comment.len() as u16).to_le_bytes());
    bytes.extend_from_slice(comment);
    bytes
}

fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9_.é-]{1,12}(/[a-zA-Z0-9_.-]{1,8}){0,2}").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_end_record_parser_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..400), extra in 0u64..u64::MAX / 2) {
        let size = tail.len() as u64 + extra;
        let _ = parse_tail(&tail, size);
        let _ = parse_zip64_eocd(&tail, extra, size);
    }

    #[test]
    fn the_central_header_parser_never_panics(header in proptest::collection::vec(any::<u8>(), CENTRAL_HEADER_LEN), rest in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut header = header;
        header[0..4].copy_from_slice(&CENTRAL_HEADER_SIG.to_le_bytes());
        let wanted = u16_at(&header, 28) as usize + u16_at(&header, 30) as usize + u16_at(&header, 32) as usize;
        let mut rest = rest;
        rest.resize(wanted, b'a');
        let _ = parse_central_header(&header, &rest);
    }

    #[test]
    fn entry_checks_never_wrap_offsets_or_sizes(offsets in proptest::collection::vec(any::<u64>(), 1..6), sizes in proptest::collection::vec(any::<u64>(), 1..6), cd_offset in any::<u64>()) {
        let entries: Vec<ZipEntry> = offsets.iter().zip(sizes.iter().cycle()).enumerate().map(|(i, (&header_offset, &size))| ZipEntry {
            name: format!("f{i}"), is_dir: false, size, compressed_size: size, crc32: 0, method: 0, flags: 0, header_offset, unix_mode: None,
        }).collect();
        let _ = check_entries(entries, cd_offset, &ZipLimits::default(), &crate::artifacts::MemoryBudget::new(u64::MAX));
    }

    #[test]
    fn accepted_names_are_plain_relative_paths(name in "\\PC{0,40}") {
        if check_entry_name(&name).is_ok() {
            let inner = name.strip_suffix('/').unwrap_or(&name);
            prop_assert!(!name.starts_with('/') && !name.contains('\\') && !name.contains('\0'));
            prop_assert!(inner.split('/').all(|part| !part.is_empty() && part != "." && part != ".."));
        }
    }

}

proptest! {
    // Each accepted case runs Python once: fewer cases keep the suite quick.
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn what_we_accept_python_reads_as_the_same_entries(
        files in proptest::collection::vec((name(), proptest::collection::vec(any::<u8>(), 0..64)), 1..5),
        comment in proptest::collection::vec(any::<u8>(), 0..40),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    ) {
        let mut bytes = zip_of(&files, &comment);
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if let Ok(ours) = accepted_entries(&bytes) {
            let theirs = python_names(&bytes);
            if theirs.as_ref() != Some(&ours) {
                // Kept for whoever debugs the disagreement.
                let _ = std::fs::write(std::env::temp_dir().join("zip-disagreement.zip"), &bytes);
            }
            prop_assert_eq!(Some(ours), theirs, "we accepted an archive Python reads differently");
        }
    }
}

#[test]
fn a_zip_hidden_in_the_comment_is_refused_though_python_reads_it() {
    let hidden = zip_of(&[("evil.html".into(), b"x".to_vec())], b"");
    let bytes = zip_of(&[("index.html".into(), b"ok".to_vec())], &hidden);
    assert!(accepted_entries(&bytes).is_err());
}
