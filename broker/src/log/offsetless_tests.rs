//! Raft's own entries in a partition log occupy no offset (decision 46): clients never see
//! them, replication and durability still count them, against real segment files.

use std::sync::Arc;

use crate::config::FsyncPolicy;
use crate::log::batch::CONTROL_ATTRIBUTE;
use crate::log::batch_builder::control_batch;
use crate::log::test_batches::batch;
use crate::log::{BatchHeader, LogStore, PartitionLog, RaftEntryBytes};

const BLANK: i16 = 0x7e00;

fn store(dir: &std::path::Path, policy: FsyncPolicy, segment_bytes: u64) -> Arc<LogStore> {
    LogStore::open(dir, policy, segment_bytes).unwrap().0
}

fn own(term: u64) -> RaftEntryBytes {
    RaftEntryBytes { term, batch: control_batch(BLANK, b"", -1), takes_offsets: false }
}

fn data(term: u64, records: usize) -> RaftEntryBytes {
    RaftEntryBytes { term, batch: batch(records), takes_offsets: true }
}

impl RaftEntryBytes {
    fn offsetless(self) -> RaftEntryBytes {
        RaftEntryBytes { takes_offsets: false, ..self }
    }
}

/// What a client reads from offset 0: (base offset, record count) per batch.
fn read_by_client(p: &PartitionLog) -> Vec<(i64, i32)> {
    let read = p.read(0, i64::MAX, usize::MAX).unwrap();
    read.iter().map(|b| BatchHeader::parse(b).unwrap()).map(|h| (h.base_offset, h.record_count)).collect()
}

/// The log of a new partition as Raft writes it: membership and blank first, records, a later
/// leader's blank, more records.
fn raft_history(p: &PartitionLog) {
    p.append_with_terms(&[own(1), own(1), data(1, 3)]).unwrap();
    p.append_with_terms(&[own(2), data(2, 1)]).unwrap();
}

#[tokio::test]
async fn records_start_at_offset_0_and_raft_entries_are_never_read_by_clients() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Always, 1 << 20);
    let p = s.create_partition("t", 0).unwrap();
    p.start_replicated();
    p.append_with_terms(&[own(1), own(1)]).unwrap();
    assert_eq!((p.entry_count(), p.offsets().log_end_offset), (2, 0), "two entries, no offset");
    p.append_with_terms(&[data(1, 3), own(2), data(2, 1)]).unwrap();
    assert_eq!(read_by_client(&p), vec![(0, 3), (3, 1)], "records numbered from 0, no gap at the blank");
    let offsets: Vec<_> = (0..5).map(|i| p.entry_offsets(i).unwrap()).collect();
    assert_eq!(offsets, vec![(0, 0), (0, 0), (0, 3), (3, 3), (3, 4)]);
    assert_eq!(p.entries_by_index(0, 5).unwrap().len(), 5, "Raft still reads every entry");
    // Index 3 shares offset 3 with index 4; each is found by its index (recent.rs too).
    let (term, blank) = p.entries_by_index(3, 4).unwrap().remove(0);
    let h = BatchHeader::parse(&blank).unwrap();
    assert_eq!((term, h.base_offset, h.attributes & CONTROL_ATTRIBUTE != 0), (2, 3, true));
    p.set_committed(3);
    assert_eq!(p.offsets().high_watermark, 3);
    assert_eq!(p.epoch_end(1), (Some(1), 3), "term 1 ends where term 2's blank sits");
}

#[tokio::test]
async fn an_offsetless_entry_is_durable_only_after_a_flush_round() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("d", 0).unwrap();
    p.append_with_terms(&[own(1)]).unwrap();
    assert_eq!(p.flushed_entries(), 0, "written, not synced");
    assert_eq!(p.offsets().flushed_offset, 0);
    p.wait_entries_flushed(1, true).await.unwrap();
    assert_eq!(p.flushed_entries(), 1);
    // A power cut takes what was not synced, the offsetless entry included.
    p.append_with_terms(&[own(1), data(1, 2)]).unwrap();
    let report = s.power_cut().unwrap();
    assert_eq!(report.partitions[0].lost_records, 2);
    assert_eq!((p.entry_count(), p.flushed_entries()), (1, 1));
}

#[test]
fn truncation_by_index_keeps_the_raft_entries_before_it_at_the_same_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("x", 0).unwrap();
    raft_history(&p);
    p.truncate_entries_from(4).unwrap();
    assert_eq!((p.entry_count(), p.offsets().log_end_offset), (4, 3), "the blank at offset 3 stays");
    p.truncate_entries_from(3).unwrap();
    assert_eq!((p.entry_count(), p.offsets().log_end_offset), (3, 3));
    p.truncate_entries_from(2).unwrap();
    assert_eq!((p.entry_count(), p.offsets().log_end_offset), (2, 0), "membership and blank stay at 0");
    p.append_with_terms(&[data(3, 2)]).unwrap();
    assert_eq!(read_by_client(&p), vec![(0, 2)]);
}

#[test]
fn a_reopened_log_numbers_its_entries_as_before_even_across_tiny_segments() {
    let dir = tempfile::tempdir().unwrap();
    // Segments hold one or two entries: several begin with offsetless entries, and a run of
    // them cannot roll into a file whose name (its base offset) is taken.
    let (before, digest) = {
        let s = store(dir.path(), FsyncPolicy::Never, 200);
        let p = s.create_partition("r", 0).unwrap();
        raft_history(&p);
        p.append_with_terms(&[own(3), own(3), own(3), data(3, 2)]).unwrap();
        let before: Vec<_> = (0..p.entry_count()).map(|i| p.entry_offsets(i).unwrap()).collect();
        let digest = p.digest(i64::MAX).unwrap();
        s.close().unwrap();
        (before, digest)
    };
    let s = store(dir.path(), FsyncPolicy::Never, 200);
    let p = s.partition("r", 0).unwrap();
    let after: Vec<_> = (0..p.entry_count()).map(|i| p.entry_offsets(i).unwrap()).collect();
    assert_eq!(after, before);
    assert_eq!(p.digest(i64::MAX).unwrap(), digest);
    assert_eq!(read_by_client(&p), vec![(0, 3), (3, 1), (4, 2)]);
    assert_eq!(p.flushed_entries(), p.entry_count(), "what recovery read back is on disk");
}

#[test]
fn only_a_control_batch_may_occupy_no_offset() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("c", 0).unwrap();
    let err = p.append_with_terms(&[data(1, 1).offsetless()]).unwrap_err().to_string();
    assert!(err.contains("only a control batch"), "{err}");
    assert_eq!(p.entry_count(), 0);
}

/// A log from before decision 46 starts with a membership entry that took offset 0; a node
/// refuses to continue it (node.rs), since its replicas would number records differently.
#[test]
fn a_log_whose_raft_entries_took_offsets_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let old = s.create_partition("old", 0).unwrap();
    old.append(&[control_batch(0x7e01, b"{}", -1), control_batch(BLANK, b"", -1)], 1).unwrap();
    old.append(&[batch(2)], 1).unwrap();
    assert!(old.raft_entries_take_offsets().unwrap());
    let new = s.create_partition("new", 0).unwrap();
    raft_history(&new);
    assert!(!new.raft_entries_take_offsets().unwrap());
    let single = s.create_partition("single", 0).unwrap();
    single.append(&[batch(2)], 0).unwrap();
    assert!(!single.raft_entries_take_offsets().unwrap(), "client records only");
    assert!(!s.create_partition("empty", 0).unwrap().raft_entries_take_offsets().unwrap());
}

/// A new leader's blank at the high watermark is on some replicas before others: the digest at
/// the high watermark must not depend on it (the scale-kill-busiest drill saw 15 "divergences").
#[test]
fn the_digest_at_the_high_watermark_leaves_out_a_trailing_raft_entry() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let (ahead, behind) = (s.create_partition("a", 0).unwrap(), s.create_partition("b", 0).unwrap());
    raft_history(&ahead);
    raft_history(&behind);
    ahead.append_with_terms(&[own(3)]).unwrap();
    let hw = 4;
    let (a, b) = (ahead.digest(hw).unwrap(), behind.digest(hw).unwrap());
    assert_eq!(a, b, "the blank at offset {hw} only one replica holds yet");
    assert_eq!((a.entries, a.end_offset), (5, 4));
    // The blank inside the range (before the record at 3) counts: every replica holds it.
    assert_ne!(ahead.digest(3).unwrap().crc32c, ahead.digest(4).unwrap().crc32c);
}
