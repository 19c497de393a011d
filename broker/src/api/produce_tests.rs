//! Tests of the check behind every acknowledgement of a retried batch (`stored_at`): the entry
//! committed at the answered offset must be that producer's batch.

use std::sync::Arc;

use super::identity::{stored_at, AtOffset, BatchId};
use crate::config::FsyncPolicy;
use crate::log::batch_builder::control_batch;
use crate::log::test_batches::BatchSpec;
use crate::log::{BatchHeader, LogStore, PartitionLog};

fn replicated_log(dir: &std::path::Path) -> (Arc<LogStore>, Arc<PartitionLog>) {
    let s = LogStore::open(dir, FsyncPolicy::Never, 1 << 20).unwrap().0;
    let p = s.create_partition("t", 0).unwrap();
    p.start_replicated();
    (s, p)
}

fn producer_batch(producer_id: i64, base_sequence: i32, records: usize) -> (bytes::Bytes, BatchId) {
    let b =
        BatchSpec { records, producer_id, producer_epoch: 3, base_sequence, ..Default::default() }.encode();
    let id = BatchId::of(&BatchHeader::parse(&b).unwrap());
    (b, id)
}

#[test]
fn a_retry_is_acknowledged_only_once_its_own_batch_is_committed_there() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, p) = replicated_log(dir.path());
    let (b, id) = producer_batch(7, 0, 3);
    let (_, other_sequence) = producer_batch(7, 3, 3);
    let (_, other_producer) = producer_batch(8, 0, 3);
    p.append(&[b], 5).unwrap();
    assert_eq!(stored_at(&p, 0, &id).unwrap(), AtOffset::NotCommitted);
    p.set_committed(2);
    assert_eq!(stored_at(&p, 0, &id).unwrap(), AtOffset::NotCommitted, "committed up to its middle only");
    p.set_committed(3);
    assert_eq!(stored_at(&p, 0, &id).unwrap(), AtOffset::Committed);
    assert_eq!(stored_at(&p, 0, &other_sequence).unwrap(), AtOffset::Other);
    assert_eq!(stored_at(&p, 0, &other_producer).unwrap(), AtOffset::Other);
}

/// Chaos seed 7: a restarted leader's producer state named a batch of its uncommitted tail; a
/// later leader put its blank entry (a control batch) at that offset, and the retry was answered
/// with it. The committed entry there is not the batch: no acknowledgement.
#[test]
fn a_batch_replaced_by_another_leaders_entry_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, p) = replicated_log(dir.path());
    let (first, _) = producer_batch(7, 0, 1);
    let (retried, id) = producer_batch(7, 1, 1);
    p.append(&[first], 5).unwrap();
    p.append(&[retried], 5).unwrap();
    p.set_committed(1);
    assert_eq!(stored_at(&p, 1, &id).unwrap(), AtOffset::NotCommitted);
    p.truncate_from(1).unwrap();
    p.append(&[control_batch(0, b"blank", 1)], 6).unwrap();
    p.append(&[producer_batch(9, 0, 1).0], 6).unwrap();
    p.set_committed(3);
    assert_eq!(stored_at(&p, 1, &id).unwrap(), AtOffset::Other);
    // Truncated below the offset: nothing there at all.
    p.truncate_from(1).unwrap();
    p.set_committed(1);
    assert_eq!(stored_at(&p, 1, &id).unwrap(), AtOffset::NotCommitted);
}

/// Only the broker writes control batches: a client's, stored, would be read back as one of
/// Raft's own entries (decision 46).
#[test]
fn a_control_batch_from_a_client_is_refused_as_an_invalid_record() {
    let (code, msg) = super::parse(Some(control_batch(0x7e00, b"", -1))).unwrap_err();
    assert!(matches!(code, kafka_protocol::ResponseError::InvalidRecord), "{code:?}");
    assert!(msg.contains("control batch"), "{msg}");
    assert!(super::parse(Some(BatchSpec { records: 2, ..Default::default() }.encode())).is_ok());
}
