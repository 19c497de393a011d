//! Test-only encoder of valid Kafka RecordBatch v2 bytes (varint records, CRC-32C), so tests of
//! every module can build batches exactly as a client would send them.

use bytes::{BufMut, Bytes, BytesMut};

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
        BatchSpec { records: 1, base_timestamp: 1000, producer_id: -1, producer_epoch: -1, base_sequence: -1, value_len: 8 }
    }
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

impl BatchSpec {
    pub fn encode(&self) -> Bytes {
        let mut records = BytesMut::new();
        for i in 0..self.records {
            let mut r = BytesMut::new();
            r.put_i8(0); // record attributes
            put_varint(&mut r, i as i64); // timestamp delta
            put_varint(&mut r, i as i64); // offset delta
            let key = format!("k{i}");
            put_varint(&mut r, key.len() as i64);
            r.put_slice(key.as_bytes());
            put_varint(&mut r, self.value_len as i64);
            r.put_bytes(i as u8, self.value_len);
            put_varint(&mut r, 0); // headers
            put_varint(&mut records, r.len() as i64);
            records.put_slice(&r);
        }
        let n = self.records.max(1) as i32;
        let mut b = BytesMut::new();
        b.put_i64(0); // base offset: the broker assigns it
        b.put_i32(0); // batch_length, patched below
        b.put_i32(-1); // partition leader epoch
        b.put_i8(2); // magic
        b.put_u32(0); // crc, patched below
        b.put_i16(0); // attributes
        b.put_i32(n - 1); // last offset delta
        b.put_i64(self.base_timestamp);
        b.put_i64(self.base_timestamp + i64::from(n) - 1);
        b.put_i64(self.producer_id);
        b.put_i16(self.producer_epoch);
        b.put_i32(self.base_sequence);
        b.put_i32(self.records as i32);
        b.put_slice(&records);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b.freeze()
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
