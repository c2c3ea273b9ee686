//! Content digests: SHA-256 for manifests and change detection, MD5 to compare with S3 ETags.

use md5::{Digest as _, Md5};
use pipeline_ext::artifacts::EntryHasher;
use sha2::Sha256;

#[derive(Clone, Default)]
pub struct Digests {
    sha256: Sha256,
    md5: Md5,
}

/// The digests of one file's content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub sha256: [u8; 32],
    pub md5: [u8; 16],
}

impl FileDigest {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }

    pub fn md5_hex(&self) -> String {
        hex::encode(self.md5)
    }
}

impl Digests {
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.md5.update(data);
    }

    pub fn finish_raw(self) -> FileDigest {
        FileDigest {
            sha256: self.sha256.finalize().into(),
            md5: self.md5.finalize().into(),
        }
    }
}

/// Computed while the artifact is verified, so a file's content is hashed once.
impl EntryHasher for Digests {
    type Output = FileDigest;

    fn update(&mut self, data: &[u8]) {
        Digests::update(self, data)
    }

    fn finish(self) -> FileDigest {
        self.finish_raw()
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// SHA-256 of a stream, to check that the bytes uploaded are the bytes that were verified.
#[derive(Default)]
pub struct Sha256Check(Sha256);

impl Sha256Check {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn matches(self, expected: &[u8; 32]) -> bool {
        let actual: [u8; 32] = self.0.finalize().into();
        &actual == expected
    }
}
