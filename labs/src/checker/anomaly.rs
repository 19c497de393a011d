//! The anomalies a run can show, and the builders both checker forms share.
//!
//! Every variant carries enough to explain it to a workshop audience without opening the raw
//! history: the value, where it was acknowledged, where it was read, and when.

use serde::{Deserialize, Serialize};

use super::index::{Index, Slot};
use super::kind::AnomalyKind;

/// One thing the history shows that the delivery guarantees forbid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Anomaly {
    /// Acknowledged (send `ok`) but never read in the final reads. `partition`/`offset` are what
    /// the broker acknowledged (-1 when it did not say, as Kafka does).
    LostWrite { value: String, partition: i32, offset: i64, acked_at_ns: u64 },
    /// The same value read at two or more different offsets, i.e. written more than once.
    /// Re-reading one offset (a rebalance re-delivery) is not a duplicate. A value that landed
    /// on two partitions yields one record per partition.
    Duplicate { value: String, partition: i32, offsets: Vec<i64> },
    /// One producer process had `first` acknowledged before it invoked `second`, yet `second`
    /// was acknowledged at a lower offset of the same partition.
    Reordered {
        partition: i32,
        first_value: String,
        second_value: String,
        first_offset: i64,
        second_offset: i64,
    },
    /// Either a value acknowledged at `acked_offset` but read only elsewhere (`other_value` is
    /// None), or two values read at one position: `value` was read at `read_offset` where
    /// `other_value` had already been read (`acked_offset` is then `value`'s own ack, if any).
    InconsistentOffset {
        value: String,
        partition: i32,
        acked_offset: Option<i64>,
        read_offset: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        other_value: Option<String>,
    },
    /// A value read that no client ever sent.
    PhantomRead { value: String, partition: i32, offset: i64 },
    /// Replicas at the same end offset whose contents disagree: (node, crc32c, end_offset).
    ReplicaDivergence { topic: String, partition: i32, nodes: Vec<(i32, u32, i64)> },
    /// A send the client saw `fail` (definitely not written) that was nevertheless read.
    FailedButPresent { value: String, partition: i32, offset: i64 },
    /// An idempotent producer's sends to one partition, in the order it sent them, acknowledged
    /// at decreasing offsets (sends in flight together; the non-overlapping case is `Reordered`).
    NonmonotonicSend {
        process: u32,
        partition: i32,
        first_value: String,
        first_offset: i64,
        second_value: String,
        second_offset: i64,
    },
    /// A group member's next poll of a partition jumped over records the log holds: within one
    /// assignment (`after_rebalance` false) or where a new assignment started reading beyond
    /// everything the group had been delivered (true).
    PollSkip {
        process: u32,
        /// The topic (empty in anomalies saved before several topics were checked).
        #[serde(default)]
        topic: String,
        partition: i32,
        from_offset: i64,
        to_offset: i64,
        skipped: u64,
        first_skipped: i64,
        first_value: String,
        after_rebalance: bool,
        at_ns: u64,
    },
    /// Within one assignment, a member read an offset at or below one it had already read.
    NonmonotonicPoll {
        process: u32,
        #[serde(default)]
        topic: String,
        partition: i32,
        previous_offset: i64,
        offset: i64,
        at_ns: u64,
    },
    /// Acknowledged and in the log (the final read found it), but no group member received it
    /// by the end of the run.
    Unseen {
        value: String,
        #[serde(default)]
        topic: String,
        partition: i32,
        offset: i64,
        acked_at_ns: u64,
    },
    /// A member assigned a partition started reading below an offset whose commit the group
    /// coordinator had acknowledged before that assignment: the group forgot a commit.
    CommittedOffsetBackwards {
        process: u32,
        #[serde(default)]
        topic: String,
        partition: i32,
        committed: i64,
        committed_at_ns: u64,
        resumed_at: i64,
        at_ns: u64,
    },
}

impl Anomaly {
    /// Its kind, without the data (the `kind` tag its JSON carries).
    pub fn kind(&self) -> AnomalyKind {
        match self {
            Anomaly::LostWrite { .. } => AnomalyKind::LostWrite,
            Anomaly::Duplicate { .. } => AnomalyKind::Duplicate,
            Anomaly::Reordered { .. } => AnomalyKind::Reordered,
            Anomaly::InconsistentOffset { .. } => AnomalyKind::InconsistentOffset,
            Anomaly::PhantomRead { .. } => AnomalyKind::PhantomRead,
            Anomaly::ReplicaDivergence { .. } => AnomalyKind::ReplicaDivergence,
            Anomaly::FailedButPresent { .. } => AnomalyKind::FailedButPresent,
            Anomaly::NonmonotonicSend { .. } => AnomalyKind::NonmonotonicSend,
            Anomaly::PollSkip { .. } => AnomalyKind::PollSkip,
            Anomaly::NonmonotonicPoll { .. } => AnomalyKind::NonmonotonicPoll,
            Anomaly::Unseen { .. } => AnomalyKind::Unseen,
            Anomaly::CommittedOffsetBackwards { .. } => AnomalyKind::CommittedOffsetBackwards,
        }
    }

    /// Short plural-free label used in summaries and `matches` errors.
    pub fn label(&self) -> &'static str {
        self.kind().label()
    }
}

/// Acknowledged writes that were lost.
pub fn lost_count(anomalies: &[Anomaly]) -> usize {
    anomalies.iter().filter(|a| matches!(a, Anomaly::LostWrite { .. })).count()
}

/// Distinct duplicated values (a value duplicated across partitions has several records but
/// is one duplicated write from the producer's point of view).
pub fn duplicate_count(anomalies: &[Anomaly]) -> usize {
    let mut values: Vec<&str> = anomalies
        .iter()
        .filter_map(|a| match a {
            Anomaly::Duplicate { value, .. } => Some(value.as_str()),
            _ => None,
        })
        .collect();
    values.sort_unstable();
    values.dedup();
    values.len()
}

/// Everything that is neither a lost write nor a duplicate.
pub fn other_count(anomalies: &[Anomaly]) -> usize {
    anomalies.iter().filter(|a| !matches!(a, Anomaly::LostWrite { .. } | Anomaly::Duplicate { .. })).count()
}

/// "1 phantom read, 2 reordered pair" style breakdown of the non-loss, non-duplicate kinds.
pub fn other_breakdown(anomalies: &[Anomaly]) -> String {
    let mut counts: Vec<(&'static str, usize)> = Vec::new();
    for a in anomalies.iter().filter(|a| !matches!(a, Anomaly::LostWrite { .. } | Anomaly::Duplicate { .. }))
    {
        match counts.iter_mut().find(|(l, _)| *l == a.label()) {
            Some((_, n)) => *n += 1,
            None => counts.push((a.label(), 1)),
        }
    }
    counts.iter().map(|(l, n)| format!("{n} {l}")).collect::<Vec<_>>().join(", ")
}

/// Duplicate records for value `id`, one per (topic, partition) it was read in; `only` limits
/// them to the partition of one slot (the live checker reports just where the news is).
pub(crate) fn duplicates_of(index: &Index, id: usize, only: Option<Slot>) -> Vec<Anomaly> {
    let state = &index.values[id];
    let mut groups: Vec<((u32, i32), Vec<i64>)> = Vec::new();
    for s in &state.reads {
        if only.is_some_and(|o| (o.topic, o.partition) != (s.topic, s.partition)) {
            continue;
        }
        match groups.iter_mut().find(|(k, _)| *k == (s.topic, s.partition)) {
            Some((_, offsets)) => offsets.push(s.offset),
            None => groups.push(((s.topic, s.partition), vec![s.offset])),
        }
    }
    groups
        .into_iter()
        .map(|((_, partition), mut offsets)| {
            offsets.sort_unstable();
            Anomaly::Duplicate { value: state.value.to_string(), partition, offsets }
        })
        .collect()
}

/// `id` read at `slot` where `other` was read first.
pub(crate) fn slot_conflict(index: &Index, slot: Slot, id: usize, other: usize) -> Anomaly {
    let state = &index.values[id];
    Anomaly::InconsistentOffset {
        value: state.value.to_string(),
        partition: slot.partition,
        acked_offset: state.ack_slot().map(|s| s.offset),
        read_offset: slot.offset,
        other_value: Some(index.values[other].value.to_string()),
    }
}

/// `id` acknowledged at `ack` but read elsewhere; reports the first read in the ack partition
/// (or the first read at all, if it only surfaced on another partition).
pub(crate) fn ack_mismatch(index: &Index, id: usize, ack: Slot) -> Anomaly {
    let state = &index.values[id];
    let read = state
        .reads
        .iter()
        .find(|s| (s.topic, s.partition) == (ack.topic, ack.partition))
        .or(state.reads.first())
        .map_or(-1, |s| s.offset);
    Anomaly::InconsistentOffset {
        value: state.value.to_string(),
        partition: ack.partition,
        acked_offset: Some(ack.offset),
        read_offset: read,
        other_value: None,
    }
}
