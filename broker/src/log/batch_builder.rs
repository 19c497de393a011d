//! Building Kafka RecordBatch v2 bytes, and reading back the one record of a control batch.
//!
//! The broker writes batches of its own in one place: Raft entries that are not client data
//! (blank entries, membership changes, controller commands) are stored as Kafka *control
//! batches* (attribute bit 5), so the partition log stays a valid Kafka log. Consumers skip
//! control batches (librdkafka ignores control types it does not know); offsets stay dense.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{BrokerError, Result};
use crate::log::batch::{get_varint, BatchHeader, BATCH_HEADER_LEN, CONTROL_ATTRIBUTE, CRC_START};

/// One record to put in a batch.
pub struct Record<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Producer fields of a batch; `NONE` for a non-idempotent batch.
#[derive(Clone, Copy)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    pub const NONE: ProducerFields =
        ProducerFields { producer_id: -1, producer_epoch: -1, base_sequence: -1 };
}

fn put_varint(out: &mut BytesMut, v: i64) {
    // Kafka varints are zig-zag encoded LEB128.
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    out.put_u8(z as u8);
}

fn put_bytes(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.put_slice(b);
        }
    }
}

/// Encodes a batch whose record i has timestamp `base_timestamp + i` and offset delta i.
pub fn build(
    records: &[Record<'_>],
    attributes: i16,
    base_timestamp: i64,
    producer: ProducerFields,
) -> Bytes {
    let mut body = BytesMut::new();
    for (i, rec) in records.iter().enumerate() {
        let mut r = BytesMut::new();
        r.put_i8(0); // record attributes
        put_varint(&mut r, i as i64); // timestamp delta
        put_varint(&mut r, i as i64); // offset delta
        put_bytes(&mut r, rec.key);
        put_bytes(&mut r, rec.value);
        put_varint(&mut r, 0); // headers
        put_varint(&mut body, r.len() as i64);
        body.put_slice(&r);
    }
    let n = records.len().max(1) as i32;
    let mut b = BytesMut::with_capacity(BATCH_HEADER_LEN + body.len());
    b.put_i64(0); // base offset: assigned at append
    b.put_i32(0); // batch_length, patched below
    b.put_i32(-1); // partition leader epoch: assigned at append
    b.put_i8(2); // magic
    b.put_u32(0); // crc, patched below
    b.put_i16(attributes);
    b.put_i32(n - 1); // last offset delta
    b.put_i64(base_timestamp);
    b.put_i64(base_timestamp + i64::from(n) - 1);
    b.put_i64(producer.producer_id);
    b.put_i16(producer.producer_epoch);
    b.put_i32(producer.base_sequence);
    b.put_i32(records.len() as i32);
    b.put_slice(&body);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b.freeze()
}

/// A control batch with one record: key = (version 0, `control_type`), value = `value`.
pub fn control_batch(control_type: i16, value: &[u8], timestamp_ms: i64) -> Bytes {
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&control_type.to_be_bytes());
    build(
        &[Record { key: Some(&key), value: Some(value) }],
        CONTROL_ATTRIBUTE,
        timestamp_ms,
        ProducerFields::NONE,
    )
}

/// The (type, value) of a control batch's first record; `Ok(None)` for a data batch.
pub fn read_control(batch: &[u8]) -> Result<Option<(i16, Bytes)>> {
    let h = BatchHeader::parse(batch)?;
    if h.attributes & CONTROL_ATTRIBUTE == 0 {
        return Ok(None);
    }
    let bad = |what: &str| BrokerError::Invalid(format!("control batch: {what}"));
    let mut r = &batch[BATCH_HEADER_LEN..];
    let _len = get_varint(&mut r).ok_or_else(|| bad("record length"))?;
    if !r.has_remaining() {
        return Err(bad("record attributes"));
    }
    r.advance(1);
    get_varint(&mut r).ok_or_else(|| bad("timestamp delta"))?;
    get_varint(&mut r).ok_or_else(|| bad("offset delta"))?;
    let key_len = get_varint(&mut r).ok_or_else(|| bad("key length"))?;
    if key_len != 4 || r.remaining() < 4 {
        return Err(bad(&format!("key of {key_len} bytes, expected 4")));
    }
    let control_type = i16::from_be_bytes([r[2], r[3]]);
    r.advance(4);
    let value_len = get_varint(&mut r).ok_or_else(|| bad("value length"))?;
    if value_len < 0 {
        return Ok(Some((control_type, Bytes::new())));
    }
    if r.remaining() < value_len as usize {
        return Err(bad(&format!("value of {value_len} bytes runs past the batch")));
    }
    Ok(Some((control_type, Bytes::copy_from_slice(&r[..value_len as usize]))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::split_batches;

    #[test]
    fn a_control_batch_is_a_valid_batch_and_reads_back() {
        let b = control_batch(0x7e01, b"{\"members\":[1,2,3]}", 5);
        assert_eq!(split_batches(&b).unwrap().len(), 1, "valid length and CRC");
        let (t, v) = read_control(&b).unwrap().unwrap();
        assert_eq!((t, v.as_ref()), (0x7e01, &b"{\"members\":[1,2,3]}"[..]));
    }

    #[test]
    fn a_data_batch_is_not_a_control_batch() {
        let b = build(&[Record { key: None, value: Some(b"x") }], 0, 1, ProducerFields::NONE);
        assert!(read_control(&b).unwrap().is_none());
    }

    #[test]
    fn varints_round_trip_including_negatives() {
        for v in [0i64, 1, -1, 63, -64, 64, 300, -300, i64::MAX, i64::MIN] {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            let mut s = &b[..];
            assert_eq!(get_varint(&mut s), Some(v));
        }
    }
}
