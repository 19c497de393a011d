//! One segment file `<base_offset:020>.log` and its in-memory index.
//!
//! One descriptor per segment, shared: positioned reads, positioned appends at the known length
//! (the appender holds the partition lock), fsync (by the flusher, without the partition lock)
//! and truncation. One descriptor, not a second O_APPEND one, because a node hosting 10,000
//! partitions otherwise ran out of descriptors at the usual 20,000 limit.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{BrokerError, Result};
use crate::log::entry::ENTRY_HEADER_LEN;

/// Where one stored entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub base_offset: i64,
    /// Exclusive: base_offset + offset count.
    pub next_offset: i64,
    pub position: u64,
    /// Whole entry, header included.
    pub len: u32,
    pub term: u64,
    pub max_timestamp: i64,
}

impl IndexEntry {
    /// File range of the Kafka batch (entry minus our header).
    pub fn batch_range(&self) -> (u64, usize) {
        (self.position + ENTRY_HEADER_LEN as u64, self.len as usize - ENTRY_HEADER_LEN)
    }
}

pub(crate) fn segment_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// `Some(base)` for a name produced by [`segment_file_name`]; quarantine copies and temp files
/// do not match, so recovery never mistakes them for live segments.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub base_offset: i64,
    pub path: PathBuf,
    pub file: Arc<File>,
    /// Bytes written (all complete entries).
    pub len: u64,
    /// Length the file had when its last completed fsync began; what survives a power cut.
    pub synced_len: u64,
    pub index: Vec<IndexEntry>,
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new().read(true).write(true).open(path).map_err(|e| BrokerError::io("open segment", path, e))
}

impl Segment {
    /// Creates an empty segment file (fails if it exists: a name collision means two owners).
    pub fn create(dir: &Path, base_offset: i64) -> Result<Segment> {
        let path = dir.join(segment_file_name(base_offset));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| BrokerError::io("create segment", &path, e))?;
        let file = Arc::new(open_rw(&path)?);
        Ok(Segment { base_offset, path, file, len: 0, synced_len: 0, index: Vec::new() })
    }

    /// Wraps a recovered file of `len` valid bytes. Everything that survived recovery is on
    /// disk as far as we can know, so it counts as synced.
    pub fn open(path: PathBuf, base_offset: i64, len: u64, index: Vec<IndexEntry>) -> Result<Segment> {
        let file = Arc::new(open_rw(&path)?);
        Ok(Segment { base_offset, path, file, len, synced_len: len, index })
    }

    pub fn next_offset(&self) -> i64 {
        self.index.last().map_or(self.base_offset, |e| e.next_offset)
    }

    /// Writes encoded entries in one write call; on failure the file is cut back so no partial
    /// entry is left for later appends to follow.
    pub fn append(&mut self, buf: &[u8], entries: Vec<IndexEntry>) -> Result<()> {
        if let Err(e) = self.file.write_all_at(buf, self.len) {
            let _ = self.file.set_len(self.len);
            return Err(BrokerError::io("append to segment", &self.path, e));
        }
        self.len += buf.len() as u64;
        self.index.extend(entries);
        Ok(())
    }

    /// Index of the entry containing `offset`, if this segment has it.
    pub fn find(&self, offset: i64) -> Option<usize> {
        let i = self.index.partition_point(|e| e.next_offset <= offset);
        (i < self.index.len() && self.index[i].base_offset <= offset).then_some(i)
    }

    /// Drops entries from index `i` on, in memory and on disk.
    pub fn truncate_entries(&mut self, i: usize) -> Result<()> {
        let new_len = self.index.get(i).map_or(self.len, |e| e.position);
        self.truncate_len(new_len)
    }

    /// Cuts the file to `new_len` (an entry boundary) and forgets the entries past it.
    pub fn truncate_len(&mut self, new_len: u64) -> Result<()> {
        self.file.set_len(new_len).map_err(|e| BrokerError::io("truncate segment", &self.path, e))?;
        self.len = new_len;
        self.synced_len = self.synced_len.min(new_len);
        self.index.retain(|e| e.position + u64::from(e.len) <= new_len);
        Ok(())
    }

    /// Reads `len` bytes at `pos` with a positioned read (no cursor shared with the appender).
    pub fn read_at(file: &File, path: &Path, pos: u64, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, pos)
            .map_err(|e| BrokerError::io(format!("read {len} bytes at byte {pos} of segment"), path, e))?;
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base: i64, pos: u64, len: u32) -> IndexEntry {
        IndexEntry { base_offset: base, next_offset: base + 2, position: pos, len, term: 1, max_timestamp: 0 }
    }

    #[test]
    fn names_round_trip_and_foreign_names_are_ignored() {
        assert_eq!(segment_file_name(42), "00000000000000000042.log");
        assert_eq!(parse_segment_file_name(&segment_file_name(42)), Some(42));
        assert_eq!(parse_segment_file_name("00000000000000000042.log.corrupt-1"), None);
        assert_eq!(parse_segment_file_name("42.log"), None);
    }

    #[test]
    fn append_find_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Segment::create(dir.path(), 10).unwrap();
        assert!(Segment::create(dir.path(), 10).is_err());
        s.append(&[1u8; 100], vec![entry(10, 0, 40), entry(12, 40, 60)]).unwrap();
        assert_eq!((s.len, s.next_offset()), (100, 14));
        assert_eq!((s.find(10), s.find(13), s.find(14), s.find(9)), (Some(0), Some(1), None, None));
        s.synced_len = 100;
        s.truncate_entries(1).unwrap();
        assert_eq!((s.len, s.synced_len, s.next_offset()), (40, 40, 12));
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), 40);
        let err = Segment::read_at(&s.file, &s.path, 30, 20).unwrap_err().to_string();
        assert!(err.contains("at byte 30") && err.contains("00000000000000000010.log"), "{err}");
    }
}
