//! One pipeline-local process per state folder: two processes writing the same execution
//! history, SQLite file and buckets would interleave their writes and lose records. The first
//! holds the folder's lock (released by the OS when the process ends, however it ends); a
//! second `run` joins its execution to that process (`cli::joined_runs`), and other commands
//! are refused.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// The lock file inside a state folder.
pub const LOCK_FILE: &str = ".pipeline-local.lock";

/// Creates `dir` if needed and takes its lock; keep the returned file for as long as the folder
/// is in use.
pub fn lock(dir: &Path) -> Result<File, String> {
    try_lock(dir)?.ok_or_else(|| {
        format!(
            "another pipeline-local process is using the state folder {}; wait for it to end or use another --state-dir",
            dir.display()
        )
    })
}

/// As [`lock`], with `None` when another process holds the folder.
pub fn try_lock(dir: &Path) -> Result<Option<File>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}
