//! Test-only encoder of valid Kafka RecordBatch v2 bytes (varint records, CRC-32C), so tests of
//! every module can build batches exactly as a client would send them.

use bytes::{BufMut, Bytes, BytesMut};

use crate::log::batch_builder::{build, ProducerFields, Record};

/// What to put in a batch; `Default` gives one record with timestamp 1000 and no producer id.
#[derive(Clone, Debug)]
pub(crate) struct BatchSpec {
    pub records: usize,
    /// Record i gets timestamp `base_timestamp + i`, so max_timestamp = base + records - 1.
    pub base_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Size of each record's value (filled with the record index byte).
    pub value_len: usize,
}

impl Default for BatchSpec {
    fn default() -> Self {
        BatchSpec {
            records: 1,
            base_timestamp: 1000,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            value_len: 8,
        }
    }
}

impl BatchSpec {
    pub fn encode(&self) -> Bytes {
        let keys: Vec<String> = (0..self.records).map(|i| format!("k{i}")).collect();
        let values: Vec<Vec<u8>> = (0..self.records).map(|i| vec![i as u8; self.value_len]).collect();
        let records: Vec<Record<'_>> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| Record { key: Some(k.as_bytes()), value: Some(v) })
            .collect();
        let producer = ProducerFields {
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
        };
        build(&records, 0, self.base_timestamp, producer)
    }
}

/// A valid batch of `records` records.
pub(crate) fn batch(records: usize) -> Bytes {
    BatchSpec { records, ..Default::default() }.encode()
}

/// A valid one-record batch whose timestamp is `ts`.
pub(crate) fn batch_at(ts: i64) -> Bytes {
    BatchSpec { base_timestamp: ts, ..Default::default() }.encode()
}

/// Concatenates batches as a Produce request's `records` field would.
pub(crate) fn concat(batches: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for b in batches {
        out.put_slice(b);
    }
    out.freeze()
}
