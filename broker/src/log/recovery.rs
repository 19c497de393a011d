//! Start-up recovery of one partition directory: rebuild the in-memory index by scanning every
//! segment, cut a torn tail, quarantine corruption.
//!
//! Torn tail vs corruption: a crash mid-append can only damage the *end* of the *last* segment,
//! so an incomplete entry there is expected and silently cut (with a warning). Anything else
//! — a complete entry with a bad CRC, a garbage length, a gap between segments — means the
//! disk or a bug changed data we once accepted; we keep a copy of every byte we drop.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};
use crate::log::durability::sync_dir;
use crate::log::entry::{check_len, verify};
use crate::log::now_ns;
use crate::log::power_cut_report::PowerCutReport;
use crate::log::segment::{parse_segment_file_name, IndexEntry, Segment};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct RecoveryReport {
    pub partitions: Vec<PartitionRecovery>,
    pub last_power_cut: Option<PowerCutReport>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct PartitionRecovery {
    pub topic: String,
    pub partition: i32,
    pub segments: usize,
    pub entries: u64,
    pub log_end_offset: i64,
    pub torn_tail_bytes: u64,
    pub corruption: Option<Corruption>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Corruption {
    pub file: PathBuf,
    /// Byte position of the first bad entry in `file`; the log now ends just before it.
    pub position: u64,
    pub reason: String,
    pub quarantined_to: PathBuf,
}

enum Stop {
    /// Incomplete entry running to EOF (or a zero-filled tail).
    Torn(u64),
    Corrupt(u64, String),
}

struct Scan {
    index: Vec<IndexEntry>,
    valid_len: u64,
    file_len: u64,
    stop: Option<Stop>,
}

/// Reads entries from the start of the file until EOF or the first bad one. Never panics on
/// any byte pattern: every length is bounds-checked before use.
fn scan_segment(path: &Path, first_offset: i64) -> Result<Scan> {
    let file = File::open(path).map_err(|e| BrokerError::io("open segment for recovery", path, e))?;
    let file_len = file.metadata().map_err(|e| BrokerError::io("stat segment", path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let read_err = |e| BrokerError::io("read segment for recovery", path, e);
    let (mut pos, mut next, mut index, mut body) = (0u64, first_offset, Vec::new(), Vec::new());
    let stop = loop {
        let left = file_len - pos;
        if left == 0 {
            break None;
        }
        if left < 4 {
            break Some(Stop::Torn(pos));
        }
        let mut len = [0u8; 4];
        r.read_exact(&mut len).map_err(read_err)?;
        let entry_len = u32::from_be_bytes(len);
        if let Some(reason) = check_len(entry_len) {
            // A crash can leave the file longer than its data (size updated, blocks not):
            // that reads as zeros to EOF and is a torn tail, not damage to accepted data.
            if entry_len == 0 && rest_is_zero(&mut r, left - 4).map_err(read_err)? {
                break Some(Stop::Torn(pos));
            }
            break Some(Stop::Corrupt(pos, reason));
        }
        if 4 + u64::from(entry_len) > left {
            break Some(Stop::Torn(pos));
        }
        body.resize(entry_len as usize, 0);
        r.read_exact(&mut body).map_err(read_err)?;
        match verify(&body, next) {
            Ok(m) => {
                let next_offset = m.base_offset + i64::from(m.offset_count);
                index.push(IndexEntry {
                    base_offset: m.base_offset,
                    next_offset,
                    position: pos,
                    len: entry_len + 4,
                    term: m.term,
                    max_timestamp: m.max_timestamp,
                });
                next = next_offset;
                pos += 4 + u64::from(entry_len);
            }
            Err(reason) => break Some(Stop::Corrupt(pos, reason)),
        }
    };
    Ok(Scan { index, valid_len: pos, file_len, stop })
}

fn rest_is_zero(r: &mut impl Read, mut left: u64) -> std::io::Result<bool> {
    let mut chunk = [0u8; 8192];
    while left > 0 {
        let n = chunk.len().min(left as usize);
        r.read_exact(&mut chunk[..n])?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        left -= n as u64;
    }
    Ok(true)
}

/// Copies `path` to `<name>.corrupt-<ns>` and fsyncs the copy, so truncating the original
/// loses nothing an operator might want back.
fn quarantine_copy(path: &Path, ns: u64) -> Result<PathBuf> {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(format!(".corrupt-{ns}"));
    let to = path.with_file_name(name);
    std::fs::copy(path, &to)
        .map_err(|e| BrokerError::io(format!("copy corrupt segment to {}", to.display()), path, e))?;
    File::open(&to)
        .and_then(|f| f.sync_all())
        .map_err(|e| BrokerError::io("fsync quarantine copy", &to, e))?;
    Ok(to)
}

fn truncate_file(path: &Path, len: u64) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| BrokerError::io("open segment to truncate", path, e))?;
    f.set_len(len).map_err(|e| BrokerError::io("truncate segment", path, e))?;
    f.sync_all().map_err(|e| BrokerError::io("fsync truncated segment", path, e))
}

/// Recovers `<dir>` (one partition). Creates the first segment if there is none.
pub(crate) fn recover_partition(
    dir: &Path,
    topic: &str,
    partition: i32,
) -> Result<(Vec<Segment>, PartitionRecovery)> {
    let files = segment_files(dir)?;
    let mut walk = Walk {
        topic,
        partition,
        ns: now_ns(),
        expected: None,
        torn_tail_bytes: 0,
        corruption: None,
        dir_changed: false,
    };
    let mut segments = Vec::new();
    let n = files.len();
    for (i, (base, path)) in files.into_iter().enumerate() {
        segments.extend(walk.segment(base, path, i + 1 == n)?);
    }
    if segments.is_empty() {
        segments.push(Segment::create(dir, walk.expected.unwrap_or(0))?);
        walk.dir_changed = true;
    }
    if walk.dir_changed {
        sync_dir(dir)?;
    }
    let entries = segments.iter().map(|s| s.index.len() as u64).sum();
    let log_end_offset = segments.last().map_or(0, |s| s.next_offset());
    let report = PartitionRecovery {
        topic: topic.to_string(),
        partition,
        segments: segments.len(),
        entries,
        log_end_offset,
        torn_tail_bytes: walk.torn_tail_bytes,
        corruption: walk.corruption,
    };
    Ok((segments, report))
}

/// The partition's segment files, by base offset.
fn segment_files(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let mut files: Vec<(i64, PathBuf)> = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(|e| BrokerError::io("list partition dir", dir, e))? {
        let ent = ent.map_err(|e| BrokerError::io("list partition dir", dir, e))?;
        if let Some(base) = ent.file_name().to_str().and_then(parse_segment_file_name) {
            files.push((base, ent.path()));
        }
    }
    files.sort();
    Ok(files)
}

/// One partition's recovery, segment file by segment file in offset order.
struct Walk<'a> {
    topic: &'a str,
    partition: i32,
    /// Names this recovery's quarantine copies.
    ns: u64,
    /// Where the next segment must start; `None` before the first.
    expected: Option<i64>,
    torn_tail_bytes: u64,
    corruption: Option<Corruption>,
    /// A file was removed, created or truncated: the directory needs an fsync.
    dir_changed: bool,
}

impl Walk<'_> {
    /// The next segment file (`last`: the newest); the segment to keep, if any.
    fn segment(&mut self, base: i64, path: PathBuf, last: bool) -> Result<Option<Segment>> {
        if self.corruption.is_some() {
            self.drop_unreachable(base, &path)?;
            return Ok(None);
        }
        let exp = self.expected.unwrap_or(base);
        if base != exp {
            self.drop_misplaced(base, exp, path)?;
            return Ok(None);
        }
        self.check(base, exp, path, last).map(Some)
    }

    /// Everything after a corrupt entry is unreachable (offsets must be contiguous).
    fn drop_unreachable(&mut self, base: i64, path: &Path) -> Result<()> {
        let (topic, partition) = (self.topic, self.partition);
        let to = quarantine_copy(path, self.ns)?;
        std::fs::remove_file(path)
            .map_err(|e| BrokerError::io("remove segment after corruption", path, e))?;
        tracing::error!(topic, partition, offset = base, file = %path.display(), quarantined_to = %to.display(),
            "segment after a corrupt entry removed (copy kept)");
        self.dir_changed = true;
        Ok(())
    }

    /// A segment that does not start where the previous one ended (`exp`).
    fn drop_misplaced(&mut self, base: i64, exp: i64, path: PathBuf) -> Result<()> {
        let (topic, partition) = (self.topic, self.partition);
        self.dir_changed = true;
        let len = std::fs::metadata(&path).map_err(|e| BrokerError::io("stat segment", &path, e))?.len();
        if len == 0 {
            // An empty file past the end is a roll whose data never reached disk.
            std::fs::remove_file(&path)
                .map_err(|e| BrokerError::io("remove empty stale segment", &path, e))?;
            tracing::warn!(
                topic,
                partition,
                offset = base,
                file = %path.display(),
                "empty segment past the log end removed"
            );
            return Ok(());
        }
        // Offsets must be contiguous: the whole file is unusable, keep only its copy.
        let reason = format!("segment starts at offset {base} but the previous one ends at {exp}");
        let quarantined_to = quarantine_copy(&path, self.ns)?;
        std::fs::remove_file(&path).map_err(|e| BrokerError::io("remove misplaced segment", &path, e))?;
        tracing::error!(topic, partition, offset = exp, file = %path.display(), position = 0u64, reason = %reason,
            quarantined_to = %quarantined_to.display(), "corrupt log: misplaced segment removed, copy kept");
        self.corruption = Some(Corruption { file: path, position: 0, reason, quarantined_to });
        Ok(())
    }

    /// Scans a segment in its place (its first offset `exp`): a torn tail of the last one is cut,
    /// a bad entry anywhere else truncates the log there (copy kept).
    fn check(&mut self, base: i64, exp: i64, path: PathBuf, last: bool) -> Result<Segment> {
        let (topic, partition) = (self.topic, self.partition);
        let scan = scan_segment(&path, exp)?;
        let end = scan.index.last().map_or(exp, |e| e.next_offset);
        let first_bad = match &scan.stop {
            None => None,
            Some(Stop::Torn(p)) if last => {
                self.torn_tail_bytes = scan.file_len - p;
                truncate_file(&path, *p)?;
                tracing::warn!(topic, partition, offset = end, file = %path.display(), position = p,
                    bytes = self.torn_tail_bytes, "torn tail cut");
                None
            }
            Some(Stop::Torn(p)) => {
                Some((*p, "incomplete entry at the end of a segment that is not the last".to_string()))
            }
            Some(Stop::Corrupt(p, reason)) => Some((*p, reason.clone())),
        };
        if let Some((position, reason)) = first_bad {
            let quarantined_to = quarantine_copy(&path, self.ns)?;
            truncate_file(&path, position)?;
            tracing::error!(
                topic,
                partition,
                offset = end,
                file = %path.display(),
                position,
                reason = %reason,
                quarantined_to = %quarantined_to.display(),
                "corrupt log entry: log truncated there, segment copy kept"
            );
            self.corruption = Some(Corruption { file: path.clone(), position, reason, quarantined_to });
            self.dir_changed = true;
        }
        self.expected = Some(end);
        Segment::open(path, base, scan.valid_len, scan.index)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::FsyncPolicy;
    use crate::log::test_batches::batch;
    use crate::log::LogStore;
    use std::path::{Path, PathBuf};

    /// Writes `n` batches of 2 records to topic "r" partition 0, closes, returns segment paths.
    fn write_log(dir: &Path, n: usize, segment_bytes: u64) -> Vec<PathBuf> {
        let (s, _) = LogStore::open(dir, FsyncPolicy::Never, segment_bytes).unwrap();
        let p = s.create_partition("r", 0).unwrap();
        for _ in 0..n {
            p.append(&[batch(2)], 1).unwrap();
        }
        s.close().unwrap();
        let mut segs: Vec<PathBuf> =
            std::fs::read_dir(dir.join("partitions/r-0")).unwrap().map(|e| e.unwrap().path()).collect();
        segs.sort();
        segs
    }

    fn entry_len() -> u64 {
        (super::super::entry::ENTRY_HEADER_LEN + batch(2).len()) as u64
    }

    #[test]
    fn torn_tail_is_cut_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let segs = write_log(dir.path(), 3, 1 << 20);
        let len = std::fs::metadata(&segs[0]).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&segs[0]).unwrap().set_len(len - 5).unwrap();
        let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap();
        let r = &rep.partitions[0];
        assert_eq!((r.entries, r.log_end_offset, r.torn_tail_bytes), (2, 4, entry_len() - 5));
        assert!(r.corruption.is_none());
        assert_eq!(std::fs::metadata(&segs[0]).unwrap().len(), 2 * entry_len());
        let p = s.partition("r", 0).unwrap();
        assert_eq!(p.read(0, i64::MAX, usize::MAX).unwrap().len(), 2);
        assert_eq!(p.append(&[batch(1)], 1).unwrap().base_offset, 4);
    }

    #[test]
    fn zero_filled_tail_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let segs = write_log(dir.path(), 2, 1 << 20);
        let len = std::fs::metadata(&segs[0]).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&segs[0]).unwrap().set_len(len + 4096).unwrap();
        let (_s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap();
        assert_eq!((rep.partitions[0].entries, rep.partitions[0].torn_tail_bytes), (2, 4096));
        assert!(rep.partitions[0].corruption.is_none());
    }

    #[test]
    fn corrupt_middle_entry_is_reported_quarantined_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let segs = write_log(dir.path(), 3, 1 << 20);
        let original = std::fs::read(&segs[0]).unwrap();
        let mut bad = original.clone();
        bad[entry_len() as usize + 40] ^= 0x10;
        std::fs::write(&segs[0], &bad).unwrap();
        let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap();
        let r = &rep.partitions[0];
        let c = r.corruption.as_ref().expect("corruption reported");
        assert_eq!((c.file.as_path(), c.position), (segs[0].as_path(), entry_len()));
        assert!(c.reason.contains("CRC mismatch"), "{}", c.reason);
        assert_eq!(std::fs::read(&c.quarantined_to).unwrap(), bad, "the quarantine copy keeps every byte");
        assert!(c.quarantined_to.file_name().unwrap().to_string_lossy().contains(".log.corrupt-"));
        assert_eq!((r.entries, r.log_end_offset), (1, 2));
        let p = s.partition("r", 0).unwrap();
        let got = p.read(0, i64::MAX, usize::MAX).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0][..], &original[super::super::entry::ENTRY_HEADER_LEN..entry_len() as usize]);
    }

    #[test]
    fn corruption_drops_later_segments_but_keeps_copies() {
        let dir = tempfile::tempdir().unwrap();
        let segs = write_log(dir.path(), 3, 1); // one entry per segment
        assert_eq!(segs.len(), 3);
        let mut bytes = std::fs::read(&segs[1]).unwrap();
        bytes[0..4].copy_from_slice(&7u32.to_be_bytes()); // garbage length
        std::fs::write(&segs[1], &bytes).unwrap();
        let (_s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 1).unwrap();
        let r = &rep.partitions[0];
        let c = r.corruption.as_ref().unwrap();
        assert_eq!((c.file.as_path(), c.position), (segs[1].as_path(), 0));
        assert!(c.reason.contains("garbage entry length 7"), "{}", c.reason);
        assert_eq!((r.segments, r.log_end_offset), (2, 2));
        assert!(!segs[2].exists());
        let names: Vec<String> = std::fs::read_dir(dir.path().join("partitions/r-0"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.iter().filter(|n| n.contains(".corrupt-")).count(), 2, "{names:?}");
    }

    #[test]
    fn no_byte_pattern_makes_recovery_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..40u64 {
            let dir = tempfile::tempdir().unwrap();
            let segs = write_log(dir.path(), 2, 1 << 20);
            let mut bytes = std::fs::read(&segs[0]).unwrap();
            for _ in 0..=(round % 5) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % bytes.len();
                bytes[i] = (x >> 32) as u8;
            }
            if round % 3 == 0 {
                bytes.truncate((x as usize >> 8) % bytes.len());
            }
            std::fs::write(&segs[0], &bytes).unwrap();
            let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 1 << 20).unwrap();
            let end = rep.partitions[0].log_end_offset;
            assert!(end <= 4);
            assert_eq!(
                s.partition("r", 0).unwrap().read(0, i64::MAX, usize::MAX).unwrap().len() as i64,
                end / 2
            );
        }
    }

    /// Seeded damage at any offset: a bit flipped or the file cut short in any segment. Recovery
    /// never panics, and what it keeps is a prefix of what was written, byte for byte: an
    /// acknowledged record is either there unchanged or reported lost, never silently altered.
    #[test]
    fn any_bit_flip_or_truncation_keeps_an_unchanged_prefix() {
        const CASES: u64 = 300;
        let mut rng = 0x5E_ED0F_D15Cu64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for case in 0..CASES {
            let dir = tempfile::tempdir().unwrap();
            let segs = write_log(dir.path(), 6, 2 * entry_len()); // two entries per segment
            let original = {
                let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 2 * entry_len()).unwrap();
                let got = s.partition("r", 0).unwrap().read(0, i64::MAX, usize::MAX).unwrap();
                s.close().unwrap();
                got
            };
            let seg = &segs[(next() % segs.len() as u64) as usize];
            let mut bytes = std::fs::read(seg).unwrap();
            let at = (next() % bytes.len() as u64) as usize;
            let damage = if next() % 2 == 0 {
                bytes[at] ^= 1 << (next() % 8);
                format!("bit flip at {at} of {}", seg.display())
            } else {
                bytes.truncate(at);
                format!("cut to {at} bytes: {}", seg.display())
            };
            std::fs::write(seg, &bytes).unwrap();
            match LogStore::open(dir.path(), FsyncPolicy::Never, 2 * entry_len()) {
                Ok((s, _)) => {
                    let kept = s.partition("r", 0).unwrap().read(0, i64::MAX, usize::MAX).unwrap();
                    assert!(kept.len() <= original.len(), "case {case}, {damage}: more entries than written");
                    for (i, (k, o)) in kept.iter().zip(&original).enumerate() {
                        assert_eq!(k, o, "case {case}, {damage}: entry {i} changed silently");
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("r-0") || msg.contains(".log"),
                        "case {case}, {damage}: unclear error {msg}"
                    );
                }
            }
        }
    }
}
