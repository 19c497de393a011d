//! Kafka's DeleteRecords on one partition log: the log start offset moves up, and whole
//! segments below it may go.

use crate::error::Result;
use crate::log::lock;
use crate::log::partition::PartitionLog;

impl PartitionLog {
    /// Moves the log start offset up to `offset` (never down): fetches below it answer
    /// OFFSET_OUT_OF_RANGE and ListOffsets earliest answers it. Records stay on disk until
    /// `delete_segments_below` drops the segments wholly below. Returns the start clients see.
    pub fn set_log_start(&self, offset: i64) -> i64 {
        let mut inner = lock(&self.inner);
        if offset > inner.start_floor {
            inner.start_floor = offset;
            self.publish(&inner);
            tracing::debug!(topic = %self.topic, partition = self.partition, offset, "log start moved");
        }
        drop(inner);
        self.offsets().log_start_offset
    }

    /// Removes the segment files whose records are all below the log start, never the active
    /// one. Only without replication: in a cluster this log is the Raft log, where entry *i* is
    /// Raft index *i* counted from the first stored entry and followers catch up from the log
    /// (no snapshots), so nothing there may go (docs/compatibility.md). Returns how many went.
    pub fn delete_segments_below(&self, offset: i64) -> Result<usize> {
        let _flushing = lock(&self.flush_lock);
        let mut inner = lock(&self.inner);
        let limit = offset.min(inner.start_floor);
        let whole = inner
            .segments
            .iter()
            .take(inner.segments.len().saturating_sub(1))
            .take_while(|s| s.next_offset() <= limit)
            .count();
        if whole == 0 {
            return Ok(0);
        }
        let removed: Vec<_> = inner.segments.drain(..whole).collect();
        for seg in &removed {
            std::fs::remove_file(&seg.path)
                .map_err(|e| crate::error::BrokerError::io("remove segment", &seg.path, e))?;
        }
        crate::log::durability::sync_dir(&self.dir)?;
        tracing::info!(topic = %self.topic, partition = self.partition, below = limit, segments = whole,
            "segments below the log start deleted");
        self.publish(&inner);
        Ok(whole)
    }
}
