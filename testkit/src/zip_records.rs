//! Where the records of a zip archive are, for tests that craft hostile archives byte by byte.

/// Offsets of every central directory header (`PK\1\2`).
pub fn central_headers(bytes: &[u8]) -> Vec<usize> {
    offsets(bytes, [0x50, 0x4b, 0x01, 0x02])
}

/// Offsets of every local file header (`PK\3\4`).
pub fn local_headers(bytes: &[u8]) -> Vec<usize> {
    offsets(bytes, [0x50, 0x4b, 0x03, 0x04])
}

fn offsets(bytes: &[u8], signature: [u8; 4]) -> Vec<usize> {
    bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == signature)
        .map(|(i, _)| i)
        .collect()
}
