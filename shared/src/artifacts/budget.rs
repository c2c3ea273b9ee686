//! What a job may hold in memory per archive entry, summed over everything it holds at once.
//!
//! An archive of 100,000 entries with long names costs memory in several places at the same
//! time: the input's checked table of contents, the output's central directory, a step's own
//! list (the manifest's digests, publish's listing of the bucket). Each is small per entry;
//! together, on a 128 MiB function, they can kill the process before it reports. Every such
//! holder reserves its bytes here first, so the job fails with a message naming the budget
//! instead.

use super::error::ArtifactError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The bytes a job's per-entry bookkeeping may hold at once: a quarter of the function's
/// memory ([`super::memory_budget_bytes`]). Clones share one account.
#[derive(Clone, Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: Arc<AtomicU64>,
}

/// Bytes held against a [`MemoryBudget`]; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: MemoryBudget,
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A quarter of `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
    pub fn from_env() -> Self {
        Self::new(super::memory_budget_bytes())
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// An empty reservation, to grow as entries are added.
    pub fn reservation(&self) -> Reservation {
        Reservation {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Reserves `bytes` for `what` at once.
    pub fn reserve(&self, bytes: u64, what: &str) -> Result<Reservation, ArtifactError> {
        let mut reservation = self.reservation();
        reservation.grow(bytes, what)?;
        Ok(reservation)
    }

    fn take(&self, bytes: u64, what: &str) -> Result<(), ArtifactError> {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let wanted = used.saturating_add(bytes);
            if wanted > self.limit {
                return Err(ArtifactError::OverMemoryBudget(format!(
                    "{what} needs more memory than this function allows: with what the job already holds, {wanted} bytes, over the budget of {} bytes (a quarter of the function's memory, AWS_LAMBDA_FUNCTION_MEMORY_SIZE); raise the function's memory size or split the artifact",
                    self.limit
                )));
            }
            match self.used.compare_exchange_weak(
                used,
                wanted,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(now) => used = now,
            }
        }
    }

    fn give_back(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

impl Reservation {
    /// Holds `bytes` more for `what`, or fails naming the budget (and holds nothing more).
    pub fn grow(&mut self, bytes: u64, what: &str) -> Result<(), ArtifactError> {
        self.budget.take(bytes, what)?;
        self.bytes += bytes;
        Ok(())
    }

    /// Bytes held by this reservation.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_add_up_and_are_given_back_when_dropped() {
        let budget = MemoryBudget::new(1000);
        let first = budget.reserve(600, "the table of contents").unwrap();
        let mut second = budget.reservation();
        second.grow(300, "the output's central directory").unwrap();
        let err = second.grow(200, "the manifest").unwrap_err().to_string();
        assert!(
            err.contains("the manifest") && err.contains("1100 bytes"),
            "{err}"
        );
        assert!(err.contains("budget of 1000 bytes"), "{err}");
        assert_eq!(budget.used(), 900, "a refused growth holds nothing");
        drop(first);
        assert_eq!(budget.used(), 300);
        second.grow(600, "the manifest").unwrap();
        drop(second);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn concurrent_reservations_never_pass_the_limit() {
        let budget = MemoryBudget::new(10_000);
        let held: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let budget = budget.clone();
                    s.spawn(move || {
                        let mut r = budget.reservation();
                        while r.grow(7, "x").is_ok() {}
                        r
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: u64 = held.iter().map(Reservation::bytes).sum();
        assert!(total <= 10_000 && total > 10_000 - 8 * 7, "{total}");
        assert_eq!(budget.used(), total);
    }
}
