//! Where a node's memory goes, as the node itself sees it (`GET /memory`).
//!
//! A process's RSS alone cannot tell a leak from memory that grows with the data kept or from
//! memory the allocator holds after it was freed; a soak needs all three apart (issue 15). The
//! heap figures are glibc's own accounting (`mallinfo2`, summed over every arena); the index
//! figures count the partition logs' in-memory indexes, one entry per stored batch.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::log::LogStore;

/// One reading of a node's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
pub struct MemoryReport {
    /// Bytes the allocator has handed out and not had back: what the process really uses.
    /// `None` where the allocator gives no accounting (not glibc).
    pub heap_in_use_bytes: Option<u64>,
    /// Of those, bytes in blocks mapped on their own (glibc maps large allocations, such as a
    /// big vector, separately; they go back to the system when freed).
    pub heap_mapped_bytes: Option<u64>,
    /// Freed bytes the allocator keeps in its arenas for reuse: not in use. Counted in RSS until
    /// the broker's periodic trim gives their pages back, after which glibc still counts them here.
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
        heap_mapped_bytes: heap.map(|h| h.mapped),
        heap_free_held_bytes: heap.map(|h| h.free_held),
        log_index_entries: entries,
        log_index_bytes: bytes,
    }
}

#[derive(Clone, Copy)]
struct Heap {
    in_use: u64,
    mapped: u64,
    free_held: u64,
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<Heap> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct; it only reads the
    // allocator's counters under its arena locks (glibc 2.33+; Debian 12 has 2.36).
    let m = unsafe { libc::mallinfo2() };
    // uordblks: in use from the arenas; hblkhd: in use in separately mapped blocks;
    // fordblks: free in the arenas.
    Some(Heap {
        in_use: (m.uordblks + m.hblkhd) as u64,
        mapped: m.hblkhd as u64,
        free_held: m.fordblks as u64,
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<Heap> {
    None
}

/// Gives whole free pages held in the allocator's arenas back to the system, so that a
/// long-running broker's RSS follows the memory it uses (issue 15). Left alone, glibc keeps freed
/// memory in its arenas: over a 30-minute soak a node's RSS climbed from 11 to 123 MiB while its
/// heap in use stayed near 21 MiB. Fixing glibc's mmap and trim thresholds instead (`mallopt`)
/// bounded RSS as well but cost 40 % of a burst of 500 KB messages, each buffer then mapped and
/// unmapped on its own. glibc keeps counting returned pages as free in `mallinfo2`, so
/// `heap_free_held_bytes` overstates what RSS holds after a trim. Takes each arena's
/// lock while it walks the free lists (7 ms for 63 MiB held in 2 KiB blocks, here), so it belongs on a
/// blocking thread, seconds apart. Returns whether any memory went back.
pub fn return_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim is thread-safe; pad 0 keeps no slack at the top of the heap.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_allocation_shows_in_the_mapped_heap_and_leaves_it_when_freed() {
        let before = heap().expect("glibc accounting on this target");
        let big = vec![7u8; 64 << 20];
        let during = heap().unwrap();
        assert!(during.mapped >= before.mapped + (64 << 20), "64 MiB vector not counted as mapped");
        assert!(during.in_use >= before.in_use + (64 << 20));
        drop(std::hint::black_box(big));
        let after = heap().unwrap();
        assert!(after.mapped + (32 << 20) < during.mapped, "freed 64 MiB still counted as mapped");
    }

    #[test]
    fn freed_small_blocks_pinned_inside_the_heap_go_back_when_returned() {
        // 64 MiB in 2 KiB blocks, every 64th kept so no arena can shrink from its top: only a
        // trim that frees pages inside the arena can give this memory back.
        let mut blocks: Vec<Box<[u8; 2048]>> = (0..32_768).map(|i| Box::new([i as u8; 2048])).collect();
        let pinned: Vec<_> =
            blocks.drain(..).enumerate().filter(|(i, _)| i % 64 == 0).map(|(_, b)| b).collect();
        let started = std::time::Instant::now();
        assert!(return_freed_memory(), "no freed page went back to the system");
        eprintln!("trim of ~63 MiB held took {:?}", started.elapsed());
        drop(std::hint::black_box(pinned));
    }
}
