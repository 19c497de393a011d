//! The partition log seen as a Raft log: entry *i* of the log is Raft index *i*.
//!
//! Every stored entry is one Kafka batch, so a Raft index maps to a position in the entry list
//! and a term is stored per entry. Offsets are derived from entry order and batch sizes, hence
//! identical on every replica that holds the same entries; Raft's own entries (blank,
//! membership) occupy no offset, so several entries may share a base offset (decision 46) and
//! whatever Raft asks of the log goes by index.

use bytes::Bytes;

use crate::error::{BrokerError, Result};
use crate::log::batch::{BatchHeader, CONTROL_ATTRIBUTE};
use crate::log::lock;
use crate::log::partition::{entry_count, entry_position, AppendOutcome, PartitionLog};
use crate::log::segment::{IndexEntry, Segment};

impl PartitionLog {
    /// Number of entries; the next Raft index to append.
    pub fn entry_count(&self) -> u64 {
        entry_count(&lock(&self.inner))
    }

    /// Entries known to be fsynced: the Raft index of the first that may not be.
    pub fn flushed_entries(&self) -> u64 {
        lock(&self.inner).flushed_entries
    }

    /// Whether this log was written by a broker whose Raft entries took Kafka offsets (before
    /// decision 46): its first entry, a group's first membership, is a control batch occupying
    /// one. Such a log cannot be continued: a replica catching up from it would number the
    /// records after each Raft entry differently from its peers.
    pub fn raft_entries_take_offsets(&self) -> Result<bool> {
        match self.entry_offsets(0) {
            Some((base, next)) if next > base => {}
            _ => return Ok(false),
        }
        let first = self.entries_by_index(0, 1)?;
        Ok(first.first().is_some_and(|(_, batch)| {
            BatchHeader::parse(batch).is_ok_and(|h| h.attributes & CONTROL_ATTRIBUTE != 0)
        }))
    }

    /// Term of the last entry, if any.
    pub fn last_entry_term(&self) -> Option<u64> {
        let inner = lock(&self.inner);
        inner.segments.iter().rev().find_map(|s| s.index.last()).map(|e| e.term)
    }

    /// Terms of the entries with Raft index in `[from, to)`, from the in-memory index (no I/O).
    pub fn entry_terms(&self, from: u64, to: u64) -> Vec<u64> {
        self.index_tail(from, to).into_iter().map(|(_, term, _)| term).collect()
    }

    /// (index, term, next Kafka offset) of the entries with Raft index in `[from, to)`, from the
    /// in-memory index.
    pub fn index_tail(&self, from: u64, to: u64) -> Vec<(u64, u64, i64)> {
        let inner = lock(&self.inner);
        let mut out = Vec::new();
        let mut first = 0u64;
        for seg in &inner.segments {
            let n = seg.index.len() as u64;
            let (lo, hi) = (from.max(first), to.min(first + n));
            out.extend((lo..hi).map(|i| {
                let e = &seg.index[(i - first) as usize];
                (i, e.term, e.next_offset)
            }));
            first += n;
        }
        out
    }

    /// Index entry at Raft index `index`.
    fn locate(&self, index: u64) -> Option<IndexEntry> {
        let inner = lock(&self.inner);
        entry_position(&inner, index).map(|(si, ei)| inner.segments[si].index[ei])
    }

    /// Kafka's end of leader epoch `epoch` in this log (KIP-101/320, what OffsetForLeaderEpoch
    /// answers): the base offset of the first entry of a later term, or the log end when none is
    /// later; with the largest term at or below `epoch` the log holds (None: none is). Terms
    /// never decrease along a log, so the first later entry is found by bisection.
    pub fn epoch_end(&self, epoch: u64) -> (Option<u64>, i64) {
        let count = self.entry_count();
        let term_at = |i: u64| self.index_tail(i, i + 1).first().map_or(0, |e| e.1);
        let (mut lo, mut hi) = (0, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if term_at(mid) > epoch {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        let end = match self.entry_offsets(lo) {
            Some((base, _)) if lo < count => base,
            _ => self.offsets().log_end_offset,
        };
        (lo.checked_sub(1).map(term_at), end)
    }

    /// Kafka offsets `[base, next)` of the entry at Raft index `index`.
    pub fn entry_offsets(&self, index: u64) -> Option<(i64, i64)> {
        self.locate(index).map(|e| (e.base_offset, e.next_offset))
    }

    /// (term, stored batch) of entries with Raft index in `[from, to)`.
    /// Entries not applied yet are usually still in memory (recent.rs); the rest are read from
    /// their segment files after the lock is released.
    pub fn entries_by_index(&self, from: u64, to: u64) -> Result<Vec<(u64, Bytes)>> {
        let plan: Vec<(u64, Stored)> = {
            let inner = lock(&self.inner);
            let mut out = Vec::new();
            let mut first = 0u64;
            for seg in &inner.segments {
                let n = seg.index.len() as u64;
                let lo = from.max(first);
                let hi = to.min(first + n);
                for i in lo..hi {
                    let e = seg.index[(i - first) as usize];
                    let stored = match inner.recent.get(i, e.batch_range().1) {
                        Some(batch) => Stored::Held(batch),
                        None => Stored::File(seg.file.clone(), seg.path.clone(), e),
                    };
                    out.push((e.term, stored));
                }
                first += n;
            }
            out
        };
        plan.into_iter()
            .map(|(term, stored)| match stored {
                Stored::Held(batch) => Ok((term, batch)),
                Stored::File(file, path, e) => {
                    let (pos, len) = e.batch_range();
                    Ok((term, Bytes::from(Segment::read_at(&file, &path, pos, len)?)))
                }
            })
            .collect()
    }

    /// Appends entries that may carry different terms (a follower receiving a leader's log),
    /// one append per run of equal terms so each stored batch keeps its own leader epoch.
    pub fn append_with_terms(&self, entries: &[RaftEntryBytes]) -> Result<Option<AppendOutcome>> {
        let mut outcome: Option<AppendOutcome> = None;
        let mut i = 0;
        while i < entries.len() {
            let term = entries[i].term;
            let run: Vec<&RaftEntryBytes> = entries[i..].iter().take_while(|e| e.term == term).collect();
            i += run.len();
            let epoch = i32::try_from(term).map_err(|_| {
                BrokerError::Invalid(format!("term {term} does not fit a Kafka leader epoch"))
            })?;
            let batches: Vec<Bytes> = run.iter().map(|e| e.batch.clone()).collect();
            let out = self.append_entries(&batches, |k| !run[k].takes_offsets, epoch)?;
            outcome = Some(match outcome {
                None => out,
                Some(first) => AppendOutcome { base_offset: first.base_offset, ..out },
            });
        }
        Ok(outcome)
    }

    /// Resolves once everything in this log now is fsynced, whatever the policy. Used for what
    /// must survive a power cut under every policy: the cluster metadata log and a group's first
    /// membership.
    pub async fn sync(&self) -> Result<()> {
        self.wait_entries_flushed(self.entry_count(), true).await
    }

    /// Marks the log as replicated with nothing known to be committed yet: its high watermark
    /// is the log start until the group applies entries (`set_committed`). Without this a
    /// replicated log reported the high watermark of a single node (everything fsynced) from
    /// start-up until its first apply, so a restarted node counted its uncommitted tail as
    /// committed: chaos seed 7 acknowledged a retried batch at an offset another leader then
    /// filled with its blank entry (a lost write, docs/chaos.md).
    pub fn start_replicated(&self) {
        let mut inner = lock(&self.inner);
        let start = inner.segments.first().map_or(0, |s| s.base_offset);
        inner.committed = Some(start);
        self.publish(&inner);
    }

    /// Sets the Raft-committed end offset, which becomes the high watermark consumers see.
    pub fn set_committed(&self, end_offset: i64) {
        let mut inner = lock(&self.inner);
        inner.recent.drop_below(end_offset);
        if inner.committed != Some(end_offset) {
            inner.committed = Some(end_offset);
            self.publish(&inner);
        }
    }
}

/// One Raft entry as the log stores it.
pub struct RaftEntryBytes {
    pub term: u64,
    pub batch: Bytes,
    /// False for Raft's own entries (blank, membership): clients never see them, so they take
    /// no Kafka offset and a partition's records are numbered from 0 (decision 46).
    pub takes_offsets: bool,
}

/// Where `entries_by_index` finds an entry's stored batch.
enum Stored {
    Held(Bytes),
    File(std::sync::Arc<std::fs::File>, std::path::PathBuf, IndexEntry),
}

/// A replica's fingerprint up to an offset: equal digests mean byte-identical logs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReplicaDigest {
    pub entries: u64,
    /// Exclusive end offset covered.
    pub end_offset: i64,
    /// CRC-32C chained over every stored batch (as stored, offsets rewritten) below `end_offset`.
    pub crc32c: u32,
}

impl PartitionLog {
    /// Digest of the entries that end at or below `upto` (normally the high watermark), without
    /// the offsetless entries at `upto` itself.
    pub fn digest(&self, upto: i64) -> Result<ReplicaDigest> {
        let count = self.entry_count();
        let mut crc = 0u32;
        let mut entries = 0u64;
        let mut end = 0i64;
        // Read in chunks so a long log does not sit in memory at once.
        const CHUNK: u64 = 256;
        let mut from = 0;
        'outer: while from < count {
            let to = (from + CHUNK).min(count);
            for (i, (_, batch)) in self.entries_by_index(from, to)?.into_iter().enumerate() {
                let Some((base, next)) = self.entry_offsets(from + i as u64) else { break 'outer };
                // An entry without an offset at `upto` itself may be a new leader's blank that not
                // every replica holds yet: the digest ends before it, where the committed data
                // fixes the prefix (decision 46).
                if next > upto || (next == base && base >= upto) {
                    break 'outer;
                }
                crc = crc32c::crc32c_append(crc, &batch);
                entries += 1;
                end = next;
            }
            from = to;
        }
        Ok(ReplicaDigest { entries, end_offset: end, crc32c: crc })
    }
}
