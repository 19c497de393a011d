//! What durability shares across the log's files: the store's life cycle, the flush requests the
//! flusher thread serves (partitions and the vote log queue them here), fsync counters and the
//! disk faults, and the two file-system steps every durable write ends with (`sync_dir`,
//! `write_durable`). Below `partition`, `votes` and `flusher`, so none of them needs another.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::FsyncPolicy;
use crate::error::{BrokerError, Result};
use crate::log::lock;

/// Store life cycle. Appends need `OPEN`; `wait_flushed` gives up only at `CLOSED`/`POWER_CUT`
/// (during `CLOSING` the final flush is still coming and will satisfy it).
pub(crate) const OPEN: u8 = 0;
pub(crate) const CLOSING: u8 = 1;
pub(crate) const CLOSED: u8 = 2;
pub(crate) const POWER_CUT: u8 = 3;

/// From this many files in a round on, one syncfs replaces the per-file fdatasyncs. Below it the
/// per-file calls are as cheap and do not wait on other writers' dirty data on the same disk.
pub(super) const SYNCFS_MIN_FILES: usize = 4;

pub(crate) type PartitionKey = (String, i32);

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
pub(super) struct Wake {
    /// Partitions written since their last sync (each listed once: see `PartitionLog::queued`).
    pub dirty: Vec<PartitionKey>,
    /// Partitions to sync in the next round whatever the policy.
    pub urgent: BTreeSet<PartitionKey>,
    /// `Always`: an append or a waiter wants the dirty partitions synced now.
    pub requested: bool,
    pub votes: bool,
    pub stop: bool,
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
    pub(super) failed: tokio::sync::watch::Sender<Option<String>>,
    fsync_count: AtomicU64,
    fsync_nanos: AtomicU64,
    pub(super) flush_rounds: AtomicU64,
    pub(super) files_synced: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub entries_appended: AtomicU64,
    pub(super) wake: Mutex<Wake>,
    pub(super) cv: Condvar,
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
    pub(super) fn timed_sync(&self, sync: impl FnOnce() -> Result<()>) -> Result<()> {
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
    pub(super) fn syncfs(&self, files: usize) -> Result<()> {
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

/// Temp file, fsync, rename, fsync dir: after return the new content survives any crash, and
/// before it the old content does (never a mix).
pub(crate) fn write_durable(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let mut f = std::fs::File::create(&tmp).map_err(|e| BrokerError::io("create temp file", &tmp, e))?;
    f.write_all(bytes).map_err(|e| BrokerError::io("write temp file", &tmp, e))?;
    f.sync_all().map_err(|e| BrokerError::io("fsync temp file", &tmp, e))?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| BrokerError::io(format!("rename {} to", tmp.display()), &path, e))?;
    sync_dir(dir)
}
