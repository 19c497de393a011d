//! The flusher: the one thread that makes this node's writes durable (fsync blocks, so it must not
//! run on the async runtime, and thousands of Raft groups must not each take a blocking thread).
//!
//! Every round syncs, together, the dirty segment files that are due and the new records of the
//! vote log (votes.rs), then completes everyone waiting on them:
//! - `Always`: every append queues its partition and wakes the flusher, so appends that arrive
//!   while a round runs share the next one (group commit across all partitions and groups).
//! - `Interval(d)`: a round every `d` takes every partition dirtied since the last.
//! - `Never`: partitions are synced only at a graceful close.
//! - Under every policy, votes and "urgent" partitions (the controller log, a group's first
//!   membership: what the cluster cannot lose) wake a round that syncs just those.
//!
//! A round with several files issues one `syncfs(2)` for the data dir's filesystem instead of one
//! fdatasync per file: on this machine 1,000 dirty files took 190-400 ms one by one and 8-15 ms as
//! one syncfs (decisions.md, "one fsync per round").

use std::collections::BTreeSet;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::FsyncPolicy;
use crate::error::{BrokerError, Result};
use crate::log::durability::{sync_dir, PartitionKey, StoreCtx, SYNCFS_MIN_FILES};
use crate::log::partition::{entry_count, Blocked, PartitionLog};
use crate::log::votes::VoteLog;
use crate::log::{lock, now_ns};

pub(crate) type PartitionMap = RwLock<std::collections::BTreeMap<PartitionKey, Arc<PartitionLog>>>;

/// What the flusher thread works on.
pub(crate) struct Flusher {
    pub ctx: Arc<StoreCtx>,
    pub parts: Arc<PartitionMap>,
    pub votes: Arc<VoteLog>,
}

pub(crate) fn spawn(flusher: Flusher) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("log-flusher".into())
        .spawn(move || flusher.run())
        .map_err(|e| BrokerError::io("spawn flusher thread", "log-flusher", e))
}

impl Flusher {
    fn run(&self) {
        let ctx = &self.ctx;
        let interval = match ctx.policy {
            FsyncPolicy::Interval(d) => Some(d),
            _ => None,
        };
        let mut next_tick = interval.map(|d| Instant::now() + d);
        loop {
            let (dirty, urgent, all_dirty) = {
                let mut w = lock(&ctx.wake);
                loop {
                    if w.stop {
                        return;
                    }
                    let tick_due = next_tick.is_some_and(|t| Instant::now() >= t);
                    let always_due = w.requested && ctx.policy == FsyncPolicy::Always;
                    if tick_due || always_due || w.votes || !w.urgent.is_empty() {
                        if tick_due {
                            next_tick = interval.map(|d| Instant::now() + d);
                        }
                        w.requested = false;
                        w.votes = false;
                        let all_dirty = tick_due || always_due;
                        let dirty = if all_dirty { std::mem::take(&mut w.dirty) } else { Vec::new() };
                        break (dirty, std::mem::take(&mut w.urgent), all_dirty);
                    }
                    w = match next_tick {
                        Some(t) => {
                            let wait = t.saturating_duration_since(Instant::now());
                            ctx.cv.wait_timeout(w, wait).unwrap_or_else(|e| e.into_inner()).0
                        }
                        None => ctx.cv.wait(w).unwrap_or_else(|e| e.into_inner()),
                    };
                }
            };
            let mut keys: BTreeSet<PartitionKey> = urgent;
            if all_dirty {
                keys.extend(dirty);
            }
            let targets = self.lookup(&keys);
            if let Err(e) = flush_round(ctx, &targets, &self.votes) {
                tracing::error!(error = %e, "flusher round failed");
                // The first failure is the one to report.
                ctx.failed.send_if_modified(|f| {
                    let first = f.is_none();
                    if first {
                        *f = Some(e.to_string());
                    }
                    first
                });
            }
        }
    }

    fn lookup(&self, keys: &BTreeSet<PartitionKey>) -> Vec<Arc<PartitionLog>> {
        let map = self.parts.read().unwrap_or_else(|e| e.into_inner());
        keys.iter().filter_map(|k| map.get(k).cloned()).collect()
    }
}

/// One dirty file of a partition as planned at the start of a round.
struct FileWork {
    base_offset: i64,
    file: Arc<File>,
    path: std::path::PathBuf,
    len: u64,
}

/// A partition's share of a round. Holds its flush lock, so truncation and power cut see a
/// consistent synced length, but not its append lock: appends keep flowing into the next round.
struct Plan<'a> {
    log: &'a PartitionLog,
    _flushing: MutexGuard<'a, ()>,
    end: i64,
    end_entries: u64,
    files: Vec<FileWork>,
    dir_dirty: bool,
    parent_dirty: bool,
}

impl PartitionLog {
    /// Plans this partition's part of a round; `None` when there is nothing to sync.
    fn plan_flush(&self) -> Option<Plan<'_>> {
        let flushing = lock(&self.flush_lock);
        // From here on a new append queues the partition again for the next round.
        self.queued.store(false, Ordering::SeqCst);
        let mut inner = lock(&self.inner);
        let entries = entry_count(&inner);
        if inner.blocked.is_some()
            || (inner.log_end == inner.flushed
                && entries == inner.flushed_entries
                && !inner.dir_dirty
                && !inner.parent_dirty)
        {
            return None;
        }
        let files = inner
            .segments
            .iter()
            .filter(|s| s.len > s.synced_len)
            .map(|s| FileWork {
                base_offset: s.base_offset,
                file: s.file.clone(),
                path: s.path.clone(),
                len: s.len,
            })
            .collect();
        let dir_dirty = std::mem::take(&mut inner.dir_dirty);
        let parent_dirty = std::mem::take(&mut inner.parent_dirty);
        Some(Plan {
            log: self,
            _flushing: flushing,
            end: inner.log_end,
            end_entries: entries,
            files,
            dir_dirty,
            parent_dirty,
        })
    }
}

impl Plan<'_> {
    /// Publishes the round's outcome for this partition.
    fn complete(self, synced: &Result<()>) {
        let p = self.log;
        let mut inner = lock(&p.inner);
        if let Err(e) = synced {
            // After a failed fsync the page cache state is unknown (the kernel may have dropped
            // the dirty pages), so nothing of this partition may be acknowledged any more.
            tracing::error!(topic = %p.topic, partition = p.partition, offset = inner.flushed,
                file = %p.dir.display(), error = %e, "fsync failed; partition stops accepting writes");
            inner.blocked = Some(Blocked::FsyncFailed(e.to_string()));
            p.publish(&inner);
            return;
        }
        for w in &self.files {
            if let Some(seg) = inner.segments.iter_mut().find(|s| s.base_offset == w.base_offset) {
                seg.synced_len = seg.synced_len.max(w.len);
            }
        }
        inner.flushed = inner.flushed.max(self.end);
        inner.flushed_entries = inner.flushed_entries.max(self.end_entries);
        inner.flushed_at_ns = now_ns();
        tracing::trace!(topic = %p.topic, partition = p.partition, offset = self.end,
            file = %p.dir.display(), files = self.files.len(), "flushed");
        p.publish(&inner);
    }
}

/// Syncs `targets` and the vote log's new records together, then completes every waiter.
/// Returns the sync error, if any (every partition of the round is then blocked).
pub(crate) fn flush_round(ctx: &StoreCtx, targets: &[Arc<PartitionLog>], votes: &VoteLog) -> Result<()> {
    let plans: Vec<Plan<'_>> = targets.iter().filter_map(|p| p.plan_flush()).collect();
    let mut vote_batch = votes.write_pending()?;
    let files = plans
        .iter()
        .map(|p| p.files.len() + usize::from(p.dir_dirty) + usize::from(p.parent_dirty))
        .sum::<usize>()
        + usize::from(vote_batch.is_some());
    if files == 0 {
        // Nothing left unsynced, but a plan may still move its flushed offset.
        for plan in plans {
            plan.complete(&Ok(()));
        }
        return Ok(());
    }
    let synced = if files >= SYNCFS_MIN_FILES {
        // Votes first, on their own: a candidate waits for them with a deadline of one election
        // timeout, and a syncfs over thousands of new partition files can take longer than that.
        let votes_synced = match vote_batch.take() {
            Some(batch) => {
                let r = ctx.timed_sync(|| votes.sync_file());
                votes.complete(batch, &r);
                r
            }
            None => Ok(()),
        };
        votes_synced.and_then(|()| ctx.syncfs(files))
    } else {
        sync_one_by_one(ctx, &plans, vote_batch.is_some().then_some(votes))
    };
    ctx.flush_rounds.fetch_add(1, Ordering::Relaxed);
    ctx.files_synced.fetch_add(files as u64, Ordering::Relaxed);
    for plan in plans {
        plan.complete(&synced);
    }
    if let Some(batch) = vote_batch {
        votes.complete(batch, &synced);
    }
    synced
}

fn sync_one_by_one(ctx: &StoreCtx, plans: &[Plan<'_>], votes: Option<&VoteLog>) -> Result<()> {
    for plan in plans {
        for w in &plan.files {
            ctx.fsync(&w.file, &w.path)?;
        }
        if plan.dir_dirty {
            sync_dir(&plan.log.dir)?;
        }
        if let (true, Some(parent)) = (plan.parent_dirty, plan.log.dir.parent()) {
            sync_dir(parent)?;
        }
    }
    match votes {
        Some(v) => ctx.timed_sync(|| v.sync_file()),
        None => Ok(()),
    }
}
