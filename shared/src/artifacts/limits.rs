//! Limits applied to untrusted zip input.

/// Bounds on what an input artifact may contain. Defaults suit build outputs; override per
/// function with `ARTIFACT_MAX_ENTRIES`, `ARTIFACT_MAX_BYTES` and `ARTIFACT_MAX_RATIO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZipLimits {
    /// Most entries (files and directories) an archive may hold.
    pub max_entries: u64,
    /// Most bytes the archive may expand to, declared or actual.
    pub max_total_bytes: u64,
    /// Highest expansion ratio (uncompressed : compressed), for the archive as a whole and for
    /// any single entry above [`ZipLimits::RATIO_FLOOR`] bytes.
    pub max_ratio: u64,
    /// Largest central directory read into memory (its names and records).
    pub max_directory_bytes: u64,
}

/// How much of the function's memory one piece of in-memory work may take: a quarter of
/// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (which Lambda sets, in MiB; 1,024 MiB when unset), so that
/// a job over it fails with a message instead of the process dying with no report.
pub fn memory_budget_bytes() -> u64 {
    let mib = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(1024);
    mib.saturating_mul(1 << 20) / 4
}

impl ZipLimits {
    /// Below this many uncompressed bytes a high ratio is normal (a small file of repeated
    /// bytes) and is not checked.
    pub const RATIO_FLOOR: u64 = 1 << 20;

    /// The defaults, overridden by `ARTIFACT_MAX_ENTRIES`, `ARTIFACT_MAX_BYTES` and `ARTIFACT_MAX_RATIO`.
    pub fn from_env() -> Self {
        let default = Self::default();
        let read = |name: &str, fallback: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
                .unwrap_or(fallback)
        };
        Self {
            max_entries: read("ARTIFACT_MAX_ENTRIES", default.max_entries),
            max_total_bytes: read("ARTIFACT_MAX_BYTES", default.max_total_bytes),
            max_ratio: read("ARTIFACT_MAX_RATIO", default.max_ratio),
            max_directory_bytes: memory_budget_bytes(),
        }
    }
}

impl Default for ZipLimits {
    fn default() -> Self {
        Self {
            max_entries: 100_000,
            max_total_bytes: 4 << 30,
            max_ratio: 200,
            max_directory_bytes: 64 << 20,
        }
    }
}
