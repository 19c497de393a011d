//! The flusher: a dedicated std thread (fsync blocks, so it must not run on the async runtime)
//! that fsyncs dirty segment files and advances each partition's `flushed_offset`.
//!
//! Group commit: under `Always` every append and every `wait_flushed` wakes the flusher; one
//! round fsyncs everything dirty at the moment it starts, so all appends that arrived while
//! the previous fsync ran share the next one.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::FsyncPolicy;
use crate::error::{BrokerError, Result};
use crate::log::partition::{Blocked, PartitionLog};
use crate::log::{lock, now_ns};

/// Store life cycle. Appends need `OPEN`; `wait_flushed` gives up only at `CLOSED`/`POWER_CUT`
/// (during `CLOSING` the final flush is still coming and will satisfy it).
pub(crate) const OPEN: u8 = 0;
pub(crate) const CLOSING: u8 = 1;
pub(crate) const CLOSED: u8 = 2;
pub(crate) const POWER_CUT: u8 = 3;

pub(crate) type PartitionMap = RwLock<BTreeMap<(String, i32), Arc<PartitionLog>>>;

/// Counters since open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub fsync_count: u64,
    pub fsync_nanos_total: u64,
    pub bytes_appended: u64,
    pub entries_appended: u64,
}

#[derive(Default)]
struct Wake {
    requested: bool,
    stop: bool,
}

/// State shared by the store, its partitions and the flusher thread. Partitions hold this, not
/// the store, so dropping the last `Arc<LogStore>` really drops it (and releases the lock).
pub(crate) struct StoreCtx {
    pub policy: FsyncPolicy,
    pub state: AtomicU8,
    fsync_delay_ns: AtomicU64,
    fsync_count: AtomicU64,
    fsync_nanos: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub entries_appended: AtomicU64,
    wake: Mutex<Wake>,
    cv: Condvar,
}

impl StoreCtx {
    pub fn new(policy: FsyncPolicy) -> StoreCtx {
        StoreCtx {
            policy,
            state: AtomicU8::new(OPEN),
            fsync_delay_ns: AtomicU64::new(0),
            fsync_count: AtomicU64::new(0),
            fsync_nanos: AtomicU64::new(0),
            bytes_appended: AtomicU64::new(0),
            entries_appended: AtomicU64::new(0),
            wake: Mutex::new(Wake::default()),
            cv: Condvar::new(),
        }
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

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            fsync_count: self.fsync_count.load(Ordering::Relaxed),
            fsync_nanos_total: self.fsync_nanos.load(Ordering::Relaxed),
            bytes_appended: self.bytes_appended.load(Ordering::Relaxed),
            entries_appended: self.entries_appended.load(Ordering::Relaxed),
        }
    }

    /// Asks for a round now (only `Always` listens; other policies keep their own schedule).
    pub fn request_flush(&self) {
        lock(&self.wake).requested = true;
        self.cv.notify_one();
    }

    pub fn stop_flusher(&self) {
        lock(&self.wake).stop = true;
        self.cv.notify_one();
    }

    /// One fsync, with the injected "slow disk" delay first; counted and timed (delay included,
    /// because that is what a waiting producer experiences).
    pub fn fsync(&self, file: &File, path: &Path) -> Result<()> {
        let started = Instant::now();
        let delay = self.fsync_delay();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        // fdatasync is enough: it also persists the file size, which is what appends change.
        let res = file.sync_data().map_err(|e| BrokerError::io("fsync", path, e));
        self.fsync_count.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        res
    }
}

/// Fsyncs a directory so created/renamed/removed entries in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| BrokerError::io("fsync directory", dir, e))
}

pub(crate) fn spawn(ctx: Arc<StoreCtx>, parts: Arc<PartitionMap>) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("log-flusher".into())
        .spawn(move || run(&ctx, &parts))
        .map_err(|e| BrokerError::io("spawn flusher thread", "log-flusher", e))
}

fn run(ctx: &StoreCtx, parts: &PartitionMap) {
    let interval = match ctx.policy {
        FsyncPolicy::Interval(d) => Some(d),
        _ => None,
    };
    let mut next_tick = interval.map(|d| Instant::now() + d);
    loop {
        {
            let mut w = lock(&ctx.wake);
            loop {
                if w.stop {
                    return;
                }
                if w.requested && ctx.policy == FsyncPolicy::Always {
                    w.requested = false;
                    break;
                }
                match (next_tick, interval) {
                    (Some(t), Some(d)) => {
                        let now = Instant::now();
                        if now >= t {
                            next_tick = Some(now + d);
                            break;
                        }
                        w = ctx.cv.wait_timeout(w, t - now).unwrap_or_else(|e| e.into_inner()).0;
                    }
                    _ => w = ctx.cv.wait(w).unwrap_or_else(|e| e.into_inner()),
                }
            }
        }
        if let Err(e) = flush_round(parts) {
            tracing::error!(error = %e, "flusher round failed");
        }
    }
}

/// Fsyncs every dirty partition once; returns the first error after trying all of them.
pub(crate) fn flush_round(parts: &PartitionMap) -> Result<()> {
    let all: Vec<Arc<PartitionLog>> =
        parts.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
    let mut first_err = None;
    for p in all {
        if let Err(e) = p.flush_once() {
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

impl PartitionLog {
    /// Fsyncs this partition's dirty files and publishes the new flushed offset. Holds the
    /// flush lock (so truncation and power-cut see a consistent synced length) but not the
    /// append lock while fsyncing, so appends keep flowing into the next round.
    pub(crate) fn flush_once(&self) -> Result<()> {
        let _flushing = lock(&self.flush_lock);
        let (end, work, dir_dirty) = {
            let mut inner = lock(&self.inner);
            if inner.blocked.is_some() || (inner.log_end == inner.flushed && !inner.dir_dirty) {
                return Ok(());
            }
            let work: Vec<(i64, Arc<File>, std::path::PathBuf, u64)> = inner
                .segments
                .iter()
                .filter(|s| s.len > s.synced_len)
                .map(|s| (s.base_offset, s.file.clone(), s.path.clone(), s.len))
                .collect();
            let dir_dirty = std::mem::take(&mut inner.dir_dirty);
            (inner.log_end, work, dir_dirty)
        };
        let mut result = work.iter().try_for_each(|(_, file, path, _)| self.ctx.fsync(file, path));
        if result.is_ok() && dir_dirty {
            result = sync_dir(&self.dir);
        }
        let mut inner = lock(&self.inner);
        if let Err(e) = result {
            // After a failed fsync the page cache state is unknown (the kernel may have dropped
            // the dirty pages), so nothing of this partition may be acknowledged any more.
            tracing::error!(topic = %self.topic, partition = self.partition, offset = inner.flushed,
                file = %self.dir.display(), error = %e, "fsync failed; partition stops accepting writes");
            inner.blocked = Some(Blocked::FsyncFailed(e.to_string()));
            self.publish(&inner);
            return Err(e);
        }
        for (base, _, _, len) in &work {
            if let Some(seg) = inner.segments.iter_mut().find(|s| s.base_offset == *base) {
                seg.synced_len = seg.synced_len.max(*len);
            }
        }
        inner.flushed = inner.flushed.max(end);
        inner.flushed_at_ns = now_ns();
        tracing::trace!(topic = %self.topic, partition = self.partition, offset = end,
            file = %self.dir.display(), files = work.len(), "flushed");
        self.publish(&inner);
        Ok(())
    }
}
