//! Raft entries <-> stored Kafka batches.
//!
//! A client batch is stored as it is; blank entries, membership changes and controller
//! commands become one-record Kafka control batches whose control type says which. The term is
//! kept by the log per entry; the index is the entry's position. Nothing else is needed to give
//! the entry back to openraft (`single-term-leader`: a log id is (term, index)).

use bytes::Bytes;
use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership};

use crate::error::{BrokerError, Result};
use crate::log::batch_builder::{control_batch, read_control};
use crate::log::RaftEntryBytes;
use crate::raft::typ::{Command, Entry, NodeId};

/// Control types of our own, far from Kafka's (0 = abort, 1 = commit, 2-5 = KRaft): clients
/// skip control records whatever their type.
const BLANK: i16 = 0x7e00;
const MEMBERSHIP: i16 = 0x7e01;
const CONTROLLER_COMMAND: i16 = 0x7e02;
/// Kafka's "no timestamp".
const NO_TIMESTAMP: i64 = -1;

/// The bytes to store for an entry, its term, and whether it takes Kafka offsets.
pub fn encode(entry: &Entry) -> Result<RaftEntryBytes> {
    let term = entry.log_id.leader_id.term;
    // Every replica encodes entries itself, so nothing here may depend on the node or its
    // clock: a fixed "no timestamp" keeps replicas byte-identical (see /digest).
    let now_ms = NO_TIMESTAMP;
    let bytes = match &entry.payload {
        EntryPayload::Normal(Command::Batch(b)) => b.clone(),
        EntryPayload::Normal(Command::Controller(b)) => control_batch(CONTROLLER_COMMAND, b, now_ms),
        EntryPayload::Blank => control_batch(BLANK, &[], now_ms),
        EntryPayload::Membership(m) => {
            let json = serde_json::to_vec(m)
                .map_err(|e| BrokerError::Internal(format!("membership does not serialize: {e}")))?;
            control_batch(MEMBERSHIP, &json, now_ms)
        }
    };
    // Raft's own entries take no offset, so a partition's records are numbered from 0 and
    // an election leaves no gap (decision 46). Controller commands keep theirs: nothing reads
    // the controller log as Kafka records, and its offsets count its commands.
    let takes_offsets = matches!(entry.payload, EntryPayload::Normal(_));
    Ok(RaftEntryBytes { term, batch: bytes, takes_offsets })
}

/// The entry stored at `index` with `term`.
pub fn decode(index: u64, term: u64, batch: Bytes) -> Result<Entry> {
    // The leader's node id is not part of a committed log id under single-term-leader.
    let log_id = LogId::new(CommittedLeaderId::new(term, NodeId::default()), index);
    let payload = match read_control(&batch)? {
        None => EntryPayload::Normal(Command::Batch(batch)),
        Some((BLANK, _)) => EntryPayload::Blank,
        Some((CONTROLLER_COMMAND, value)) => EntryPayload::Normal(Command::Controller(value)),
        Some((MEMBERSHIP, value)) => {
            let m: Membership<NodeId, openraft::BasicNode> =
                serde_json::from_slice(&value).map_err(|e| BrokerError::CorruptState {
                    what: format!("Raft membership entry at index {index}"),
                    reason: format!("not valid JSON: {e}"),
                })?;
            EntryPayload::Membership(m)
        }
        Some((other, _)) => {
            return Err(BrokerError::CorruptState {
                what: format!("Raft entry at index {index}"),
                reason: format!("unknown control type {other:#x}"),
            })
        }
    };
    Ok(Entry { log_id, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn entry(term: u64, index: u64, payload: EntryPayload<crate::raft::typ::TypeConfig>) -> Entry {
        Entry { log_id: LogId::new(CommittedLeaderId::new(term, 0), index), payload }
    }

    #[test]
    fn every_payload_kind_round_trips() {
        let members: BTreeMap<NodeId, openraft::BasicNode> =
            (1..=3).map(|i| (i, openraft::BasicNode::new(format!("127.0.0.1:{i}")))).collect();
        let membership = Membership::new(vec![members.keys().copied().collect::<BTreeSet<_>>()], members);
        let data = crate::log::test_batches::batch(3);
        for e in [
            entry(1, 0, EntryPayload::Membership(membership)),
            entry(1, 1, EntryPayload::Blank),
            entry(2, 2, EntryPayload::Normal(Command::Batch(data))),
            entry(2, 3, EntryPayload::Normal(Command::Controller(Bytes::from_static(b"{\"create\":1}")))),
        ] {
            let stored = encode(&e).unwrap();
            assert_eq!(stored.term, e.log_id.leader_id.term);
            let own = matches!(e.payload, EntryPayload::Blank | EntryPayload::Membership(_));
            assert_eq!(stored.takes_offsets, !own, "only Raft's own entries take no offset");
            let back = decode(e.log_id.index, stored.term, stored.batch).unwrap();
            assert_eq!(back.log_id, e.log_id);
            assert_eq!(format!("{:?}", back.payload), format!("{:?}", e.payload));
        }
    }
}
