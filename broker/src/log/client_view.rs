//! What a Kafka client sees of a partition that holds no records of its own yet.
//!
//! Logs written before decision 46 start with Raft's own entries (a group's first membership and
//! its first leader's blank entry, more with each election) stored as control batches that take
//! offsets 0, 1, ... (decision 11). Consumers skip control batches, but librdkafka moves its
//! position, and so the offset it auto-commits, past them: an empty partition was committed at
//! 2 where Kafka stores nothing (librdkafka's 0030 failed on it). So while every batch between
//! the log start and the high watermark is a control batch, clients are told the high watermark
//! is the log start (decision 36). Raft entries written since occupy no offset, so a new log
//! needs none of this: its high watermark stays at 0 until a record is committed.

use crate::error::Result;
use crate::log::batch::{BatchHeader, CONTROL_ATTRIBUTE};
use crate::log::lock;
use crate::log::partition::{ClientDataScan, PartitionLog, PartitionOffsets};

/// Bytes read per step of the scan; control batches are ~80 bytes, so one step covers hundreds.
const SCAN_STEP: usize = 64 * 1024;

impl PartitionLog {
    /// `offsets()` as clients see them (Fetch, ListOffsets, DeleteRecords): the high watermark
    /// is the log start while no client record lies below it.
    pub fn client_offsets(&self) -> PartitionOffsets {
        let mut o = self.offsets();
        if o.high_watermark > o.log_start_offset {
            match self.holds_records(o.log_start_offset, o.high_watermark) {
                Ok(true) => {}
                Ok(false) => o.high_watermark = o.log_start_offset,
                // Unreadable: show the log as it is; the fetch that follows reports the error.
                Err(e) => tracing::warn!(topic = %self.topic, partition = self.partition, error = %e,
                    "could not scan for client records"),
            }
        }
        o
    }

    /// Whether [start, hw) holds a batch that is not a control batch. Only offsets below the
    /// high watermark are read and remembered, and Raft never truncates committed entries, so
    /// what is remembered stays true.
    fn holds_records(&self, start: i64, hw: i64) -> Result<bool> {
        let mut scan = lock(&self.client_data);
        if start < scan.from || start > scan.to || scan.first_record.is_some_and(|f| f < start) {
            // The start moved past what was scanned (DeleteRecords): scan again from there.
            *scan = ClientDataScan { from: start, to: start, first_record: None };
        }
        scan.from = start;
        // Bounded: every step moves `to` forward by at least one batch, or ends.
        while scan.first_record.is_none() && scan.to < hw {
            let batches = self.read(scan.to, hw, SCAN_STEP)?;
            if batches.is_empty() {
                break;
            }
            for b in &batches {
                let h = BatchHeader::parse(b)?;
                if h.attributes & CONTROL_ATTRIBUTE == 0 {
                    scan.first_record = Some(h.base_offset);
                    break;
                }
                scan.to = h.base_offset + h.record_count_i64();
            }
        }
        Ok(scan.first_record.is_some_and(|f| f < hw))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::FsyncPolicy;
    use crate::log::batch_builder::control_batch;
    use crate::log::test_batches::batch;
    use crate::log::LogStore;

    #[test]
    fn a_log_of_raft_entries_only_looks_empty_until_a_record_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap().0;
        let log = s.create_partition("t", 0).unwrap();
        log.start_replicated();
        // Raft's first membership and blank entries, committed.
        log.append(&[control_batch(0x7e01, b"{}", -1), control_batch(0x7e00, b"", -1)], 1).unwrap();
        log.set_committed(2);
        let o = log.client_offsets();
        assert_eq!((o.log_start_offset, o.high_watermark, o.log_end_offset), (0, 0, 2));
        assert_eq!(log.offsets().high_watermark, 2, "only clients see it empty");
        // A record appended but not committed yet changes nothing; another election's blank
        // entry neither.
        log.append(&[batch(3)], 1).unwrap();
        assert_eq!(log.client_offsets().high_watermark, 0);
        log.append(&[control_batch(0x7e00, b"", -1)], 2).unwrap();
        assert_eq!(log.client_offsets().high_watermark, 0);
        // Committed: the high watermark is the real one from then on.
        log.set_committed(5);
        assert_eq!(log.client_offsets().high_watermark, 5);
        log.set_committed(6);
        assert_eq!(log.client_offsets().high_watermark, 6);
    }

    #[test]
    fn a_single_node_log_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let s = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap().0;
        let log = s.create_partition("t", 0).unwrap();
        assert_eq!(log.client_offsets().high_watermark, 0);
        log.append(&[batch(2)], 1).unwrap();
        assert_eq!(log.client_offsets(), log.offsets());
    }
}
