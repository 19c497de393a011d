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

/// Stored batches by base offset, in log order.
#[derive(Default)]
pub(crate) struct RecentTail {
    entries: VecDeque<(i64, Bytes)>,
    bytes: usize,
}

impl RecentTail {
    /// Remembers the stored batch of the entry at `base_offset` (appended after every one held).
    pub fn push(&mut self, base_offset: i64, batch: Bytes) {
        if batch.len() > RECENT_MAX_BYTES {
            return;
        }
        if self.entries.back().is_some_and(|(last, _)| *last >= base_offset) {
            // Not after the tail: the log was rewritten without telling us. Start over.
            self.clear();
        }
        self.bytes += batch.len();
        self.entries.push_back((base_offset, batch));
        while self.bytes > RECENT_MAX_BYTES {
            self.pop_front();
        }
    }

    /// The stored batch of the entry at `base_offset`, if held and `len` bytes long.
    pub fn get(&self, base_offset: i64, len: usize) -> Option<Bytes> {
        let i = self.entries.binary_search_by_key(&base_offset, |(b, _)| *b).ok()?;
        let batch = &self.entries[i].1;
        (batch.len() == len).then(|| batch.clone())
    }

    /// Forgets the entries below `end`, an entry boundary (they are applied).
    pub fn drop_below(&mut self, end: i64) {
        while self.entries.front().is_some_and(|(base, _)| *base < end) {
            self.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    fn pop_front(&mut self) {
        if let Some((_, b)) = self.entries.pop_front() {
            self.bytes -= b.len();
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
        t.push(0, batch(10));
        t.push(3, batch(20));
        t.push(5, batch(30));
        assert_eq!(t.get(3, 20).map(|b| b.len()), Some(20));
        assert_eq!(t.get(3, 21), None, "a length mismatch is a miss");
        assert_eq!(t.get(4, 20), None, "not an entry start");
        t.drop_below(5);
        assert_eq!(t.get(0, 10), None);
        assert_eq!(t.get(3, 20), None);
        assert!(t.get(5, 30).is_some());
        assert_eq!(t.bytes, 30);
    }

    #[test]
    fn stays_within_its_budget_and_restarts_on_a_rewritten_log() {
        let mut t = RecentTail::default();
        let half = RECENT_MAX_BYTES / 2;
        t.push(0, batch(half));
        t.push(1, batch(half));
        t.push(2, batch(1));
        assert_eq!(t.get(0, half), None, "the oldest went to make room");
        assert!(t.get(1, half).is_some() && t.get(2, 1).is_some());
        assert!(t.bytes <= RECENT_MAX_BYTES);
        t.push(RECENT_MAX_BYTES as i64, batch(RECENT_MAX_BYTES + 1));
        assert!(t.get(1, half).is_some(), "a batch over the budget is not kept and evicts nothing");
        t.push(1, batch(5));
        assert_eq!(t.get(2, 1), None, "an offset at or below the tail starts over");
        assert!(t.get(1, 5).is_some());
    }
}
