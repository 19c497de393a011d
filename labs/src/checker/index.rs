//! The per-value index shared by the batch checker and the live checker.
//!
//! Both forms ingest the history one op at a time into the same structure; the batch form then
//! sweeps it once, the live form looks only at what the op just changed. Keeping one ingest
//! path means the two can never disagree on what "sent", "acked" or "read at" means.
//!
//! Values are unique per run, so everything is keyed by value (one hash lookup per op). Each
//! value gets a dense `usize` id in first-seen order, which also makes the batch output order
//! deterministic (no HashMap iteration order leaks into a verdict).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::history::{Op, OpKind, OpType};

/// FxHash (as in rustc): several times faster than SipHash on short keys. Values come from our
/// own workload, not an adversary, so hash flooding is not a concern; this is what keeps a
/// million-op history well under a second without pulling in a hashing crate.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().unwrap_or_default()));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.write_u64(u64::from_le_bytes(tail) ^ rest.len() as u64);
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_u32(&mut self, word: u32) {
        self.write_u64(word as u64);
    }

    fn write_i32(&mut self, word: i32) {
        self.write_u64(word as u32 as u64);
    }

    fn write_i64(&mut self, word: i64) {
        self.write_u64(word as u64);
    }

    /// The multiply only carries entropy upwards, but hashbrown picks buckets from the low
    /// bits; without this final mix (murmur3's fmix64) keys that differ only in their last bytes
    /// ("0-1234" vs "0-1235") pile into few buckets.
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A position in the log: (interned topic, partition, offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Slot {
    pub topic: u32,
    pub partition: i32,
    pub offset: i64,
}

/// How a send ended, as far as the history says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Invoked, no completion (yet): indeterminate at the end of a run.
    Pending,
    /// Acknowledged. Partition/offset are what the broker reported; Kafka reports -1 when unknown.
    Ok { partition: i32, offset: i64, time_ns: u64, index: u64 },
    /// Definitely not written.
    Fail,
    /// Indeterminate (timeout, dropped connection).
    Info,
}

#[derive(Debug, Clone)]
pub(crate) struct Send {
    pub process: u32,
    pub topic: u32,
    pub invoke_index: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub(crate) struct ValueState {
    /// Shared with the lookup map, so each value is allocated once.
    pub value: Arc<str>,
    pub send: Option<Send>,
    /// Distinct positions this value was read at; usually 0 or 1 long, so a Vec beats a set.
    pub reads: Vec<Slot>,
    /// History index of the latest read, to tell "final" reads from earlier ones.
    pub last_read_index: Option<u64>,
}

impl ValueState {
    /// The position the broker acknowledged, when it reported a real offset.
    pub fn ack_slot(&self) -> Option<Slot> {
        match self.send {
            Some(Send { topic, outcome: Outcome::Ok { partition, offset, .. }, .. }) if offset >= 0 => {
                Some(Slot { topic, partition, offset })
            }
            _ => None,
        }
    }
}

/// What one op changed, so the live checker can look only there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ingested {
    /// Nothing the checker cares about (poll invocations, ops without a value, ...).
    Ignored,
    Invoked(usize),
    Acked(usize),
    Failed(usize),
    Indeterminate(usize),
    /// A successful poll. `new_slot` is false for a re-read of a known position (a rebalance
    /// re-delivery), which is harmless; `conflict_with` names another value already read at
    /// the same position.
    Read {
        id: usize,
        slot: Slot,
        new_slot: bool,
        conflict_with: Option<usize>,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    pub values: Vec<ValueState>,
    by_value: FxMap<Arc<str>, usize>,
    topic_ids: FxMap<String, u32>,
    /// The last topic looked up: runs mostly use one topic, so this skips a hash per op.
    last_topic: Option<(String, u32)>,
    /// First value read at each position.
    pub slots: FxMap<Slot, usize>,
    /// Two different values read at one position: (slot, later value, earlier value).
    pub conflicts: Vec<(Slot, usize, usize)>,
    pub sent_invoked: u64,
    pub read_ops: u64,
}

impl Index {
    /// An index sized for a history of `ops` ops (about one distinct value per two ops).
    pub fn with_capacity(ops: usize) -> Index {
        let mut index = Index::default();
        index.values.reserve(ops / 2);
        index.by_value.reserve(ops / 2);
        index.slots.reserve(ops / 2);
        index
    }

    fn topic_id(&mut self, topic: &str) -> u32 {
        if let Some((name, id)) = &self.last_topic {
            if name == topic {
                return *id;
            }
        }
        let next = self.topic_ids.len() as u32;
        let id = *self.topic_ids.entry(topic.to_string()).or_insert(next);
        self.last_topic = Some((topic.to_string(), id));
        id
    }

    fn value_id(&mut self, value: &str) -> usize {
        if let Some(&id) = self.by_value.get(value) {
            return id;
        }
        let id = self.values.len();
        let value: Arc<str> = Arc::from(value);
        self.values.push(ValueState {
            value: value.clone(),
            send: None,
            reads: Vec::new(),
            last_read_index: None,
        });
        self.by_value.insert(value, id);
        id
    }

    /// Records one op. Completions are matched to their invocation by value (values are unique
    /// per run and producers pipeline many sends per process, so the process id cannot match).
    pub fn ingest(&mut self, op: &Op) -> Ingested {
        let Some(value) = op.value.as_deref() else { return Ingested::Ignored };
        match (op.kind, op.op_type) {
            (OpKind::Send, OpType::Invoke) => self.invoked(op, value),
            (OpKind::Send, done) => self.completed(op, value, done),
            (OpKind::Poll, OpType::Ok) => self.read(op, value),
            _ => Ingested::Ignored,
        }
    }

    fn invoked(&mut self, op: &Op, value: &str) -> Ingested {
        let topic = self.topic_id(&op.topic);
        let id = self.value_id(value);
        if self.values[id].send.is_none() {
            self.sent_invoked += 1;
            self.values[id].send =
                Some(Send { process: op.process, topic, invoke_index: op.index, outcome: Outcome::Pending });
        }
        Ingested::Invoked(id)
    }

    fn completed(&mut self, op: &Op, value: &str, done: OpType) -> Ingested {
        let id = self.value_id(value);
        // A completion without its invocation still tells us the send happened.
        if self.values[id].send.is_none() {
            let topic = self.topic_id(&op.topic);
            self.sent_invoked += 1;
            self.values[id].send =
                Some(Send { process: op.process, topic, invoke_index: op.index, outcome: Outcome::Pending });
        }
        let (outcome, ingested) = match done {
            OpType::Ok => (
                Outcome::Ok {
                    partition: op.partition.unwrap_or(-1),
                    offset: op.offset.unwrap_or(-1),
                    time_ns: op.time_ns,
                    index: op.index,
                },
                Ingested::Acked(id),
            ),
            OpType::Fail => (Outcome::Fail, Ingested::Failed(id)),
            _ => (Outcome::Info, Ingested::Indeterminate(id)),
        };
        if let Some(send) = self.values[id].send.as_mut() {
            send.outcome = outcome;
        }
        ingested
    }

    /// A successful poll: a new position of the value, or a re-read; a second value at a known
    /// position is a conflict.
    fn read(&mut self, op: &Op, value: &str) -> Ingested {
        let (Some(partition), Some(offset)) = (op.partition, op.offset) else {
            return Ingested::Ignored;
        };
        self.read_ops += 1;
        let slot = Slot { topic: self.topic_id(&op.topic), partition, offset };
        let id = self.value_id(value);
        let state = &mut self.values[id];
        state.last_read_index = Some(op.index);
        if state.reads.contains(&slot) {
            return Ingested::Read { id, slot, new_slot: false, conflict_with: None };
        }
        state.reads.push(slot);
        let first = *self.slots.entry(slot).or_insert(id);
        let conflict_with = (first != id).then_some(first);
        if let Some(other) = conflict_with {
            self.conflicts.push((slot, id, other));
        }
        Ingested::Read { id, slot, new_slot: true, conflict_with }
    }
}
