//! The stored entry format: one entry per Kafka record batch.
//!
//! ```text
//! byte  size  field (all big-endian)
//! 0     4     entry_len   u32  bytes after this field: 24 + batch length
//! 4     4     crc         u32  CRC-32C (Castagnoli) of bytes 8..4+entry_len
//! 8     8     term        u64  Raft term = Kafka partition leader epoch of the append
//! 16    8     base_offset i64  first offset of the batch (also written inside the batch)
//! 24    4     offset_count i32 offsets the batch occupies (last_offset_delta + 1), or 0 for
//!                             Raft's own entries, control batches clients never see
//! 28    ..    batch       the RecordBatch v2 exactly as sent, base offset + leader epoch rewritten
//! ```
//!
//! Why our own header when the batch has a CRC: Kafka's CRC skips the base offset and leader
//! epoch, which we rewrite, and it cannot tell a torn write of the *length* from a valid one.
//! Our CRC covers term, offset and the whole batch, so a flipped bit anywhere is caught; the
//! explicit base offset lets recovery check continuity without parsing the batch; the term is
//! what the Raft log store needs per entry.

use crate::log::batch::{BatchHeader, BATCH_HEADER_LEN, BATCH_LENGTH_OFFSET, CONTROL_ATTRIBUTE};

/// Bytes before the batch.
pub(crate) const ENTRY_HEADER_LEN: usize = 28;
/// `entry_len` of the smallest possible entry (a batch with an empty records section).
pub(crate) const MIN_ENTRY_LEN: u32 = (ENTRY_HEADER_LEN - 4 + BATCH_HEADER_LEN) as u32;
/// Anything longer is a garbage length, not a batch: Kafka caps batches far below this, and a
/// bound keeps recovery from allocating gigabytes because of one flipped bit.
pub(crate) const MAX_ENTRY_LEN: u32 = 1 << 30;

/// Appends one encoded entry to `out`, rewriting the batch's base offset (bytes 0..8) and
/// partition leader epoch (bytes 12..16) in the stored copy. One copy of the batch, no more:
/// this is the produce hot path. `batch` must have passed `BatchHeader::parse`.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    term: u64,
    leader_epoch: i32,
    base_offset: i64,
    offset_count: i32,
    batch: &[u8],
) {
    let start = out.len();
    let entry_len = (ENTRY_HEADER_LEN - 4 + batch.len()) as u32;
    out.extend_from_slice(&entry_len.to_be_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&term.to_be_bytes());
    out.extend_from_slice(&base_offset.to_be_bytes());
    out.extend_from_slice(&offset_count.to_be_bytes());
    let b = out.len();
    out.extend_from_slice(batch);
    if batch.len() >= 16 {
        out[b..b + 8].copy_from_slice(&base_offset.to_be_bytes());
        out[b + 12..b + 16].copy_from_slice(&leader_epoch.to_be_bytes());
    }
    let crc = crc32c::crc32c(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// Fields of a verified entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryMeta {
    pub term: u64,
    pub base_offset: i64,
    pub offset_count: i32,
    pub max_timestamp: i64,
}

/// Why a length field cannot start an entry, or None if it can.
pub(crate) fn check_len(entry_len: u32) -> Option<String> {
    if entry_len < MIN_ENTRY_LEN {
        Some(format!("garbage entry length {entry_len} (smallest possible entry is {MIN_ENTRY_LEN})"))
    } else if entry_len > MAX_ENTRY_LEN {
        Some(format!("garbage entry length {entry_len} (largest accepted is {MAX_ENTRY_LEN})"))
    } else {
        None
    }
}

/// Verifies `body` (the `entry_len` bytes after the length field) and returns its fields.
/// `Err` is the reason the entry is corrupt, in words for the recovery report.
pub(crate) fn verify(body: &[u8], expected_offset: i64) -> Result<EntryMeta, String> {
    if body.len() < MIN_ENTRY_LEN as usize {
        return Err(format!(
            "entry body of {} bytes is shorter than the minimum {MIN_ENTRY_LEN}",
            body.len()
        ));
    }
    let stored = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    let computed = crc32c::crc32c(&body[4..]);
    if stored != computed {
        return Err(format!("entry CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"));
    }
    let mut term = [0u8; 8];
    term.copy_from_slice(&body[4..12]);
    let mut base = [0u8; 8];
    base.copy_from_slice(&body[12..20]);
    let meta_base = i64::from_be_bytes(base);
    let offset_count = i32::from_be_bytes([body[20], body[21], body[22], body[23]]);
    // A valid CRC with wrong contents means a bug or a file from elsewhere; either way the
    // log cannot be trusted past here.
    if meta_base != expected_offset {
        return Err(format!("entry base offset {meta_base} but the log expects {expected_offset} here"));
    }
    let batch = &body[ENTRY_HEADER_LEN - 4..];
    let h = BatchHeader::parse(batch).map_err(|e| format!("stored batch: {e}"))?;
    if h.base_offset != meta_base {
        return Err(format!(
            "stored batch base offset {} differs from entry base offset {meta_base}",
            h.base_offset
        ));
    }
    if h.batch_length as i64 + BATCH_LENGTH_OFFSET as i64 != batch.len() as i64 {
        return Err(format!(
            "stored batch_length {} does not match the {} stored bytes",
            h.batch_length,
            batch.len()
        ));
    }
    // A Raft entry of the broker's own (a control batch) may occupy no offset (decision 46).
    let offsetless = offset_count == 0 && h.attributes & CONTROL_ATTRIBUTE != 0;
    if h.record_count_i64() != i64::from(offset_count) && !offsetless {
        return Err(format!(
            "entry offset count {offset_count} differs from the batch's {}",
            h.record_count_i64()
        ));
    }
    Ok(EntryMeta {
        term: u64::from_be_bytes(term),
        base_offset: meta_base,
        offset_count,
        max_timestamp: h.max_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::with_offset_and_epoch;
    use crate::log::test_batches::batch;

    fn entry(base: i64) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, 4, 4, base, 3, &batch(3));
        assert_eq!(&out[ENTRY_HEADER_LEN..], &with_offset_and_epoch(&batch(3), base, 4)[..]);
        out
    }

    #[test]
    fn encoded_entry_verifies_and_round_trips_its_fields() {
        let e = entry(10);
        let len = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
        assert_eq!(len as usize, e.len() - 4);
        assert!(check_len(len).is_none());
        let m = verify(&e[4..], 10).unwrap();
        assert_eq!((m.term, m.base_offset, m.offset_count, m.max_timestamp), (4, 10, 3, 1002));
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let e = entry(0);
        for i in 4..e.len() {
            let mut bad = e.clone();
            bad[i] ^= 0x01;
            assert!(verify(&bad[4..], 0).is_err(), "flip at byte {i} went unnoticed");
        }
    }

    #[test]
    fn wrong_offset_and_garbage_lengths_are_named() {
        let e = entry(5);
        assert!(verify(&e[4..], 6).unwrap_err().contains("expects 6"));
        assert!(check_len(0).unwrap().contains("garbage entry length 0"));
        assert!(check_len(u32::MAX).is_some());
        assert!(verify(&[0u8; 10], 0).is_err());
    }
}
