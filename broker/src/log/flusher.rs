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
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::FsyncPolicy;
use crate::error::{BrokerError, Result};
use crate::log::partition::{Blocked, PartitionLog};
use crate::log::votes::VoteLog;
use crate::log::{lock, now_ns};

/// Store life cycle. Appends need `OPEN`; `wait_flushed` gives up only at `CLOSED`/`POWER_CUT`
/// (during `CLOSING` the final flush is still coming and will satisfy it).
pub(crate) const OPEN: u8 = 0;
pub(crate) const CLOSING: u8 = 1;
pub(crate) const CLOSED: u8 = 2;
pub(crate) const POWER_CUT: u8 = 3;

/// From this many files in a round on, one syncfs replaces the per-file fdatasyncs. Below it the
/// per-file calls are as cheap and do not wait on other writers' dirty data on the same disk.
const SYNCFS_MIN_FILES: usize = 4;

pub(crate) type PartitionKey = (String, i32);
pub(crate) type PartitionMap = RwLock<std::collections::BTreeMap<PartitionKey, Arc<PartitionLog>>>;

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreStats {
    /// Sync calls (an fdatasync of one file, or one syncfs for a whole round).
    pub fsync_count: u64,
    pub fsync_nanos_total: u64,
    /// Flush rounds that synced something, and the files they covered.
    pub flush_rounds: u64,
    pub files_synced: u64,
    pub bytes_appended: u64,
    pub entries_appended: u64,
}

/// What the flusher has been asked to do.
#[derive(Default)]
struct Wake {
    /// Partitions written since their last sync (each listed once: see `PartitionLog::queued`).
    dirty: Vec<PartitionKey>,
    /// Partitions to sync in the next round whatever the policy.
    urgent: BTreeSet<PartitionKey>,
    /// `Always`: an append or a waiter wants the dirty partitions synced now.
    requested: bool,
    votes: bool,
    stop: bool,
}

/// State shared by the store, its partitions and the flusher thread. Partitions hold this, not
/// the store, so dropping the last `Arc<LogStore>` really drops it (and releases the lock).
pub(crate) struct StoreCtx {
    pub policy: FsyncPolicy,
    pub state: AtomicU8,
    /// An open handle on the data dir: what `syncfs` is called on.
    dir: File,
    fsync_delay_ns: AtomicU64,
    /// "fsync failure" fault: every sync call fails with EIO while set.
    fsync_failing: AtomicBool,
    /// Why the first flush round failed; the node stops when it is set (`LogStore::failed`).
    failed: tokio::sync::watch::Sender<Option<String>>,
    fsync_count: AtomicU64,
    fsync_nanos: AtomicU64,
    flush_rounds: AtomicU64,
    files_synced: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub entries_appended: AtomicU64,
    wake: Mutex<Wake>,
    cv: Condvar,
}

impl StoreCtx {
    pub fn new(policy: FsyncPolicy, dir: &Path) -> Result<StoreCtx> {
        let dir = File::open(dir).map_err(|e| BrokerError::io("open data dir", dir, e))?;
        Ok(StoreCtx {
            policy,
            state: AtomicU8::new(OPEN),
            dir,
            fsync_delay_ns: AtomicU64::new(0),
            fsync_failing: AtomicBool::new(false),
            failed: tokio::sync::watch::Sender::new(None),
            fsync_count: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            flush_rounds: AtomicU64::new(0),
            files_synced: AtomicU64::new(0),
            bytes_appended: AtomicU64::new(0),
            entries_appended: AtomicU64::new(0),
            wake: Mutex::new(Wake::default()),
            cv: Condvar::new(),
        })
    }

    pub fn state(&self) -> u8 {
        self.state.load(Ordering::SeqCst)
    }

    pub fn set_fsync_delay(&self, d: Duration) {
        self.fsync_delay_ns.store(d.as_nanos().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }

    pub fn fsync_delay(&self) -> Duration {
        Duration::from_nanos(self.fsync_delay_ns.load(Ordering::Relaxed))
    }

    pub fn set_fsync_failing(&self, failing: bool) {
        self.fsync_failing.store(failing, Ordering::Relaxed);
    }

    pub fn fsync_failing(&self) -> bool {
        self.fsync_failing.load(Ordering::Relaxed)
    }

    /// Resolves with the reason once a flush round has failed (at once if one already has).
    pub async fn failed(&self) -> String {
        let mut rx = self.failed.subscribe();
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The sender lives as long as `self`: unreachable while borrowed.
            Err(_) => std::future::pending().await,
        };
        reason
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            fsync_count: self.fsync_count.load(Ordering::Relaxed),
            fsync_nanos_total: self.fsync_nanos.load(Ordering::Relaxed),
            flush_rounds: self.flush_rounds.load(Ordering::Relaxed),
            files_synced: self.files_synced.load(Ordering::Relaxed),
            bytes_appended: self.bytes_appended.load(Ordering::Relaxed),
            entries_appended: self.entries_appended.load(Ordering::Relaxed),
        }
    }

    /// A partition was written: it joins the next round that syncs dirty partitions (under
    /// `Always` that round starts now).
    pub fn mark_dirty(&self, key: PartitionKey) {
        if self.policy == FsyncPolicy::Never {
            return; // only a close syncs them, and it takes every partition
        }
        let mut w = lock(&self.wake);
        w.dirty.push(key);
        if self.policy == FsyncPolicy::Always {
            w.requested = true;
            self.cv.notify_one();
        }
    }

    /// `Always`: a waiter wants the dirty partitions synced now (they already are queued).
    pub fn request_flush(&self) {
        if self.policy == FsyncPolicy::Always {
            lock(&self.wake).requested = true;
            self.cv.notify_one();
        }
    }

    /// Sync this partition in the next round, whatever the policy.
    pub fn request_urgent(&self, key: PartitionKey) {
        lock(&self.wake).urgent.insert(key);
        self.cv.notify_one();
    }

    pub fn request_votes(&self) {
        lock(&self.wake).votes = true;
        self.cv.notify_one();
    }

    pub fn stop_flusher(&self) {
        lock(&self.wake).stop = true;
        self.cv.notify_one();
    }

    /// Runs one timed sync call, with the injected "slow disk" delay first (counted in the time,
    /// because that is what a waiting producer experiences).
    fn timed_sync(&self, sync: impl FnOnce() -> Result<()>) -> Result<()> {
        let started = Instant::now();
        let delay = self.fsync_delay();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let res = if self.fsync_failing() {
            let eio = std::io::Error::from_raw_os_error(libc::EIO);
            Err(BrokerError::io("fsync (injected fsync-failure fault)", "data dir", eio))
        } else {
            sync()
        };
        self.fsync_count.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        res
    }

    /// One fsync of one file (also used outside rounds, e.g. by truncation).
    pub fn fsync(&self, file: &File, path: &Path) -> Result<()> {
        // fdatasync is enough: it also persists the file size, which is what appends change.
        self.timed_sync(|| file.sync_data().map_err(|e| BrokerError::io("fsync", path, e)))
    }

    /// One syncfs for everything dirty on the data dir's filesystem.
    fn syncfs(&self, files: usize) -> Result<()> {
        self.timed_sync(|| {
            // SAFETY: `dir` is an open descriptor owned by self for the whole call.
            let rc = unsafe { libc::syncfs(self.dir.as_raw_fd()) };
            if rc == 0 {
                Ok(())
            } else {
                let e = std::io::Error::last_os_error();
                Err(BrokerError::io(format!("syncfs for {files} files"), "data dir", e))
            }
        })
    }
}

/// Fsyncs a directory so created/renamed/removed entries in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BrokerError::io("fsync directory", dir, e))
}

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
        if inner.blocked.is_some()
            || (inner.log_end == inner.flushed && !inner.dir_dirty && !inner.parent_dirty)
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
        Some(Plan { log: self, _flushing: flushing, end: inner.log_end, files, dir_dirty, parent_dirty })
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
