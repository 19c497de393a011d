//! Kafka RecordBatch v2 header view, splitting of Produce `records` bytes, and offset rewriting.
//!
//! Batches are stored verbatim as the client sent them (the client's CRC stays meaningful to
//! consumers), so this module reads the fixed 61-byte header and, for ListOffsets by time, only
//! the timestamp and offset deltas of uncompressed records.
//!
//! Header layout (big-endian), as in Kafka's `DefaultRecordBatch`:
//! ```text
//! 0  base_offset i64        | 8  batch_length i32      | 12 partition_leader_epoch i32
//! 16 magic i8               | 17 crc u32 (CRC-32C of bytes 21..end)
//! 21 attributes i16         | 23 last_offset_delta i32 | 27 base_timestamp i64
//! 35 max_timestamp i64      | 43 producer_id i64       | 51 producer_epoch i16
//! 53 base_sequence i32      | 57 record_count i32      | 61 records...
//! ```

use bytes::{Buf, Bytes, BytesMut};

use crate::error::{BrokerError, Result};

/// Size of the fixed v2 header; a batch with zero records is at least this long.
pub const BATCH_HEADER_LEN: usize = 61;
/// `batch_length` counts bytes after itself, i.e. everything but base_offset and batch_length.
pub const BATCH_LENGTH_OFFSET: usize = 12;
/// The CRC covers attributes..end; base offset, length, leader epoch and magic are outside it,
/// which is what lets the broker rewrite base offset and leader epoch without re-computing it.
pub const CRC_START: usize = 21;

/// Parsed fixed header of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

impl BatchHeader {
    /// Parses the fixed header. Needs at least 61 bytes and magic 2 (older message formats are
    /// not accepted: every supported client sends v2).
    pub fn parse(batch: &[u8]) -> Result<BatchHeader> {
        if batch.len() < BATCH_HEADER_LEN {
            return Err(BrokerError::Invalid(format!(
                "record batch is {} bytes, a v2 batch header needs at least {BATCH_HEADER_LEN}",
                batch.len()
            )));
        }
        let magic = batch[16] as i8;
        if magic != 2 {
            return Err(BrokerError::Invalid(format!(
                "record batch magic is {magic}, only v2 (magic 2) is supported"
            )));
        }
        let h = BatchHeader {
            base_offset: be_i64(batch, 0),
            batch_length: be_i32(batch, 8),
            partition_leader_epoch: be_i32(batch, 12),
            magic,
            crc: be_i32(batch, 17) as u32,
            attributes: be_i16(batch, 21),
            last_offset_delta: be_i32(batch, 23),
            base_timestamp: be_i64(batch, 27),
            max_timestamp: be_i64(batch, 35),
            producer_id: be_i64(batch, 43),
            producer_epoch: be_i16(batch, 51),
            base_sequence: be_i32(batch, 53),
            record_count: be_i32(batch, 57),
        };
        if h.last_offset_delta < 0 {
            // A negative delta would make offsets go backwards when we assign them.
            return Err(BrokerError::Invalid(format!(
                "record batch last_offset_delta is {}, must be >= 0",
                h.last_offset_delta
            )));
        }
        Ok(h)
    }

    /// Number of offsets the batch occupies (Kafka assigns by last_offset_delta, not by count,
    /// because compacted batches may have gaps).
    pub fn record_count_i64(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }
}

/// Attribute bits of the compression codec (0 = none).
const COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit: the broker set the timestamps (LogAppendTime); records carry no own times.
const LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit of a control batch (Kafka's `isControl`).
pub const CONTROL_ATTRIBUTE: i16 = 0x20;

/// Reads a Kafka varint (zig-zag encoded LEB128).
pub(crate) fn get_varint(buf: &mut &[u8]) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return None;
        }
        let b = buf.get_u8();
        z |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    None
}

/// The first record of a stored batch whose timestamp is at or after `ts_ms`, as
/// `(offset, timestamp)`, which is what ListOffsets by time answers. Control batches hold no
/// records a client sees. A compressed batch (we do not decompress) or one with broker-set
/// times answers at batch granularity: its first offset and its max timestamp, never later
/// than the record asked for. `None` if no record qualifies or the records do not parse.
pub fn first_record_at_or_after(batch: &[u8], ts_ms: i64) -> Option<(i64, i64)> {
    let h = BatchHeader::parse(batch).ok()?;
    if h.attributes & CONTROL_ATTRIBUTE != 0 || h.max_timestamp < ts_ms {
        return None;
    }
    if h.attributes & (COMPRESSION_MASK | LOG_APPEND_TIME) != 0 {
        return Some((h.base_offset, h.max_timestamp));
    }
    let mut r = &batch[BATCH_HEADER_LEN..];
    for _ in 0..h.record_count {
        let len = usize::try_from(get_varint(&mut r)?).ok()?;
        let mut record = r.get(..len)?;
        r = &r[len..];
        record.get(..1)?; // attributes
        record = &record[1..];
        let timestamp = h.base_timestamp.checked_add(get_varint(&mut record)?)?;
        let offset = h.base_offset.checked_add(get_varint(&mut record)?)?;
        if timestamp >= ts_ms {
            return Some((offset, timestamp));
        }
    }
    None
}

/// (offset, timestamp) of the batch's first record with its largest timestamp (ListOffsets'
/// MAX_TIMESTAMP). Control batches hold none; a compressed batch, or one stamped with
/// LogAppendTime, answers its first offset with the batch's largest timestamp.
pub fn record_with_max_timestamp(batch: &[u8]) -> Option<(i64, i64)> {
    let h = BatchHeader::parse(batch).ok()?;
    if h.attributes & CONTROL_ATTRIBUTE != 0 {
        return None;
    }
    first_record_at_or_after(batch, h.max_timestamp)
}

/// The index in the batch of each record with a null key, which a compacted topic refuses
/// (Kafka's INVALID_RECORD). A compressed batch is not looked into: none.
pub fn records_without_key(batch: &[u8]) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(h) = BatchHeader::parse(batch) else { return out };
    if h.attributes & (COMPRESSION_MASK | CONTROL_ATTRIBUTE) != 0 {
        return out;
    }
    let mut r = &batch[BATCH_HEADER_LEN..];
    for index in 0..h.record_count {
        let Some(len) = get_varint(&mut r).and_then(|l| usize::try_from(l).ok()) else { break };
        let Some(mut record) = r.get(..len) else { break };
        r = &r[len..];
        record = record.get(1..).unwrap_or_default(); // attributes
        let key_len = get_varint(&mut record) // timestamp delta
            .and_then(|_| get_varint(&mut record)) // offset delta
            .and_then(|_| get_varint(&mut record));
        if key_len == Some(-1) {
            out.push(index);
        }
    }
    out
}

/// Splits a Produce request's `records` bytes into individual v2 batches, checking each batch's
/// length field and its CRC-32C (over bytes 21..end, as Kafka does). Zero-copy: the returned
/// `Bytes` share `records`' buffer.
pub fn split_batches(records: &Bytes) -> Result<Vec<Bytes>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let bad = |index: usize, pos: usize, what: String| {
        BrokerError::Invalid(format!("record batch {index} (at byte {pos} of the records): {what}"))
    };
    while pos < records.len() {
        let index = out.len();
        let left = records.len() - pos;
        if left < BATCH_HEADER_LEN {
            return Err(bad(
                index,
                pos,
                format!(
                    "truncated batch: only {left} bytes left, a v2 batch header needs {BATCH_HEADER_LEN}"
                ),
            ));
        }
        let batch_length = be_i32(records, pos + 8);
        let min_len = (BATCH_HEADER_LEN - BATCH_LENGTH_OFFSET) as i32;
        if batch_length < min_len {
            return Err(bad(
                index,
                pos,
                format!("batch_length {batch_length} is below the {min_len}-byte minimum"),
            ));
        }
        let total = BATCH_LENGTH_OFFSET + batch_length as usize;
        if total > left {
            return Err(bad(
                index,
                pos,
                format!(
                    "truncated batch: batch_length {batch_length} needs {total} bytes but only {left} remain"
                ),
            ));
        }
        let batch = records.slice(pos..pos + total);
        let header = BatchHeader::parse(&batch).map_err(|e| match e {
            BrokerError::Invalid(m) => bad(index, pos, m),
            other => other,
        })?;
        let computed = crc32c::crc32c(&batch[CRC_START..]);
        if computed != header.crc {
            return Err(bad(
                index,
                pos,
                format!("CRC-32C mismatch: batch says {:#010x}, bytes give {computed:#010x}", header.crc),
            ));
        }
        out.push(batch);
        pos += total;
    }
    Ok(out)
}

/// Returns a copy of the batch with base offset (bytes 0..8) and partition leader epoch
/// (bytes 12..16) rewritten. The Kafka CRC does not cover them, so it stays valid. Callers pass
/// batches that passed [`BatchHeader::parse`]; a slice too short to hold those fields is
/// returned unchanged rather than panicking.
pub fn with_offset_and_epoch(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Bytes {
    let mut out = BytesMut::from(batch);
    if out.len() >= 16 {
        out[0..8].copy_from_slice(&base_offset.to_be_bytes());
        out[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::test_batches::{batch, concat, BatchSpec};

    #[test]
    fn header_parses_fields_written_by_the_encoder() {
        let b =
            BatchSpec { records: 3, base_timestamp: 1_000, producer_id: 7, ..Default::default() }.encode();
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!((h.magic, h.record_count, h.last_offset_delta), (2, 3, 2));
        assert_eq!(h.record_count_i64(), 3);
        assert_eq!((h.base_timestamp, h.max_timestamp, h.producer_id), (1_000, 1_002, 7));
        assert_eq!(h.batch_length as usize + 12, b.len());
    }

    #[test]
    fn split_returns_each_batch_of_a_concatenation() {
        let (a, b) = (batch(1), batch(4));
        let parts = split_batches(&concat(&[a.clone(), b.clone()])).unwrap();
        assert_eq!(parts, vec![a, b]);
        assert!(split_batches(&Bytes::new()).unwrap().is_empty());
    }

    #[test]
    fn split_rejects_a_bad_crc_naming_the_batch() {
        let mut second = batch(2).to_vec();
        let last = second.len() - 1;
        second[last] ^= 0xff;
        let err = split_batches(&concat(&[batch(1), Bytes::from(second)])).unwrap_err().to_string();
        assert!(err.contains("record batch 1") && err.contains("CRC-32C mismatch"), "{err}");
    }

    #[test]
    fn split_rejects_a_truncated_batch() {
        let whole = batch(3);
        let cut = whole.slice(0..whole.len() - 5);
        let err = split_batches(&cut).unwrap_err().to_string();
        assert!(err.contains("record batch 0") && err.contains("truncated batch"), "{err}");
        let err = split_batches(&whole.slice(0..30)).unwrap_err().to_string();
        assert!(err.contains("truncated batch: only 30 bytes left"), "{err}");
    }

    #[test]
    fn split_rejects_magic_other_than_2() {
        let mut b = batch(1).to_vec();
        b[16] = 1;
        let err = split_batches(&Bytes::from(b)).unwrap_err().to_string();
        assert!(err.contains("magic is 1") && err.contains("only v2"), "{err}");
    }

    #[test]
    fn parse_rejects_a_short_slice_with_its_length() {
        let err = BatchHeader::parse(&[0u8; 20]).unwrap_err().to_string();
        assert!(err.contains("20 bytes") && err.contains("61"), "{err}");
    }

    #[test]
    fn rewriting_offset_and_epoch_keeps_the_crc_valid() {
        let b = batch(2);
        let r = with_offset_and_epoch(&b, 1234, 9);
        let h = BatchHeader::parse(&r).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (1234, 9));
        assert_eq!(crc32c::crc32c(&r[CRC_START..]), h.crc);
        assert_eq!(split_batches(&r).unwrap().len(), 1);
        assert_eq!(&r[16..], &b[16..]);
    }
}
