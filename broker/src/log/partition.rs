//! One partition's log: appends, reads, offsets, truncation.
//!
//! Locking: `inner` (the append lock) guards segments and offsets and is held only for memory
//! work and the write syscall. `flush_lock` serialises fsync rounds with truncation and
//! power-cut, which must agree on each file's synced length. Order: flush_lock, then inner.
//! Reads are in `partition/read.rs`.

mod read;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::FsyncPolicy;
use crate::error::{BrokerError, Result};
use crate::log::batch::{BatchHeader, BATCH_LENGTH_OFFSET, CONTROL_ATTRIBUTE};
use crate::log::durability::{PartitionKey, StoreCtx, CLOSED, OPEN, POWER_CUT};
use crate::log::entry::{self, ENTRY_HEADER_LEN};
use crate::log::recent::RecentTail;
use crate::log::segment::{IndexEntry, Segment};
use crate::log::{lock, now_ns};

/// Offsets of one partition; every offset is an exclusive end ("next offset").
#[derive(Clone, Debug, Serialize, Deserialize, ts_rs::TS, PartialEq)]
pub struct PartitionOffsets {
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    pub flushed_offset: i64,
    /// Always: = flushed_offset (a consumer never sees what a power cut could take back).
    /// Interval/Never: = log_end_offset.
    pub high_watermark: i64,
    pub appended_at_ns: u64,
    pub flushed_at_ns: u64,
}

/// Where an append landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    pub base_offset: i64,
    /// Inclusive: the offset of the last record appended (as Kafka reports it).
    pub last_offset: i64,
    pub log_append_time_ms: i64,
}

/// Why a partition refuses work although the store is open.
#[derive(Debug, Clone)]
pub(crate) enum Blocked {
    Deleted,
    FsyncFailed(String),
}

pub(crate) struct Inner {
    pub segments: Vec<Segment>,
    pub log_end: i64,
    pub flushed: i64,
    /// Entries known to be fsynced. An entry that occupies no offset (decision 46) does not
    /// move `flushed`, so Raft's waits count entries, not offsets.
    pub flushed_entries: u64,
    pub appended_at_ns: u64,
    pub flushed_at_ns: u64,
    pub blocked: Option<Blocked>,
    /// A segment file was created since the directory was last fsynced.
    pub dir_dirty: bool,
    /// The partition's own directory is new: its entry in `partitions/` is not synced yet
    /// either. Synced by the first flush round that takes this partition (no fsync per
    /// partition at creation: a topic of 1,000 partitions took 1,000 serial fsyncs).
    pub parent_dirty: bool,
    /// With replication, the Raft-committed end offset: the high watermark then is this, not a
    /// function of the fsync policy (see `raft_view`).
    pub committed: Option<i64>,
    /// Kafka's DeleteRecords: records below this are gone for clients, whether or not their
    /// segment files are (see `set_log_start`). Kept by the topic catalogue or the controller's
    /// metadata, which set it again after a restart.
    pub start_floor: i64,
    /// A replicated log's entries from append to apply, served to openraft's reads (recent.rs).
    pub recent: RecentTail,
}

pub struct PartitionLog {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) dir: PathBuf,
    pub(crate) ctx: Arc<StoreCtx>,
    segment_bytes: u64,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) flush_lock: Mutex<()>,
    /// Listed in the flusher's dirty list and not yet planned into a round (lists it once).
    pub(crate) queued: AtomicBool,
    tx: watch::Sender<PartitionOffsets>,
    /// Its offsets are forwarded to telemetry (`Telemetry::watch_partition`), by one watcher.
    telemetry_watched: AtomicBool,
}

impl PartitionLog {
    /// Wraps recovered segments (non-empty; the last is the active one).
    pub(crate) fn new(
        topic: &str,
        partition: i32,
        dir: PathBuf,
        ctx: Arc<StoreCtx>,
        segment_bytes: u64,
        segments: Vec<Segment>,
    ) -> PartitionLog {
        let log_end = segments.last().map_or(0, |s| s.next_offset());
        let entries = segments.iter().map(|s| s.index.len() as u64).sum();
        let inner = Inner {
            segments,
            log_end,
            flushed: log_end,
            flushed_entries: entries,
            appended_at_ns: 0,
            flushed_at_ns: 0,
            blocked: None,
            dir_dirty: false,
            parent_dirty: false,
            committed: None,
            start_floor: 0,
            recent: RecentTail::default(),
        };
        let (tx, _) = watch::channel(offsets_of(&inner, ctx.policy));
        PartitionLog {
            topic: topic.to_string(),
            partition,
            dir,
            ctx,
            segment_bytes,
            inner: Mutex::new(inner),
            flush_lock: Mutex::new(()),
            queued: AtomicBool::new(false),
            tx,
            telemetry_watched: AtomicBool::new(false),
        }
    }

    /// A partition whose directory was just created: its first flush syncs the directories too.
    pub(crate) fn new_created(
        topic: &str,
        partition: i32,
        dir: PathBuf,
        ctx: Arc<StoreCtx>,
        segment_bytes: u64,
        segments: Vec<Segment>,
    ) -> PartitionLog {
        let log = PartitionLog::new(topic, partition, dir, ctx, segment_bytes, segments);
        {
            let mut inner = lock(&log.inner);
            inner.dir_dirty = true;
            inner.parent_dirty = true;
        }
        log
    }

    /// True the first time only. A restarted cluster node reaches each recovered partition
    /// twice (at start-up, and when the controller's assignment starts its group), and two
    /// watchers sent every offsets event twice.
    pub fn claim_telemetry_watch(&self) -> bool {
        !self.telemetry_watched.swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub(crate) fn publish(&self, inner: &Inner) {
        self.tx.send_replace(offsets_of(inner, self.ctx.policy));
    }

    /// Wakes `wait_flushed` callers so they re-check the store state (close, power cut).
    pub(crate) fn poke(&self) {
        self.tx.send_modify(|_| {});
    }

    fn writable(&self, inner: &Inner) -> Result<()> {
        if self.ctx.state() != OPEN {
            return Err(BrokerError::ShuttingDown);
        }
        match &inner.blocked {
            None => Ok(()),
            Some(b) => Err(self.blocked_error(b)),
        }
    }

    fn blocked_error(&self, b: &Blocked) -> BrokerError {
        match b {
            Blocked::Deleted => {
                BrokerError::Invalid(format!("partition {}-{} was deleted", self.topic, self.partition))
            }
            Blocked::FsyncFailed(m) => {
                BrokerError::io("earlier fsync failed", &self.dir, std::io::Error::other(m.clone()))
            }
        }
    }

    /// Appends validated v2 batches, one entry each, at consecutive offsets. Returns once the
    /// bytes are written to the OS (not fsynced; see `wait_flushed`).
    pub fn append(&self, batches: &[Bytes], leader_epoch: i32) -> Result<AppendOutcome> {
        self.append_entries(batches, |_| false, leader_epoch)
    }

    /// `append`, where the batches for which `offsetless(i)` holds (control batches only) are
    /// stored as entries that occupy no offset: Raft's own entries (decision 46).
    pub(crate) fn append_entries(
        &self,
        batches: &[Bytes],
        offsetless: impl Fn(usize) -> bool,
        leader_epoch: i32,
    ) -> Result<AppendOutcome> {
        let headers = checked_headers(batches, &offsetless, leader_epoch)?;
        let mut inner = lock(&self.inner);
        self.writable(&inner)?;
        let base_offset = inner.log_end;
        let next = self.write_entries(&mut inner, batches, &headers, offsetless, leader_epoch)?;
        let now = now_ns();
        inner.appended_at_ns = now;
        self.publish(&inner);
        drop(inner);
        self.queue_for_flush();
        tracing::trace!(
            topic = %self.topic,
            partition = self.partition,
            offset = base_offset,
            file = %self.dir.display(),
            batches = batches.len(),
            "appended"
        );
        Ok(AppendOutcome { base_offset, last_offset: next - 1, log_append_time_ms: (now / 1_000_000) as i64 })
    }

    /// Writes the batches as entries from `log_end` on, rolling the active segment where one
    /// fills up; returns the offset after the last.
    fn write_entries(
        &self,
        inner: &mut Inner,
        batches: &[Bytes],
        headers: &[BatchHeader],
        offsetless: impl Fn(usize) -> bool,
        leader_epoch: i32,
    ) -> Result<i64> {
        let term = leader_epoch as u64;
        let mut buf = Vec::with_capacity(batches.iter().map(|b| b.len() + ENTRY_HEADER_LEN).sum());
        let mut pending = Vec::new();
        // A replicated log keeps what it writes until the group applies it (recent.rs).
        let keep = inner.committed.is_some();
        let mut kept = Kept { ranges: Vec::new(), held: Vec::new(), share: kept_can_share(batches) };
        let mut next = inner.log_end;
        let first_index = entry_count(inner);
        for (i, (b, h)) in batches.iter().zip(headers).enumerate() {
            let entry_len = (ENTRY_HEADER_LEN + b.len()) as u64;
            if self.must_roll(inner, buf.len() as u64, entry_len, next) {
                self.write_pending(inner, &buf, &mut pending)?;
                kept.take_from(&mut buf);
                self.roll(inner, next)?;
            }
            let position = inner.segments.last().map_or(0, |s| s.len) + buf.len() as u64;
            let count = if offsetless(i) { 0 } else { h.last_offset_delta + 1 };
            let start = buf.len();
            entry::encode(&mut buf, term, leader_epoch, next, count, b);
            if keep {
                let index = first_index + i as u64;
                kept.ranges.push((index, next, start + ENTRY_HEADER_LEN..buf.len()));
            }
            pending.push(IndexEntry {
                base_offset: next,
                next_offset: next + i64::from(count),
                position,
                len: entry_len as u32,
                term,
                max_timestamp: h.max_timestamp,
            });
            next += i64::from(count);
        }
        self.write_pending(inner, &buf, &mut pending)?;
        kept.take_from(&mut buf);
        for (index, base, batch) in kept.held {
            inner.recent.push(index, base, batch);
        }
        Ok(next)
    }

    /// Whether an entry of `entry_len` bytes, after `buffered` bytes not yet written, starts a
    /// new segment at `next`: when it would not fit in the active one. A segment is named by its
    /// base offset: one holding only offsetless entries cannot roll, the next would have its name.
    fn must_roll(&self, inner: &Inner, buffered: u64, entry_len: u64, next: i64) -> bool {
        let active_len = inner.segments.last().map_or(0, |s| s.len) + buffered;
        let active_base = inner.segments.last().map_or(next, |s| s.base_offset);
        active_len > 0 && active_len + entry_len > self.segment_bytes && active_base < next
    }

    /// Lists the partition for the flusher's next round (once), or asks for a round if it is
    /// listed already (fsync `always`: a waiter wants it soon).
    fn queue_for_flush(&self) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            self.ctx.mark_dirty(self.key());
        } else {
            self.ctx.request_flush();
        }
    }

    /// Writes the buffered entries to the active segment and makes them visible. Called per
    /// segment, so a failure after a roll still leaves `log_end` matching what is on disk.
    fn write_pending(&self, inner: &mut Inner, buf: &[u8], pending: &mut Vec<IndexEntry>) -> Result<()> {
        let Some(end) = pending.last().map(|e| e.next_offset) else { return Ok(()) };
        let entries = pending.len() as u64;
        let seg = inner
            .segments
            .last_mut()
            .ok_or_else(|| BrokerError::Internal("partition has no segment".into()))?;
        seg.append(buf, std::mem::take(pending))?;
        self.ctx.bytes_appended.fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.ctx.entries_appended.fetch_add(entries, Ordering::Relaxed);
        inner.log_end = end;
        Ok(())
    }

    fn roll(&self, inner: &mut Inner, base: i64) -> Result<()> {
        let seg = Segment::create(&self.dir, base)?;
        tracing::debug!(
            topic = %self.topic,
            partition = self.partition,
            offset = base,
            file = %seg.path.display(),
            "segment rolled"
        );
        inner.segments.push(seg);
        inner.dir_dirty = true;
        Ok(())
    }

    pub(crate) fn key(&self) -> PartitionKey {
        (self.topic.clone(), self.partition)
    }

    /// Resolves once every offset < `end_offset_exclusive` is fsynced.
    pub async fn wait_flushed(&self, end_offset_exclusive: i64) -> Result<()> {
        self.wait_for_flush(|inner| inner.flushed >= end_offset_exclusive).await
    }

    /// Resolves once the first `entries` entries (Raft indexes below it) are fsynced; counted in
    /// entries because Raft's own entries occupy no offset (decision 46). `urgent` asks for a
    /// round now whatever the fsync policy: for what the cluster must not lose (the controller
    /// log, a group's first membership).
    pub async fn wait_entries_flushed(&self, entries: u64, urgent: bool) -> Result<()> {
        if urgent && lock(&self.inner).flushed_entries < entries {
            self.ctx.request_urgent(self.key());
        }
        self.wait_for_flush(|inner| inner.flushed_entries >= entries).await
    }

    async fn wait_for_flush(&self, done: impl Fn(&Inner) -> bool) -> Result<()> {
        let mut rx = self.tx.subscribe();
        if self.ctx.policy == FsyncPolicy::Always && !done(&lock(&self.inner)) {
            self.ctx.request_flush();
        }
        loop {
            // Mark the channel seen before checking: a flush, close or power cut that lands
            // after this line marks it changed again, so `changed()` below cannot miss it.
            rx.borrow_and_update();
            {
                let inner = lock(&self.inner);
                if done(&inner) {
                    return Ok(());
                }
                let state = self.ctx.state();
                if state == CLOSED || state == POWER_CUT {
                    return Err(BrokerError::ShuttingDown);
                }
                if let Some(b) = &inner.blocked {
                    return Err(self.blocked_error(b));
                }
            }
            if rx.changed().await.is_err() {
                return Err(BrokerError::ShuttingDown);
            }
        }
    }

    pub fn offsets(&self) -> PartitionOffsets {
        offsets_of(&lock(&self.inner), self.ctx.policy)
    }

    /// Entries of this partition's in-memory index (one per stored batch), and the bytes the
    /// index vectors hold: the part of a node's memory that grows with the data it keeps.
    pub fn index_usage(&self) -> (u64, u64) {
        let inner = lock(&self.inner);
        inner.segments.iter().fold((0, 0), |(entries, bytes), s| {
            (
                entries + s.index.len() as u64,
                bytes + (s.index.capacity() * std::mem::size_of::<IndexEntry>()) as u64,
            )
        })
    }

    /// Sent on every append, flush and truncate.
    pub fn subscribe(&self) -> watch::Receiver<PartitionOffsets> {
        self.tx.subscribe()
    }

    /// Drops every entry with base offset >= `offset`, except entries that occupy no offset
    /// at `offset` itself (truncate by Raft index for those: `truncate_entries_from`). `offset`
    /// must be an entry boundary. Durable on return: the cut files and the directory are
    /// fsynced, so dropped entries cannot come back after a crash.
    ///
    /// Tests only: the broker truncates by Raft index. Tests cut a log by Kafka offset to set up
    /// what a truncation leaves (a producer's sequence gap, a reader past the end).
    #[cfg(test)]
    pub(crate) fn truncate_from(&self, offset: i64) -> Result<()> {
        let _flushing = lock(&self.flush_lock);
        let mut inner = lock(&self.inner);
        self.writable(&inner)?;
        let start = inner.segments.first().map_or(0, |s| s.base_offset);
        if offset == inner.log_end {
            return Ok(());
        }
        if offset < start || offset > inner.log_end {
            return Err(BrokerError::Invalid(format!(
                "truncate_from({offset}) on {}-{}: the log holds offsets {start}..{}",
                self.topic, self.partition, inner.log_end
            )));
        }
        let si = inner.segments.partition_point(|s| s.base_offset <= offset).saturating_sub(1);
        let ei = inner.segments[si].find(offset);
        match ei.map(|i| (i, inner.segments[si].index[i])) {
            Some((ei, e)) if e.base_offset == offset => self.cut_at(&mut inner, si, ei),
            other => Err(BrokerError::Invalid(format!(
                "truncate_from({offset}) on {}-{}: offset is inside the entry {}..{}, not at its start",
                self.topic,
                self.partition,
                other.map_or(offset, |(_, e)| e.base_offset),
                other.map_or(offset, |(_, e)| e.next_offset)
            ))),
        }
    }

    /// Drops the entries with Raft index >= `index` (Raft conflict resolution); durable on
    /// return: the cut files and the directory are fsynced.
    pub fn truncate_entries_from(&self, index: u64) -> Result<()> {
        let _flushing = lock(&self.flush_lock);
        let mut inner = lock(&self.inner);
        self.writable(&inner)?;
        match entry_position(&inner, index) {
            Some((si, ei)) => self.cut_at(&mut inner, si, ei),
            None => Ok(()), // nothing at or after `index`
        }
    }

    /// Drops entry `ei` of segment `si` and everything after it, on disk and in memory.
    fn cut_at(&self, inner: &mut Inner, si: usize, ei: usize) -> Result<()> {
        let entry = inner.segments[si].index[ei];
        let removed: Vec<Segment> = inner.segments.drain(si + 1..).collect();
        for seg in &removed {
            std::fs::remove_file(&seg.path).map_err(|e| BrokerError::io("remove segment", &seg.path, e))?;
        }
        let seg = &mut inner.segments[si];
        seg.truncate_entries(ei)?;
        self.ctx.fsync(&seg.file, &seg.path)?;
        if !removed.is_empty() {
            crate::log::durability::sync_dir(&self.dir)?;
        }
        let offset = entry.base_offset;
        inner.log_end = offset;
        inner.flushed = inner.flushed.min(offset);
        inner.flushed_entries = inner.flushed_entries.min(entry_count(inner));
        inner.recent.clear();
        tracing::info!(topic = %self.topic, partition = self.partition, offset, term = entry.term,
            file = %inner.segments[si].path.display(), removed_segments = removed.len(), "log truncated");
        self.publish(inner);
        Ok(())
    }
}

/// The headers of batches to append, each checked: a v2 batch whose length field matches its
/// bytes, a control batch where `offsetless` says it occupies no offset, a term >= 0.
fn checked_headers(
    batches: &[Bytes],
    offsetless: &impl Fn(usize) -> bool,
    leader_epoch: i32,
) -> Result<Vec<BatchHeader>> {
    if batches.is_empty() {
        return Err(BrokerError::Invalid("append of zero batches".into()));
    }
    if leader_epoch < 0 {
        return Err(BrokerError::Invalid(format!(
            "append with leader epoch {leader_epoch}; the stored term must be >= 0"
        )));
    }
    let mut headers = Vec::with_capacity(batches.len());
    for (i, b) in batches.iter().enumerate() {
        let h = BatchHeader::parse(b).map_err(|e| BrokerError::Invalid(format!("batch {i}: {e}")))?;
        if h.batch_length as i64 + BATCH_LENGTH_OFFSET as i64 != b.len() as i64 {
            return Err(BrokerError::Invalid(format!(
                "batch {i}: batch_length {} but {} bytes given",
                h.batch_length,
                b.len()
            )));
        }
        if offsetless(i) && h.attributes & CONTROL_ATTRIBUTE == 0 {
            return Err(BrokerError::Invalid(format!(
                "batch {i}: only a control batch may occupy no offset"
            )));
        }
        headers.push(h);
    }
    Ok(headers)
}

/// Where the entry with Raft index `index` is: (segment, entry within it).
pub(crate) fn entry_position(inner: &Inner, index: u64) -> Option<(usize, usize)> {
    let mut first = 0u64;
    for (si, seg) in inner.segments.iter().enumerate() {
        let n = seg.index.len() as u64;
        if index < first + n {
            return Some((si, (index - first) as usize));
        }
        first += n;
    }
    None
}

/// Entries in the log: the next Raft index of a replicated log.
pub(crate) fn entry_count(inner: &Inner) -> u64 {
    inner.segments.iter().map(|s| s.index.len() as u64).sum()
}

fn offsets_of(inner: &Inner, policy: FsyncPolicy) -> PartitionOffsets {
    let high_watermark = match inner.committed {
        Some(committed) => committed.min(inner.log_end),
        None if policy == FsyncPolicy::Always => inner.flushed,
        None => inner.log_end,
    };
    let first_stored = inner.segments.first().map_or(0, |s| s.base_offset);
    PartitionOffsets {
        // Never above the high watermark: a replica that has not caught up with a DeleteRecords
        // yet (or a leader whose commit index lags after an election) keeps start <= end.
        log_start_offset: first_stored.max(inner.start_floor.min(high_watermark)),
        log_end_offset: inner.log_end,
        flushed_offset: inner.flushed,
        high_watermark,
        appended_at_ns: inner.appended_at_ns,
        flushed_at_ns: inner.flushed_at_ns,
    }
}

/// The stored batches of one append that the recent tail keeps (`recent.rs`), as byte ranges of
/// the write buffer until it is written.
struct Kept {
    ranges: Vec<(u64, i64, std::ops::Range<usize>)>,
    held: Vec<(u64, i64, Bytes)>,
    share: bool,
}

/// Whether the kept batches may be slices of the written buffer rather than copies (copying
/// them was 3 % of a cluster's CPU at 1,000 busy partitions). A slice keeps the whole buffer
/// alive, so only when the tail keeps every batch in it: one too big for the tail would
/// otherwise stay in memory as long as any other.
fn kept_can_share(batches: &[Bytes]) -> bool {
    batches.iter().all(|b| b.len() <= crate::log::recent::RECENT_MAX_BYTES)
}

impl Kept {
    /// Takes the kept batches out of `buf` (written to the file by now) and leaves it empty.
    fn take_from(&mut self, buf: &mut Vec<u8>) {
        if self.ranges.is_empty() {
            buf.clear();
        } else if self.share {
            let written = Bytes::from(std::mem::take(buf));
            self.held.extend(self.ranges.drain(..).map(|(i, base, r)| (i, base, written.slice(r))));
        } else {
            self.held
                .extend(self.ranges.drain(..).map(|(i, base, r)| (i, base, Bytes::copy_from_slice(&buf[r]))));
            buf.clear();
        }
    }
}
