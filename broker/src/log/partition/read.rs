//! Reading a partition's log: whole batches by offset, the first record at a time, a batch's
//! term, every batch header. Reads plan under the append lock and do their I/O after releasing
//! it, so they never stall appends.

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

use super::{offsets_of, PartitionLog};
use crate::error::{BrokerError, Result};
use crate::log::batch::{self, BatchHeader, BATCH_HEADER_LEN};
use crate::log::lock;
use crate::log::segment::Segment;

/// One segment's share of a read: its file and the (position, length) of each batch.
type ReadRun = (Arc<File>, PathBuf, Vec<(u64, usize)>);

impl PartitionLog {
    /// Whole stored batches from the one containing `from_offset`, stopping before
    /// `upto_exclusive`, at most `max_bytes` except that the first batch is always whole.
    /// Entries that occupy no offset are Raft's own and are left out.
    pub fn read(&self, from_offset: i64, upto_exclusive: i64, max_bytes: usize) -> Result<Vec<Bytes>> {
        // Plan under the lock, read after releasing it: reads never stall appends.
        let mut runs: Vec<ReadRun> = Vec::new();
        {
            let inner = lock(&self.inner);
            let end = upto_exclusive.min(inner.log_end);
            let start = inner.segments.first().map_or(0, |s| s.base_offset);
            if from_offset < start {
                return Err(BrokerError::Invalid(format!(
                    "offset {from_offset} is below the log start {start}"
                )));
            }
            if from_offset >= end {
                return Ok(Vec::new());
            }
            let si = inner.segments.partition_point(|s| s.base_offset <= from_offset).saturating_sub(1);
            let mut total = 0usize;
            'segments: for seg in &inner.segments[si..] {
                let first = seg.index.partition_point(|e| e.next_offset <= from_offset);
                let mut ranges = Vec::new();
                for e in &seg.index[first..] {
                    if e.next_offset == e.base_offset {
                        continue; // Raft's own entry: no offset, never a client's (decision 46)
                    }
                    let (pos, len) = e.batch_range();
                    if e.base_offset >= end || (total > 0 && total + len > max_bytes) {
                        if !ranges.is_empty() {
                            runs.push((seg.file.clone(), seg.path.clone(), ranges));
                        }
                        break 'segments;
                    }
                    total += len;
                    ranges.push((pos, len));
                }
                if !ranges.is_empty() {
                    runs.push((seg.file.clone(), seg.path.clone(), ranges));
                }
            }
        }
        let mut out = Vec::new();
        for (file, path, ranges) in runs {
            // Entries of one segment are contiguous: one positioned read per segment.
            let (first_pos, _) = ranges[0];
            let (last_pos, last_len) = ranges[ranges.len() - 1];
            let data = Bytes::from(Segment::read_at(
                &file,
                &path,
                first_pos,
                (last_pos - first_pos) as usize + last_len,
            )?);
            for (pos, len) in ranges {
                let rel = (pos - first_pos) as usize;
                out.push(data.slice(rel..rel + len));
            }
        }
        Ok(out)
    }

    /// The first record at or after `ts_ms` below `upto_exclusive` (the high watermark), as
    /// `(offset, timestamp)`: Kafka's ListOffsets by time. The index's max timestamp per batch
    /// finds candidates without reading; only candidates are read and their records scanned.
    pub fn offset_for_timestamp(&self, ts_ms: i64, upto_exclusive: i64) -> Result<Option<(i64, i64)>> {
        let mut from = i64::MIN;
        loop {
            let candidate = {
                let inner = lock(&self.inner);
                from = from.max(offsets_of(&inner, self.ctx.policy).log_start_offset);
                inner
                    .segments
                    .iter()
                    .flat_map(|s| s.index.iter())
                    .find(|e| e.next_offset > from && e.max_timestamp >= ts_ms)
                    .map(|e| (e.base_offset, e.next_offset))
            };
            let Some((base, next)) = candidate.filter(|(base, _)| *base < upto_exclusive) else {
                return Ok(None);
            };
            for batch in self.read(base, next, 0)? {
                if let Some(found) = batch::first_record_at_or_after(&batch, ts_ms) {
                    // A batch straddling the log start: its records below the start are gone.
                    let found = (found.0.max(from), found.1);
                    return Ok((found.0 < upto_exclusive).then_some(found));
                }
            }
            from = next;
        }
    }

    /// (offset, timestamp) of the record with the largest timestamp below `upto_exclusive`, the
    /// first one on a tie (ListOffsets' MAX_TIMESTAMP, -3); None when there is no record.
    pub fn offset_of_max_timestamp(&self, upto_exclusive: i64) -> Result<Option<(i64, i64)>> {
        let (from, best) = {
            let inner = lock(&self.inner);
            let from = offsets_of(&inner, self.ctx.policy).log_start_offset;
            let best = (inner.segments.iter().flat_map(|s| s.index.iter()))
                .filter(|e| {
                    e.next_offset > from && e.base_offset < upto_exclusive && e.next_offset > e.base_offset
                })
                .fold(None, |best: Option<(i64, i64, i64)>, e| match best {
                    Some((_, _, ts)) if ts >= e.max_timestamp => best,
                    _ => Some((e.base_offset, e.next_offset, e.max_timestamp)),
                });
            (from, best)
        };
        let Some((base, next, _)) = best else { return Ok(None) };
        for batch in self.read(base, next, 0)? {
            if let Some(found) = batch::record_with_max_timestamp(&batch) {
                return Ok(Some((found.0.max(from), found.1)));
            }
        }
        Ok(None)
    }

    /// Raft term of the entry containing `offset`.
    pub fn term_of(&self, offset: i64) -> Option<u64> {
        let inner = lock(&self.inner);
        let si = inner.segments.partition_point(|s| s.base_offset <= offset).checked_sub(1)?;
        let seg = &inner.segments[si];
        seg.find(offset).map(|i| seg.index[i].term)
    }

    /// Calls `f` with every stored batch header, in order (how idempotent-producer state is
    /// rebuilt, at start-up and by each new leader). The whole log is read, header by header,
    /// without holding the log's lock; what is kept meanwhile is one position per entry. (It
    /// collected every header with a copy of its segment's path first, ~150 bytes per entry:
    /// tens of MB at each leader change of a long chaos soak, which the allocator kept.)
    pub fn for_each_batch_header(&self, f: &mut dyn FnMut(&BatchHeader)) -> Result<()> {
        let plan: Vec<(Arc<File>, PathBuf, Vec<u64>)> = {
            let inner = lock(&self.inner);
            inner
                .segments
                .iter()
                .map(|s| {
                    (s.file.clone(), s.path.clone(), s.index.iter().map(|e| e.batch_range().0).collect())
                })
                .collect()
        };
        for (file, path, positions) in plan {
            for pos in positions {
                let bytes = Segment::read_at(&file, &path, pos, BATCH_HEADER_LEN)?;
                let header = BatchHeader::parse(&bytes).map_err(|e| BrokerError::Corrupt {
                    file: path.clone(),
                    position: pos,
                    reason: e.to_string(),
                })?;
                f(&header);
            }
        }
        Ok(())
    }
}
