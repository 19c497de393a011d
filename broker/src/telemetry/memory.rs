//! Where a node's memory goes, as the node itself sees it (`GET /memory`).
//!
//! A process's RSS alone cannot tell a leak from memory that grows with the data kept or from
//! memory the allocator holds after it was freed; a soak needs all three apart (issue 15). The
//! heap figures are jemalloc's own accounting: the `clusterlab-broker` binary allocates through
//! jemalloc (decision 44). The index figures count the partition logs' in-memory indexes, one
//! entry per stored batch.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tikv_jemalloc_ctl::{epoch, stats};
use ts_rs::TS;

use crate::log::LogStore;

/// One reading of a node's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
pub struct MemoryReport {
    /// Bytes the allocator has handed out and not had back: what the process really uses.
    /// `None` where jemalloc is not the process's allocator (a broker run inside a test).
    pub heap_in_use_bytes: Option<u64>,
    /// Bytes of the allocator's pages in RAM: in use, freed and not yet returned, and the
    /// allocator's own metadata. The process's RSS is this plus code, stacks and C libraries.
    pub heap_resident_bytes: Option<u64>,
    /// Resident but not in use: freed pages the allocator returns to the system about a second
    /// after the free (its decay, on a background thread), partly used pages and its metadata.
    pub heap_free_held_bytes: Option<u64>,
    /// Entries of every partition log's in-memory index (one per stored batch).
    pub log_index_entries: u64,
    /// Bytes the index vectors hold (their capacity): grows with the batches kept, not a leak.
    pub log_index_bytes: u64,
}

/// Reads the allocator's accounting and sums the partition indexes of `store`.
pub fn report(store: &LogStore) -> MemoryReport {
    let (entries, bytes) =
        store.partitions().iter().map(|p| p.index_usage()).fold((0, 0), |(n, b), (pn, pb)| (n + pn, b + pb));
    let heap = heap();
    MemoryReport {
        heap_in_use_bytes: heap.map(|h| h.in_use),
        heap_resident_bytes: heap.map(|h| h.resident),
        heap_free_held_bytes: heap.map(|h| h.resident.saturating_sub(h.in_use)),
        log_index_entries: entries,
        log_index_bytes: bytes,
    }
}

/// jemalloc's settings in the broker binary, which hands them to jemalloc as its `malloc_conf`
/// (read before `main`). Freed pages go back to the system after a 1 s decay instead of
/// jemalloc's default 10 s: in the soak, 3 % of the samples of RSS lay more than 40 MiB above the
/// heap in use instead of 23 %, at no cost in the burst bench (decision 44).
pub const ALLOCATOR_CONF: &std::ffi::CStr = c"dirty_decay_ms:1000";

/// jemalloc's two counters that matter here.
#[derive(Debug, Clone, Copy)]
pub struct Heap {
    /// Bytes handed out and not freed (`stats.allocated`).
    pub in_use: u64,
    /// Bytes of the allocator's pages in RAM (`stats.resident`).
    pub resident: u64,
}

/// jemalloc's counters, or `None` when jemalloc is not the process's allocator: the library
/// links jemalloc for the broker binary, whose global allocator it is, but a test that runs a
/// broker inside its own process keeps the system allocator, and jemalloc's counters then say
/// nothing about it.
pub fn heap() -> Option<Heap> {
    if !jemalloc_is_the_allocator() {
        return None;
    }
    // The counters are cached per epoch; advancing it refreshes them, both at once.
    epoch::advance().ok()?;
    Some(Heap {
        in_use: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

/// Whether a Rust allocation shows in jemalloc's counters. Allocates one probe; answered once
/// when yes. A no is asked again, as another thread's frees at the same moment could hide the
/// probe (and a process without jemalloc rarely asks).
fn jemalloc_is_the_allocator() -> bool {
    const PROBE: usize = 4 << 20;
    static YES: OnceLock<()> = OnceLock::new();
    if YES.get().is_some() {
        return true;
    }
    let allocated = || epoch::advance().and_then(|_| stats::allocated::read()).ok();
    let before = allocated();
    let probe = std::hint::black_box(vec![1u8; PROBE]);
    let during = allocated();
    drop(probe);
    let yes = matches!((before, during), (Some(b), Some(d)) if d >= b + PROBE / 2);
    if yes {
        let _ = YES.set(());
    }
    yes
}

#[cfg(test)]
mod tests {
    use super::*;

    // The library's own tests run on the system allocator: jemalloc reports nothing then, and
    // the report must say so rather than show zeros. broker/tests/allocator.rs runs the binary's
    // allocator and checks that freed memory goes back.
    #[test]
    fn without_jemalloc_as_the_allocator_the_heap_is_not_reported() {
        let _some = std::hint::black_box(vec![1u8; 1 << 20]);
        assert!(heap().is_none());
    }
}
