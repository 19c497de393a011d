//! The uncommitted tail of a replicated partition, kept in memory as it was written.
//!
//! openraft reads every entry back from the log right after appending it: the leader once per
//! follower to replicate it and once more to apply it at commit, a follower once to apply it.
//! With produce spread over many partitions every batch is its own entry, so those reads were a
//! `pread` each (with a buffer allocated for it): 5-8 % of a broker's CPU in perf. Entries are
//! kept here from their append until the group applies them (`set_committed`), when nothing
//! reads them soon any more; a follower that lags past that reads from the file as before.
//!
//! Only replicated logs keep a tail (a single node never applies, so nothing would drop it),
//! at most [`RECENT_MAX_BYTES`] per partition, oldest dropped first. A truncation or a power
//! cut forgets it all, so an offset never serves bytes the file no longer holds.

use std::collections::VecDeque;

use bytes::Bytes;

/// Per partition: the largest AppendEntries payload (decision 17), so one round of replication
/// of a busy partition is served from memory while memory stays bounded by partitions x this.
pub(crate) const RECENT_MAX_BYTES: usize = 2 * 1024 * 1024;

/// Stored batches by Raft index, in log order, with each one's base offset.
#[derive(Default)]
pub(crate) struct RecentTail {
    entries: VecDeque<Held>,
    bytes: usize,
}

struct Held {
    index: u64,
    base_offset: i64,
    batch: Bytes,
}

impl RecentTail {
    /// Remembers the stored batch of the entry at `index` (appended after every one held).
    /// Keyed by index, not offset: Raft's own entries occupy no offset and share their base
    /// offset with the entry after them (decision 46).
    pub fn push(&mut self, index: u64, base_offset: i64, batch: Bytes) {
        if batch.len() > RECENT_MAX_BYTES {
            return;
        }
        if self.entries.back().is_some_and(|last| last.index >= index) {
            // Not after the tail: the log was rewritten without telling us. Start over.
            self.clear();
        }
        self.bytes += batch.len();
        self.entries.push_back(Held { index, base_offset, batch });
        while self.bytes > RECENT_MAX_BYTES {
            self.pop_front();
        }
    }

    /// The stored batch of the entry at `index`, if held and `len` bytes long.
    pub fn get(&self, index: u64, len: usize) -> Option<Bytes> {
        let i = self.entries.binary_search_by_key(&index, |h| h.index).ok()?;
        let batch = &self.entries[i].batch;
        (batch.len() == len).then(|| batch.clone())
    }

    /// Forgets the entries that start below `end`, the applied end offset (an entry boundary).
    pub fn drop_below(&mut self, end: i64) {
        while self.entries.front().is_some_and(|h| h.base_offset < end) {
            self.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn pop_front(&mut self) {
        if let Some(h) = self.entries.pop_front() {
            self.bytes -= h.batch.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Bytes {
        Bytes::from(vec![7u8; n])
    }

    #[test]
    fn serves_what_it_holds_and_forgets_what_is_applied() {
        let mut t = RecentTail::default();
        // Index 2 occupies no offset: it shares base offset 5 with index 3.
        t.push(0, 0, batch(10));
        t.push(1, 3, batch(20));
        t.push(2, 5, batch(15));
        t.push(3, 5, batch(30));
        assert_eq!(t.get(1, 20).map(|b| b.len()), Some(20));
        assert_eq!(t.get(1, 21), None, "a length mismatch is a miss");
        assert_eq!(t.get(4, 20), None, "not held");
        assert_eq!(t.get(2, 15).map(|b| b.len()), Some(15));
        t.drop_below(5);
        assert_eq!(t.get(0, 10), None);
        assert_eq!(t.get(1, 20), None);
        assert!(t.get(2, 15).is_some() && t.get(3, 30).is_some());
        assert_eq!(t.bytes, 45);
    }

    #[test]
    fn stays_within_its_budget_and_restarts_on_a_rewritten_log() {
        let mut t = RecentTail::default();
        let half = RECENT_MAX_BYTES / 2;
        t.push(0, 0, batch(half));
        t.push(1, 1, batch(half));
        t.push(2, 2, batch(1));
        assert_eq!(t.get(0, half), None, "the oldest went to make room");
        assert!(t.get(1, half).is_some() && t.get(2, 1).is_some());
        assert!(t.bytes <= RECENT_MAX_BYTES);
        t.push(3, 3, batch(RECENT_MAX_BYTES + 1));
        assert!(t.get(1, half).is_some(), "a batch over the budget is not kept and evicts nothing");
        t.push(1, 1, batch(5));
        assert_eq!(t.get(2, 1), None, "an index at or below the tail starts over");
        assert!(t.get(1, 5).is_some());
    }
}
