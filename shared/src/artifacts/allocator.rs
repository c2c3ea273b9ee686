//! Keeps part buffers from fragmenting the heap.
//!
//! glibc serves large allocations with `mmap` and returns them to the system when freed, but
//! after the first such free it raises its threshold to that size, so later 8 MiB part buffers
//! come from per-thread heaps that keep their peak. Measured on the 1 GiB copy benchmark: 54 MiB
//! peak RSS with the dynamic threshold, 23 MiB with it pinned (BENCHMARKS.md).

/// Pins glibc's mmap threshold at its default (128 KiB), once per process.
pub(crate) fn pin_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator tuning; it is called before any part buffer
            // exists and has no memory-safety preconditions.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
            }
        });
    }
}
