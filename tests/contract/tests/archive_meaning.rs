//! One archive, one meaning: archives that different zip readers would read differently, or
//! whose names collide once extracted, are refused with nothing written.

mod common;

use common::*;

/// Sets the end record's comment to `comment` (the archive must have none yet).
fn with_comment(mut zip: Vec<u8>, comment: &[u8]) -> Vec<u8> {
    let eocd = zip.len() - 22;
    assert_eq!(zip[eocd..eocd + 4], [0x50, 0x4b, 0x05, 0x06]);
    zip[eocd + 20..eocd + 22].copy_from_slice(&(comment.len() as u16).to_le_bytes());
    zip.extend_from_slice(comment);
    zip
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn put_u32(bytes: &mut [u8], at: usize, value: u32) {
    bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[tokio::test]
async fn refuses_a_second_archive_hidden_in_the_comment() {
    let hidden = zip_with(&[("index.html", b"<script>steal()</script>")]);
    let zip = with_comment(zip_with(&[("index.html", b"<h1>hello</h1>")]), &hidden);
    assert_refused(zip, "second archive hidden").await;
}

#[tokio::test]
async fn refuses_zip_records_in_the_comment_even_without_a_whole_archive() {
    let zip = with_comment(
        zip_with(&[("a.txt", b"a")]),
        b"note PK\x01\x02 central header",
    );
    assert_refused(zip, "comment holds zip records").await;
}

#[tokio::test]
async fn refuses_data_before_the_first_entry() {
    let zip = zip_with(&[("a.txt", b"hello"), ("b.txt", b"world")]);
    let prefix = b"#!/bin/sh\nexec unzip \"$0\"\n".to_vec();
    let mut shifted = prefix.clone();
    shifted.extend_from_slice(&zip);
    // Offsets as a self-extractor writes them: relative to the start of the file.
    let shift = prefix.len() as u32;
    for at in central_headers(&shifted) {
        let offset = u32_at(&shifted, at + 42);
        put_u32(&mut shifted, at + 42, offset + shift);
    }
    let eocd = shifted.len() - 22;
    let cd_offset = u32_at(&shifted, eocd + 16);
    put_u32(&mut shifted, eocd + 16, cd_offset + shift);
    assert_refused(shifted, "come before the first entry").await;
}

#[tokio::test]
async fn refuses_a_local_header_whose_crc_disagrees_with_the_central_directory() {
    let mut zip = zip_with(&[("a.txt", b"hello hello")]);
    for at in local_headers(&zip) {
        zip[at + 14] ^= 0x55;
    }
    assert_refused(zip, "local header's CRC-32 or sizes differ").await;
}

#[tokio::test]
async fn refuses_a_local_header_that_names_another_file() {
    let mut zip = zip_with(&[("aaaaaaaaaaaaaaa.txt", b"x")]);
    let at = local_headers(&zip)[0];
    zip[at + 30..at + 30 + 19].copy_from_slice(b"../../evil.txt.....");
    assert_refused(zip, "names a different file").await;
}

#[tokio::test]
async fn refuses_names_equal_ignoring_case() {
    assert_refused(
        zip_with(&[("docs/Readme.md", b"1"), ("docs/README.md", b"2")]),
        "collides with `docs/Readme.md`",
    )
    .await;
}

#[tokio::test]
async fn refuses_names_equal_after_unicode_normalization() {
    assert_refused(
        zip_with(&[("caf\u{e9}.txt", b"1"), ("cafe\u{301}.txt", b"2")]),
        "Unicode normalization",
    )
    .await;
}

#[tokio::test]
async fn refuses_dot_and_empty_path_components() {
    assert_refused(
        zip_with(&[("a/./b.txt", b"1")]),
        "empty or `.` path component",
    )
    .await;
    assert_refused(
        zip_with(&[("a//b.txt", b"1")]),
        "empty or `.` path component",
    )
    .await;
}

#[tokio::test]
async fn refuses_a_folder_entry_that_holds_data() {
    let mut zip = zip_with(&[("site/", b"secret payload")]);
    // Make sure the reader sees a folder name with a size, whatever the writer did.
    let cd = central_headers(&zip)[0];
    assert_eq!(&zip[cd + 46..cd + 51], b"site/");
    assert!(u32_at(&zip, cd + 24) > 0);
    zip[cd + 38..cd + 42].copy_from_slice(&0u32.to_le_bytes());
    assert_refused(zip, "folder entry that holds data").await;
}

#[tokio::test]
async fn refuses_zip64_sizes_that_overflow_instead_of_wrapping() {
    let zip = zip_with(&[("a.txt", b"hello")]);
    let cd = central_headers(&zip)[0];
    let name_len = u16::from_le_bytes([zip[cd + 28], zip[cd + 29]]) as usize;
    let old_extra = u16::from_le_bytes([zip[cd + 30], zip[cd + 31]]) as usize;
    // The compressed size moves to a zip64 extra field holding a value near 2^64.
    let mut header = zip[cd..cd + 46 + name_len].to_vec();
    put_u32(&mut header, 20, 0xFFFF_FFFF);
    header[30..32].copy_from_slice(&12u16.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes());
    header.extend_from_slice(&8u16.to_le_bytes());
    header.extend_from_slice(&(u64::MAX - 10).to_le_bytes());
    let comment_len = u16::from_le_bytes([zip[cd + 32], zip[cd + 33]]) as usize;
    let after = cd + 46 + name_len + old_extra + comment_len;
    header.extend_from_slice(&zip[cd + 46 + name_len + old_extra..after]);
    let mut crafted = zip[..cd].to_vec();
    crafted.extend_from_slice(&header);
    crafted.extend_from_slice(&zip[after..]);
    let eocd = crafted.len() - 22;
    let cd_size = u32_at(&crafted, eocd + 12) as usize;
    put_u32(
        &mut crafted,
        eocd + 12,
        (cd_size + header.len() - (after - cd)) as u32,
    );
    assert_refused(crafted, "overflow 64 bits").await;
}
