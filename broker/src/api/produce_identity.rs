//! A retried batch is acknowledged by offset only if the committed entry there is that batch:
//! its identity in the log, and the check (decision 33; the seed-7 soak's lost write).

use kafka_protocol::ResponseError;

use crate::cluster::raft_group::RaftGroup;
use crate::log::{BatchHeader, PartitionLog};

use super::KafkaError;

/// What identifies an idempotent producer's batch in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchId {
    pub(super) producer_id: i64,
    pub(super) epoch: i16,
    pub(super) base_sequence: i32,
    pub(super) last_offset_delta: i32,
}

impl BatchId {
    pub(super) fn of(h: &BatchHeader) -> BatchId {
        BatchId {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            last_offset_delta: h.last_offset_delta,
        }
    }
}

/// What the log holds at the offset a retry is to be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AtOffset {
    /// Not committed that far yet.
    NotCommitted,
    /// Committed, and it is this batch: the answer is true.
    Committed,
    /// Committed, but another entry (or nothing) is there.
    Other,
}

/// What the log holds at `base` for `batch`. An acknowledgement by offset is only true for
/// `Committed`: the producer state that named `base` may have been rebuilt from an uncommitted
/// tail that a later leader replaced (chaos seed 7 acknowledged a batch at an offset holding
/// another leader's blank entry).
pub(crate) fn stored_at(log: &PartitionLog, base: i64, batch: &BatchId) -> Result<AtOffset, KafkaError> {
    if log.offsets().high_watermark <= base + batch.last_offset_delta as i64 {
        return Ok(AtOffset::NotCommitted);
    }
    let stored =
        log.read(base, base + 1, 0).map_err(|e| (ResponseError::KafkaStorageError, e.to_string()))?;
    let Some(first) = stored.first() else { return Ok(AtOffset::Other) };
    let h = BatchHeader::parse(first).map_err(|e| (ResponseError::CorruptMessage, e.to_string()))?;
    Ok(if h.base_offset == base && BatchId::of(&h) == *batch { AtOffset::Committed } else { AtOffset::Other })
}

/// The answer to a retry whose batch is not at the offset it was answered with: unknown outcome
/// (REQUEST_TIMED_OUT), so the client retries the same sequence wherever the partition leads.
pub(super) fn replaced(group: &RaftGroup, base: i64, batch: &BatchId) -> KafkaError {
    tracing::warn!(group = %group.id, offset = base, producer_id = batch.producer_id, epoch = batch.epoch,
        base_sequence = batch.base_sequence, "a retried batch is not the committed entry at its offset");
    (
        ResponseError::RequestTimedOut,
        format!("the committed entry at {base} is not this batch; its outcome is unknown here"),
    )
}
