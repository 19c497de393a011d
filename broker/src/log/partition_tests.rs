//! Tests of `PartitionLog` against real segment files (kept apart from partition.rs to keep
//! both files readable).

use std::sync::Arc;

use bytes::Bytes;

use crate::config::FsyncPolicy;
use crate::error::BrokerError;
use crate::log::test_batches::{batch, batch_at, BatchSpec};
use crate::log::{BatchHeader, LogStore, PartitionLog};

fn store(dir: &std::path::Path, policy: FsyncPolicy, segment_bytes: u64) -> Arc<LogStore> {
    LogStore::open(dir, policy, segment_bytes).unwrap().0
}

fn base_offsets(batches: &[Bytes]) -> Vec<i64> {
    batches.iter().map(|b| BatchHeader::parse(b).unwrap().base_offset).collect()
}

/// One append that fills several segments: the entries held in memory are cut from one write
/// buffer per segment, and each must still be the bytes its file holds.
#[test]
fn held_entries_of_an_append_across_segment_rolls_are_the_stored_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 300);
    let p = s.create_partition("r", 0).unwrap();
    p.start_replicated();
    let batches: Vec<Bytes> = (1..=6).map(batch).collect();
    p.append(&batches, 1).unwrap();
    let files = std::fs::read_dir(dir.path().join("partitions/r-0")).unwrap().count();
    assert!(files >= 3, "segment_bytes 300 should have rolled within the append, got {files} files");
    let stored = p.read(0, i64::MAX, usize::MAX).unwrap();
    let held: Vec<Bytes> = p.entries_by_index(0, 6).unwrap().into_iter().map(|(_, b)| b).collect();
    assert_eq!(held, stored);
}

fn append_n(p: &PartitionLog, n: usize, records: usize) {
    for _ in 0..n {
        p.append(&[batch(records)], 1).unwrap();
    }
}

#[test]
fn offsets_are_consecutive_and_reads_round_trip_across_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 300);
    let p = s.create_partition("orders", 0).unwrap();
    let mut sent = Vec::new();
    let mut expected_base = 0;
    for i in 0..10 {
        let b =
            BatchSpec { records: 1 + i % 3, base_timestamp: 100 * i as i64, ..Default::default() }.encode();
        let out = p.append(std::slice::from_ref(&b), 3).unwrap();
        assert_eq!(out.base_offset, expected_base);
        assert_eq!(out.last_offset, expected_base + (1 + i % 3) as i64 - 1);
        expected_base = out.last_offset + 1;
        sent.push((out.base_offset, b));
    }
    let files = std::fs::read_dir(dir.path().join("partitions/orders-0")).unwrap().count();
    assert!(files >= 3, "segment_bytes 300 should have rolled several times, got {files} files");
    let got = p.read(0, i64::MAX, usize::MAX).unwrap();
    assert_eq!(got.len(), 10);
    for (g, (base, b)) in got.iter().zip(&sent) {
        let h = BatchHeader::parse(g).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (*base, 3));
        assert_eq!(&g[16..], &b[16..], "batch bytes after the rewritten fields must be verbatim");
    }
    // Starting inside a multi-record batch returns that whole batch.
    assert_eq!(base_offsets(&p.read(sent[2].0 + 1, i64::MAX, 0).unwrap()), vec![sent[2].0]);
    let off = p.offsets();
    assert_eq!(
        (off.log_start_offset, off.log_end_offset, off.high_watermark),
        (0, expected_base, expected_base)
    );
    assert_eq!(s.stats().entries_appended, 10);
}

#[test]
fn reopen_recovers_the_same_log_end_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 250);
    let p = s.create_partition("t", 2).unwrap();
    p.append(&[batch(2), batch(3)], 7).unwrap();
    append_n(&p, 4, 1);
    let before = p.read(0, i64::MAX, usize::MAX).unwrap();
    s.close().unwrap();
    drop((p, s));
    let (s, report) = LogStore::open(dir.path(), FsyncPolicy::Never, 250).unwrap();
    let rep = &report.partitions[0];
    assert_eq!((rep.topic.as_str(), rep.partition, rep.entries, rep.log_end_offset), ("t", 2, 6, 9));
    assert_eq!((rep.torn_tail_bytes, rep.corruption.is_none()), (0, true));
    let p = s.partition("t", 2).unwrap();
    assert_eq!(p.offsets().log_end_offset, 9);
    assert_eq!(p.offsets().flushed_offset, 9);
    assert_eq!(p.read(0, i64::MAX, usize::MAX).unwrap(), before);
    assert_eq!(p.term_of(3), Some(7));
    assert_eq!(p.append(&[batch(1)], 8).unwrap().base_offset, 9);
}

#[test]
fn read_respects_upto_and_max_bytes_but_returns_the_first_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("r", 0).unwrap();
    append_n(&p, 5, 2); // offsets 0,2,4,6,8
    let one = batch(2).len();
    assert_eq!(base_offsets(&p.read(0, i64::MAX, 1).unwrap()), vec![0]);
    assert_eq!(base_offsets(&p.read(2, i64::MAX, 2 * one).unwrap()), vec![2, 4]);
    assert_eq!(base_offsets(&p.read(0, 6, usize::MAX).unwrap()), vec![0, 2, 4]);
    assert!(p.read(10, i64::MAX, usize::MAX).unwrap().is_empty());
    assert!(p.read(-1, i64::MAX, usize::MAX).is_err());
}

#[test]
fn truncate_from_drops_later_entries_and_rejects_mid_entry_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 200);
    let p = s.create_partition("raft", 0).unwrap();
    append_n(&p, 6, 2); // offsets 0..12, several segments
    let err = p.truncate_from(5).unwrap_err();
    assert!(matches!(&err, BrokerError::Invalid(m) if m.contains("inside the entry 4..6")), "{err}");
    assert!(p.truncate_from(13).is_err());
    p.truncate_from(4).unwrap();
    assert_eq!(p.offsets().log_end_offset, 4);
    assert_eq!(base_offsets(&p.read(0, i64::MAX, usize::MAX).unwrap()), vec![0, 2]);
    let out = p.append(&[batch(1)], 2).unwrap();
    assert_eq!(out.base_offset, 4);
    assert_eq!(p.term_of(4), Some(2));
    s.close().unwrap();
    drop((p, s));
    let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 200).unwrap();
    assert_eq!(rep.partitions[0].log_end_offset, 5);
    assert!(rep.partitions[0].corruption.is_none());
    let p = s.partition("raft", 0).unwrap();
    p.truncate_from(0).unwrap();
    assert_eq!(p.offsets().log_end_offset, 0);
    assert!(p.read(0, i64::MAX, usize::MAX).unwrap().is_empty());
}

#[test]
fn offset_for_timestamp_finds_the_first_record_reaching_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("ts", 0).unwrap();
    // Offsets 0..=2 at times 100..=102 in one batch, then 3 at 200 and 4 at 300.
    let three = BatchSpec { records: 3, base_timestamp: 100, ..Default::default() }.encode();
    p.append(&[three, batch_at(200), batch_at(300)], 0).unwrap();
    let find = |ts| p.offset_for_timestamp(ts, 5).unwrap();
    assert_eq!(find(0), Some((0, 100)));
    assert_eq!(find(101), Some((1, 101)), "inside a batch, the record, not the batch");
    assert_eq!(find(102), Some((2, 102)));
    assert_eq!(find(103), Some((3, 200)));
    assert_eq!(find(300), Some((4, 300)));
    assert_eq!(find(301), None, "every record is older");
    assert_eq!(p.offset_for_timestamp(300, 4).unwrap(), None, "above the high watermark");
}

#[test]
fn the_record_with_the_largest_timestamp_is_found_inside_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("maxts", 0).unwrap();
    assert_eq!(p.offset_of_max_timestamp(0).unwrap(), None, "an empty partition");
    // Offsets 0..=2 at 100..=102, then 3 at 400 and 4 at 250: the largest is not the last.
    let three = BatchSpec { records: 3, base_timestamp: 100, ..Default::default() }.encode();
    p.append(&[three, batch_at(400), batch_at(250)], 0).unwrap();
    assert_eq!(p.offset_of_max_timestamp(5).unwrap(), Some((3, 400)));
    assert_eq!(p.offset_of_max_timestamp(3).unwrap(), Some((2, 102)), "the high watermark bounds it");
    p.append(&[batch_at(400)], 0).unwrap();
    assert_eq!(p.offset_of_max_timestamp(6).unwrap(), Some((3, 400)), "the first of equal timestamps");
}

#[test]
fn batch_headers_list_every_stored_batch_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 200);
    let p = s.create_partition("pid", 0).unwrap();
    for seq in 0..4 {
        let b = BatchSpec {
            records: 2,
            producer_id: 42,
            producer_epoch: 1,
            base_sequence: seq * 2,
            ..Default::default()
        }
        .encode();
        p.append(&[b], 0).unwrap();
    }
    let mut hs = Vec::new();
    p.for_each_batch_header(&mut |h| hs.push(*h)).unwrap();
    assert_eq!(
        hs.iter().map(|h| (h.base_offset, h.base_sequence)).collect::<Vec<_>>(),
        vec![(0, 0), (2, 2), (4, 4), (6, 6)]
    );
    assert!(hs.iter().all(|h| h.producer_id == 42));
}

#[test]
fn append_rejects_empty_input_bad_batches_and_negative_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("v", 0).unwrap();
    assert!(p.append(&[], 0).is_err());
    assert!(p.append(&[batch(1)], -1).is_err());
    let err = p.append(&[batch(1), Bytes::from_static(&[0u8; 10])], 0).unwrap_err().to_string();
    assert!(err.contains("batch 1"), "{err}");
    assert_eq!(p.offsets().log_end_offset, 0, "a rejected append must not store anything");
}

#[tokio::test]
async fn always_policy_wait_flushed_resolves_with_flushed_equal_to_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Always, 1 << 20);
    let p = s.create_partition("a", 0).unwrap();
    let mut rx = p.subscribe();
    let out = p.append(&[batch(3)], 0).unwrap();
    p.wait_flushed(out.last_offset + 1).await.unwrap();
    let off = p.offsets();
    assert_eq!((off.flushed_offset, off.log_end_offset, off.high_watermark), (3, 3, 3));
    assert!(off.flushed_at_ns >= off.appended_at_ns && off.appended_at_ns > 0);
    assert_eq!(rx.borrow_and_update().flushed_offset, 3);
    assert!(s.stats().fsync_count >= 1);
}

#[tokio::test]
async fn interval_policy_flushes_on_its_own_tick() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Interval(std::time::Duration::from_millis(5)), 1 << 20);
    let p = s.create_partition("i", 0).unwrap();
    p.append(&[batch(2)], 0).unwrap();
    assert_eq!(p.offsets().high_watermark, 2, "under Interval the high watermark is the log end");
    p.wait_flushed(2).await.unwrap();
    assert_eq!(p.offsets().flushed_offset, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_under_always_share_fsyncs() {
    const APPENDS: usize = 32;
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Always, 1 << 20);
    // A slow disk makes each fsync long enough that the other appenders pile up behind it.
    s.set_fsync_delay(std::time::Duration::from_millis(20));
    let p = s.create_partition("gc", 0).unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(APPENDS));
    let tasks: Vec<_> = (0..APPENDS)
        .map(|_| {
            let (p, barrier) = (p.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let out = p.append(&[batch(1)], 0).unwrap();
                p.wait_flushed(out.last_offset + 1).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let stats = s.stats();
    assert_eq!(p.offsets().flushed_offset, APPENDS as i64);
    assert!(stats.fsync_count >= 1 && stats.fsync_count < APPENDS as u64, "fsyncs: {}", stats.fsync_count);
    assert!(stats.fsync_nanos_total >= 20_000_000 * stats.fsync_count);
}

#[tokio::test]
async fn delete_partition_removes_files_and_fails_later_appends() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("gone", 1).unwrap();
    assert!(Arc::ptr_eq(&p, &s.create_partition("gone", 1).unwrap()), "create must be idempotent");
    p.append(&[batch(1)], 0).unwrap();
    s.delete_partition("gone", 1).unwrap();
    assert!(!dir.path().join("partitions/gone-1").exists());
    assert!(s.partition("gone", 1).is_none());
    assert!(p.append(&[batch(1)], 0).unwrap_err().to_string().contains("deleted"));
    assert!(p.wait_flushed(1).await.is_err());
    assert_eq!(s.create_partition("gone", 1).unwrap().offsets().log_end_offset, 0);
    assert!(s.create_partition("../x", 0).is_err());
}

/// A restarted replica's log was fsynced to its end, uncommitted tail included; until its Raft
/// group applies entries it knows nothing committed, so its high watermark is the log start, not
/// the flushed end a single node would report (chaos seed 7 acknowledged a batch from such a
/// tail: a lost write).
#[tokio::test]
async fn a_replicated_log_reopened_knows_nothing_committed_until_it_applies() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = store(dir.path(), FsyncPolicy::Always, 1 << 20);
        let p = s.create_partition("r", 0).unwrap();
        p.start_replicated();
        let out = p.append(&[batch(2), batch(3)], 4).unwrap();
        p.wait_flushed(out.last_offset + 1).await.unwrap();
        p.set_committed(2);
        assert_eq!(p.offsets().high_watermark, 2, "committed, not flushed, is the high watermark");
        s.close().unwrap();
    }
    let s = store(dir.path(), FsyncPolicy::Always, 1 << 20);
    let p = s.partition("r", 0).unwrap();
    assert_eq!(p.offsets().high_watermark, 5, "a single node's log: everything fsynced is readable");
    p.start_replicated();
    let off = p.offsets();
    assert_eq!((off.log_end_offset, off.flushed_offset, off.high_watermark), (5, 5, 0));
    p.set_committed(2);
    assert_eq!(p.offsets().high_watermark, 2);
}

#[test]
fn the_log_start_moves_up_only_and_whole_segments_below_it_go() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 250);
    let p = s.create_partition("t", 0).unwrap();
    append_n(&p, 12, 2); // offsets 0..24, several segments
    let segments = || std::fs::read_dir(dir.path().join("partitions/t-0")).unwrap().count();
    let before = segments();
    assert!(before >= 3, "expected several segments, got {before}");
    assert_eq!(p.set_log_start(9), 9);
    assert_eq!(p.set_log_start(4), 9, "the start never moves down");
    assert_eq!(p.offsets().log_start_offset, 9);
    // A read from the start returns the batch holding it; a time query never answers below it.
    assert_eq!(base_offsets(&p.read(9, i64::MAX, 0).unwrap()), vec![8]);
    assert_eq!(p.offset_for_timestamp(0, i64::MAX).unwrap().map(|(o, _)| o), Some(9));
    let gone = p.delete_segments_below(9).unwrap();
    assert!(gone >= 1 && segments() == before - gone, "{gone} of {before} segments deleted");
    assert_eq!(p.offsets().log_start_offset, 9);
    assert_eq!(p.read(9, i64::MAX, usize::MAX).unwrap().len(), 8);
    // After a reopen the first stored segment is the start (the floor itself is the
    // catalogue's to restore).
    s.close().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 250);
    let p = s.partition("t", 0).unwrap();
    let first = p.offsets().log_start_offset;
    assert!(first > 0 && first <= 9, "reopened log starts at {first}");
    assert_eq!(p.offsets().log_end_offset, 24);
}

/// OffsetForLeaderEpoch's answer: where the next term starts, or the log end; never the high
/// watermark (a new leader's lags until it applies, and a consumer compared against it rewound).
#[test]
fn an_epoch_ends_where_the_next_term_starts_or_at_the_log_end() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("e", 0).unwrap();
    p.start_replicated();
    p.append(&[batch(2), batch(3)], 1).unwrap(); // offsets 0..5, term 1
    p.append(&[batch(1)], 3).unwrap(); // offset 5, term 3
    p.append(&[batch(2)], 5).unwrap(); // offsets 6..8, term 5
    assert_eq!(p.offsets().high_watermark, 0, "nothing applied yet");
    assert_eq!(p.epoch_end(0), (None, 0));
    assert_eq!(p.epoch_end(1), (Some(1), 5));
    assert_eq!(p.epoch_end(2), (Some(1), 5), "a term with no entries ends where the next begins");
    assert_eq!(p.epoch_end(3), (Some(3), 6));
    assert_eq!(p.epoch_end(5), (Some(5), 8));
    assert_eq!(p.epoch_end(9), (Some(5), 8));
}

/// A replicated log serves its unapplied entries from memory (recent.rs): what it serves must
/// be the bytes the file holds, before and after an apply, a truncation and a rewrite.
#[test]
fn entries_read_back_are_the_stored_bytes_whether_held_in_memory_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path(), FsyncPolicy::Never, 1 << 20);
    let p = s.create_partition("r", 0).unwrap();
    p.start_replicated();
    p.append(&[batch(2), batch(3)], 1).unwrap(); // indexes 0, 1: offsets 0..2, 2..5
    p.append(&[batch(1)], 2).unwrap(); // index 2: offset 5
    let from_file = |p: &PartitionLog| {
        let stored = p.read(0, i64::MAX, usize::MAX).unwrap();
        (0..stored.len())
            .map(|i| (p.index_tail(i as u64, i as u64 + 1)[0].1, stored[i].clone()))
            .collect::<Vec<_>>()
    };
    let held = p.entries_by_index(0, 3).unwrap();
    assert_eq!(held, from_file(&p));
    assert_eq!(held.iter().map(|(t, _)| *t).collect::<Vec<_>>(), vec![1, 1, 2]);
    p.set_committed(5); // indexes 0 and 1 applied: read from the file from now on
    assert_eq!(p.entries_by_index(0, 3).unwrap(), held);
    p.truncate_from(5).unwrap();
    p.append(&[batch(4)], 3).unwrap(); // index 2 again, other bytes and term
    let rewritten = p.entries_by_index(2, 3).unwrap();
    assert_eq!(rewritten[0].0, 3);
    assert_eq!(rewritten, from_file(&p)[2..].to_vec());
    assert_ne!(rewritten[0].1, held[2].1);
}
