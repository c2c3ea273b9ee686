//! What one job carries across its invocations, in the continuation token.

use crate::snapshot::SnapshotRecord;
use serde::{Deserialize, Serialize};

/// The applied-migration lines carried in the continuation token.
const MAX_STATE_LINE_CHARS: usize = 1_200;

/// Carried across invocations of one job: what earlier invocations applied, for the summary
/// and `AppliedCount`. The database's history stays the source of truth for what is pending.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// Migrations applied by this job so far.
    pub applied: u32,
    /// The database's version before the job's first migration.
    pub from_version: Option<i64>,
    /// One line per applied migration, for the summary (cut at a size).
    #[serde(default)]
    pub lines: Vec<String>,
    /// Applied migrations past the cut.
    #[serde(default)]
    pub more: u32,
    /// The restore point taken before the first migration, once started.
    #[serde(default)]
    pub snapshot: Option<SnapshotRecord>,
    /// Attempts so far at the next migration that met a held table lock, across invocations.
    #[serde(default)]
    pub lock_waits: u32,
}

impl RunState {
    pub(crate) fn record(&mut self, line: String) {
        self.applied += 1;
        let used: usize = self.lines.iter().map(|l| l.len() + 8).sum();
        if self.more == 0 && used + line.len() <= MAX_STATE_LINE_CHARS {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }

    pub(crate) fn listing(&self) -> String {
        let mut text: String = self.lines.iter().map(|l| format!("\n- {l}")).collect();
        if self.more > 0 {
            text.push_str(&format!("\n- … and {} more", self.more));
        }
        text
    }
}
