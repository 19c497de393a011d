//! Idempotent producers: producer ids, epochs and per-partition sequence checks.
//!
//! Kafka's rules, kept exactly because librdkafka's idempotence depends on them:
//! - a batch whose sequence range matches one of the last `RECENT_BATCHES` appended batches of
//!   that producer is a retry of something already in the log: it is answered with the original
//!   offset and not appended again;
//! - a batch whose first sequence is behind the last sequence + 1 (and no retry of a recent
//!   batch) is OUT_OF_ORDER_SEQUENCE_NUMBER;
//! - an older epoch is INVALID_PRODUCER_EPOCH; a newer epoch starts again at sequence 0.
//!
//! One rule differs on purpose: a batch *ahead* of the expected sequence (a gap: a batch before
//! it never reached this state) is refused with REQUEST_TIMED_OUT, which the client retries with
//! the same sequence after the missing batch, not with OUT_OF_ORDER_SEQUENCE_NUMBER. Kafka
//! answers OUT_OF_ORDER there, and librdkafka then drains, bumps its epoch and renumbers every
//! unacknowledged message of every partition, so a message whose write succeeded but whose
//! answer was lost or timed out is written again as new data (docs/chaos.md bug 2). A Kafka
//! leader rarely makes such gaps; ours does: a leader whose majority missed a heartbeat answers
//! NOT_LEADER_OR_FOLLOWER for a moment without losing its term, so of two pipelined batches the
//! first is refused and the second reaches the sequence check.
//!
//! The state is rebuilt from the batch headers in the log at start-up, so duplicates are caught
//! across a broker restart as well.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::log::{BatchHeader, LogStore};

/// Kafka keeps the last five batches per producer and partition, matching the client's maximum of
/// five in-flight requests with idempotence: every retry the client can send is still recognised.
const RECENT_BATCHES: usize = 5;
/// Producer ids are reserved in blocks so that only one metadata write per block is needed,
/// and an id is never handed out twice even across a power cut.
const ID_BLOCK: i64 = 1000;
const IDS_FILE: &str = "producer_ids.json";

#[derive(Debug, Clone, Copy)]
struct AppendedBatch {
    base_sequence: i32,
    last_sequence: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    recent: VecDeque<AppendedBatch>,
}

/// The sequence state of every producer for one partition. Hold its lock across
/// check -> append -> record so two connections cannot interleave one producer's batches.
#[derive(Debug, Default)]
pub struct PartitionProducers {
    producers: HashMap<i64, ProducerEntry>,
    /// Cluster mode: the Raft term this state was rebuilt for. A new leader rebuilds from its
    /// own log before it accepts a batch, since the previous leader's view is gone.
    built_for_term: Option<u64>,
}

/// A recorded batch whose commit is still pending has no offset yet.
pub const PENDING_OFFSET: i64 = -1;

/// What to do with an incoming batch.
#[derive(Debug, PartialEq)]
pub enum SequenceCheck {
    /// New data in order (or a non-idempotent producer): append it.
    Append,
    /// Already in the log at this offset: answer success with it, append nothing.
    Duplicate { base_offset: i64 },
    /// Refuse with this Kafka error.
    Reject(ResponseError, String),
}

impl PartitionProducers {
    pub fn check(&self, h: &BatchHeader) -> SequenceCheck {
        if h.producer_id < 0 {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // First batch we see from this producer on this partition (Kafka accepts any
            // starting sequence here; the producer may have written elsewhere first).
            return SequenceCheck::Append;
        };
        if h.producer_epoch < entry.epoch {
            return SequenceCheck::Reject(
                ResponseError::InvalidProducerEpoch,
                format!(
                    "producer {} epoch {} is older than {}",
                    h.producer_id, h.producer_epoch, entry.epoch
                ),
            );
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch starts at 0 on every partition: a later first sequence means the
            // batches before it have not arrived (yet).
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                gap(format!(
                    "producer {} new epoch {} starts at sequence 0, got {}",
                    h.producer_id, h.producer_epoch, h.base_sequence
                ))
            };
        }
        let last_sequence = last_sequence_of(h);
        if let Some(seen) = entry
            .recent
            .iter()
            .find(|b| b.base_sequence == h.base_sequence && b.last_sequence == last_sequence)
        {
            return SequenceCheck::Duplicate { base_offset: seen.base_offset };
        }
        let expected = entry.recent.back().map(|b| next_sequence(b.last_sequence)).unwrap_or(0);
        if h.base_sequence == expected {
            return SequenceCheck::Append;
        }
        let what =
            format!("producer {} expected sequence {expected}, got {}", h.producer_id, h.base_sequence);
        if is_ahead(h.base_sequence, expected) {
            gap(what)
        } else {
            SequenceCheck::Reject(ResponseError::OutOfOrderSequenceNumber, what)
        }
    }

    /// True when this state was rebuilt for `term` (cluster mode).
    pub fn is_built_for(&self, term: u64) -> bool {
        self.built_for_term == Some(term)
    }

    /// Replaces the state with what a whole log says, for `term`: `read` calls its argument
    /// with every stored batch header in order (`PartitionLog::for_each_batch_header`). On an
    /// error the state is left empty and not built for any term, so the next batch retries.
    pub fn rebuild<E>(
        &mut self,
        term: u64,
        read: impl FnOnce(&mut dyn FnMut(&BatchHeader)) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        self.producers.clear();
        self.built_for_term = None;
        read(&mut |h| self.record(h, h.base_offset))?;
        self.built_for_term = Some(term);
        Ok(())
    }

    /// The offset recorded for a producer's batch starting at `base_sequence` (PENDING_OFFSET
    /// while its commit is outstanding), if it is still among the recent batches.
    pub fn offset_of(&self, producer_id: i64, base_sequence: i32) -> Option<i64> {
        self.producers
            .get(&producer_id)?
            .recent
            .iter()
            .find(|b| b.base_sequence == base_sequence)
            .map(|b| b.base_offset)
    }

    /// Fills in the offset of a batch recorded as pending, once its commit says where it is.
    pub fn resolve(&mut self, producer_id: i64, base_sequence: i32, base_offset: i64) {
        if let Some(entry) = self.producers.get_mut(&producer_id) {
            if let Some(b) = entry
                .recent
                .iter_mut()
                .find(|b| b.base_sequence == base_sequence && b.base_offset == PENDING_OFFSET)
            {
                b.base_offset = base_offset;
            }
        }
    }

    /// Records a batch that is now in the log at `base_offset` (or `PENDING_OFFSET`).
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if h.producer_id < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.recent.clear();
        }
        entry.recent.push_back(AppendedBatch {
            base_sequence: h.base_sequence,
            last_sequence: last_sequence_of(h),
            base_offset,
        });
        while entry.recent.len() > RECENT_BATCHES {
            entry.recent.pop_front();
        }
    }
}

/// A batch ahead of the expected sequence: refused with a retriable error (see the module
/// documentation), so the client sends the missing batches first and then this one again.
fn gap(what: String) -> SequenceCheck {
    SequenceCheck::Reject(
        ResponseError::RequestTimedOut,
        format!("{what}: the batches before it have not arrived; retry them first"),
    )
}

/// Whether `sequence` lies after `expected` in the wrapping sequence space (within half of it).
fn is_ahead(sequence: i32, expected: i32) -> bool {
    let space = i64::from(i32::MAX) + 1;
    let distance = (i64::from(sequence) - i64::from(expected)).rem_euclid(space);
    distance > 0 && distance < space / 2
}

/// Sequences wrap from i32::MAX to 0, as in Kafka.
fn next_sequence(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

fn last_sequence_of(h: &BatchHeader) -> i32 {
    let last = h.base_sequence as i64 + h.last_offset_delta as i64;
    (last % (i32::MAX as i64 + 1)) as i32
}

#[derive(Debug, Serialize, Deserialize)]
struct IdReservation {
    /// Ids below this may have been handed out; the next run starts here.
    reserved_until: i64,
}

struct IdAllocator {
    next: i64,
    reserved_until: i64,
}

/// Producer ids for the whole node plus the per-partition sequence state.
pub struct Producers {
    store: Arc<LogStore>,
    ids: Mutex<IdAllocator>,
    partitions: Mutex<ByPartition>,
}

/// Each partition's producer state, locked on its own so partitions do not wait for each other.
type ByPartition = HashMap<(String, i32), Arc<Mutex<PartitionProducers>>>;

impl Producers {
    /// Loads the id reservation and rebuilds sequence state from every partition's batch headers.
    pub fn load(store: Arc<LogStore>) -> Result<Producers> {
        let reserved_until = match store.read_meta(IDS_FILE)? {
            Some(bytes) => serde_json::from_slice::<IdReservation>(&bytes)
                .map(|r| r.reserved_until)
                .unwrap_or_else(|e| {
                    // Losing the reservation only risks reusing ids; restart far above any plausible id.
                    tracing::error!(error = %e, "producer id reservation unreadable; skipping ahead");
                    i64::from(i32::MAX)
                }),
            None => 0,
        };
        let producers = Producers {
            ids: Mutex::new(IdAllocator { next: reserved_until, reserved_until }),
            partitions: Mutex::new(HashMap::new()),
            store: Arc::clone(&store),
        };
        for log in store.partitions() {
            let state = producers.partition(log.topic(), log.partition());
            let mut state = lock(&state);
            log.for_each_batch_header(&mut |h| state.record(h, h.base_offset))?;
        }
        Ok(producers)
    }

    /// Hands out a fresh producer id with epoch 0.
    pub fn allocate(&self) -> Result<(i64, i16)> {
        let mut ids = lock(&self.ids);
        if ids.next >= ids.reserved_until {
            let reserved_until = ids.next + ID_BLOCK;
            let bytes = serde_json::to_vec(&IdReservation { reserved_until }).expect("serializes");
            self.store.write_meta(IDS_FILE, &bytes)?;
            ids.reserved_until = reserved_until;
        }
        let id = ids.next;
        ids.next += 1;
        Ok((id, 0))
    }

    /// The sequence state of one partition (created on first use).
    pub fn partition(&self, topic: &str, partition: i32) -> Arc<Mutex<PartitionProducers>> {
        let mut map = lock(&self.partitions);
        Arc::clone(map.entry((topic.to_string(), partition)).or_default())
    }

    /// Forgets a deleted topic's state.
    pub fn forget_topic(&self, topic: &str) {
        lock(&self.partitions).retain(|(t, _), _| t != topic);
    }
}

/// Producer state stays consistent under panics (each update is a single push/pop), so a poisoned
/// lock is safe to keep using.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, base_sequence: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence,
            record_count: records,
        }
    }

    #[test]
    fn in_order_batches_append_and_retries_are_duplicates() {
        let mut p = PartitionProducers::default();
        let first = header(7, 0, 0, 10);
        assert_eq!(p.check(&first), SequenceCheck::Append);
        p.record(&first, 100);
        let second = header(7, 0, 10, 5);
        assert_eq!(p.check(&second), SequenceCheck::Append);
        p.record(&second, 110);
        assert_eq!(p.check(&first), SequenceCheck::Duplicate { base_offset: 100 });
        assert_eq!(p.check(&second), SequenceCheck::Duplicate { base_offset: 110 });
    }

    fn refused_with(check: SequenceCheck) -> Option<ResponseError> {
        match check {
            SequenceCheck::Reject(code, _) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn a_gap_is_retriable_a_rewind_is_out_of_order_and_an_old_epoch_is_fenced() {
        let mut p = PartitionProducers::default();
        p.record(&header(7, 1, 0, 10), 0);
        p.record(&header(7, 1, 10, 1), 10);
        // Sequence 11 has not arrived: 12 waits for it (never OUT_OF_ORDER, which makes
        // librdkafka renumber and re-send everything unacknowledged).
        assert_eq!(refused_with(p.check(&header(7, 1, 12, 1))), Some(ResponseError::RequestTimedOut));
        // Behind, and not one of the recent batches: a real desynchronisation.
        assert_eq!(refused_with(p.check(&header(7, 1, 5, 1))), Some(ResponseError::OutOfOrderSequenceNumber));
        assert_eq!(refused_with(p.check(&header(7, 0, 10, 1))), Some(ResponseError::InvalidProducerEpoch));
        assert_eq!(p.check(&header(7, 2, 0, 1)), SequenceCheck::Append);
        // A new epoch whose sequence 0 has not arrived yet.
        assert_eq!(refused_with(p.check(&header(7, 2, 5, 1))), Some(ResponseError::RequestTimedOut));
        assert_eq!(p.check(&header(7, 1, 11, 1)), SequenceCheck::Append);
    }

    #[test]
    fn ahead_and_behind_across_the_wrap() {
        assert!(is_ahead(1, 0));
        assert!(!is_ahead(0, 0));
        assert!(!is_ahead(0, 1));
        assert!(is_ahead(2, i32::MAX));
        assert!(!is_ahead(i32::MAX, 2));
    }

    #[test]
    fn non_idempotent_batches_are_never_checked() {
        let p = PartitionProducers::default();
        assert_eq!(p.check(&header(-1, -1, -1, 3)), SequenceCheck::Append);
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(next_sequence(i32::MAX), 0);
        assert_eq!(last_sequence_of(&header(1, 0, i32::MAX, 2)), 0);
    }
}
