//! Content digests: SHA-256 for manifests and change detection, MD5 to compare with S3 ETags.

use md5::{Digest as _, Md5};
use sha2::Sha256;

#[derive(Clone, Default)]
pub struct Digests {
    sha256: Sha256,
    md5: Md5,
}

impl Digests {
    pub fn update(&mut self, data: &[u8]) {
        self.sha256.update(data);
        self.md5.update(data);
    }

    /// Hex SHA-256 and hex MD5.
    pub fn finish(self) -> (String, String) {
        (
            hex::encode(self.sha256.finalize()),
            hex::encode(self.md5.finalize()),
        )
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
