//! The store: data-dir lock, the set of partition logs, the flusher thread, metadata files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::FsyncPolicy;
use crate::error::{BrokerError, Result};
use crate::log::durability::{
    sync_dir, write_durable, StoreCtx, StoreStats, CLOSED, CLOSING, OPEN, POWER_CUT,
};
use crate::log::flusher::{self, Flusher, PartitionMap};
use crate::log::lock;
use crate::log::lock::DirLock;
use crate::log::partition::{Blocked, PartitionLog};
use crate::log::power_cut_report::{take_last_report, REPORT_FILE};
use crate::log::recovery::{recover_partition, RecoveryReport};
use crate::log::votes::VoteLog;

const PARTITIONS_DIR: &str = "partitions";

/// Where a partition's segment files live under a data dir: `<data_dir>/partitions/<topic>-<p>`
/// (for tools that corrupt or inspect them; the broker itself goes through `LogStore`).
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(PARTITIONS_DIR).join(format!("{topic}-{partition}"))
}

pub struct LogStore {
    dir: PathBuf,
    segment_bytes: u64,
    pub(crate) ctx: Arc<StoreCtx>,
    parts: Arc<PartitionMap>,
    pub(crate) votes: Arc<VoteLog>,
    /// Serialises create/delete so two creators of one partition cannot both create files.
    admin: Mutex<()>,
    dir_lock: Mutex<Option<DirLock>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

/// Kafka's legal topic characters; anything else could escape the data dir (`..`, `/`).
fn check_topic(topic: &str, partition: i32) -> Result<()> {
    let ok_chars = topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if topic.is_empty() || topic.len() > 249 || !ok_chars || topic == "." || topic == ".." {
        return Err(BrokerError::Invalid(format!(
            "topic name '{topic}' is not 1-249 characters of [a-zA-Z0-9._-]"
        )));
    }
    if partition < 0 {
        return Err(BrokerError::Invalid(format!("partition {partition} of '{topic}' is negative")));
    }
    Ok(())
}

/// `<topic>-<partition>`; topics may contain '-', the partition is after the last one.
fn parse_partition_dir(name: &str) -> Option<(String, i32)> {
    let (topic, p) = name.rsplit_once('-')?;
    let p: i32 = p.parse().ok()?;
    check_topic(topic, p).ok()?;
    Some((topic.to_string(), p))
}

impl LogStore {
    /// Locks `dir`, recovers every partition under `<dir>/partitions/`, starts the flusher.
    pub fn open(
        dir: &Path,
        policy: FsyncPolicy,
        segment_bytes: u64,
    ) -> Result<(Arc<LogStore>, RecoveryReport)> {
        if segment_bytes == 0 {
            return Err(BrokerError::Invalid("segment_bytes must be at least 1".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| BrokerError::io("create data dir", dir, e))?;
        let dir_lock = DirLock::acquire(dir)?;
        let last_power_cut = take_last_report(dir)?;
        let pdir = dir.join(PARTITIONS_DIR);
        std::fs::create_dir_all(&pdir).map_err(|e| BrokerError::io("create partitions dir", &pdir, e))?;
        let ctx = Arc::new(StoreCtx::new(policy, dir)?);
        let votes = Arc::new(VoteLog::open(dir)?);
        let mut map = BTreeMap::new();
        let mut reports = Vec::new();
        for ent in std::fs::read_dir(&pdir).map_err(|e| BrokerError::io("list partitions", &pdir, e))? {
            let ent = ent.map_err(|e| BrokerError::io("list partitions", &pdir, e))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            let Some((topic, partition)) = parse_partition_dir(&name).filter(|_| ent.path().is_dir()) else {
                tracing::warn!(file = %ent.path().display(), "not a partition directory; ignored");
                continue;
            };
            let (segments, rep) = recover_partition(&ent.path(), &topic, partition)?;
            tracing::info!(
                topic = %topic,
                partition,
                offset = rep.log_end_offset,
                file = %ent.path().display(),
                segments = rep.segments,
                torn_tail_bytes = rep.torn_tail_bytes,
                corrupt = rep.corruption.is_some(),
                "partition recovered"
            );
            let log = PartitionLog::new(&topic, partition, ent.path(), ctx.clone(), segment_bytes, segments);
            map.insert((topic, partition), Arc::new(log));
            reports.push(rep);
        }
        reports.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let parts = Arc::new(RwLock::new(map));
        let handle =
            flusher::spawn(Flusher { ctx: ctx.clone(), parts: parts.clone(), votes: votes.clone() })?;
        let store = LogStore {
            dir: dir.to_path_buf(),
            segment_bytes,
            ctx,
            parts,
            votes,
            admin: Mutex::new(()),
            dir_lock: Mutex::new(Some(dir_lock)),
            flusher: Mutex::new(Some(handle)),
        };
        tracing::info!(file = %dir.display(), policy = %policy, partitions = reports.len(), "log store open");
        Ok((Arc::new(store), RecoveryReport { partitions: reports, last_power_cut }))
    }

    pub fn policy(&self) -> FsyncPolicy {
        self.ctx.policy
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        partition_dir(&self.dir, topic, partition)
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.parts.read().unwrap_or_else(|e| e.into_inner()).get(&(topic.to_string(), partition)).cloned()
    }

    /// Idempotent. A directory left on disk without being open (e.g. a half-done delete) is
    /// recovered rather than overwritten.
    pub fn create_partition(&self, topic: &str, partition: i32) -> Result<Arc<PartitionLog>> {
        check_topic(topic, partition)?;
        let _admin = lock(&self.admin);
        if self.ctx.state() != OPEN {
            return Err(BrokerError::ShuttingDown);
        }
        if let Some(p) = self.partition(topic, partition) {
            return Ok(p);
        }
        let pdir = self.partition_dir(topic, partition);
        std::fs::create_dir_all(&pdir).map_err(|e| BrokerError::io("create partition dir", &pdir, e))?;
        let (segments, _) = recover_partition(&pdir, topic, partition)?;
        let log = Arc::new(PartitionLog::new_created(
            topic,
            partition,
            pdir.clone(),
            self.ctx.clone(),
            self.segment_bytes,
            segments,
        ));
        self.parts
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((topic.to_string(), partition), log.clone());
        tracing::info!(
            topic,
            partition,
            offset = log.offsets().log_end_offset,
            file = %pdir.display(),
            "partition created"
        );
        Ok(log)
    }

    /// Removes the partition and its files. Appends and waiters on it fail from now on.
    pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<()> {
        check_topic(topic, partition)?;
        let _admin = lock(&self.admin);
        let removed =
            self.parts.write().unwrap_or_else(|e| e.into_inner()).remove(&(topic.to_string(), partition));
        if let Some(p) = &removed {
            let _flushing = lock(&p.flush_lock);
            let mut inner = lock(&p.inner);
            inner.blocked = Some(Blocked::Deleted);
            p.publish(&inner);
        }
        let pdir = self.partition_dir(topic, partition);
        match std::fs::remove_dir_all(&pdir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BrokerError::io("remove partition dir", &pdir, e)),
        }
        sync_dir(&self.dir.join(PARTITIONS_DIR))?;
        tracing::info!(topic, partition, file = %pdir.display(), was_open = removed.is_some(), "partition deleted");
        Ok(())
    }

    /// Sorted by (topic, partition).
    pub fn partitions(&self) -> Vec<Arc<PartitionLog>> {
        self.parts.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Fsyncs every dirty file now, on the calling thread (blocking: from async code use
    /// `spawn_blocking`). A no-op after a power cut: there is nothing left to save.
    pub fn flush_all(&self) -> Result<()> {
        if self.ctx.state() == POWER_CUT {
            return Ok(());
        }
        flusher::flush_round(&self.ctx, &self.partitions(), &self.votes)
    }

    /// Saves a Raft group's vote; resolves once it is durable (its record was synced with the
    /// rest of a flush round). The vote is opaque bytes to the store.
    pub async fn save_vote(&self, group: &str, vote: &[u8]) -> Result<()> {
        let ticket = self.votes.queue(group, Some(vote))?;
        self.ctx.request_votes();
        self.votes.wait_durable(ticket).await
    }

    /// A group's vote as last saved.
    pub fn read_vote(&self, group: &str) -> Option<Vec<u8>> {
        self.votes.read(group)
    }

    /// Forgets a deleted group's vote, durably: a group created again under the same name
    /// starts with no vote (openraft refuses to initialize a group that has one).
    pub async fn forget_vote(&self, group: &str) -> Result<()> {
        let ticket = self.votes.queue(group, None)?;
        self.ctx.request_votes();
        self.votes.wait_durable(ticket).await
    }

    /// "Slow disk" fault: added before every fsync.
    pub fn set_fsync_delay(&self, d: Duration) {
        self.ctx.set_fsync_delay(d);
    }

    pub fn fsync_delay(&self) -> Duration {
        self.ctx.fsync_delay()
    }

    /// "fsync failure" fault: while set, every fsync fails with EIO, as a dying disk's do.
    pub fn set_fsync_failing(&self, failing: bool) {
        self.ctx.set_fsync_failing(failing);
    }

    pub fn fsync_failing(&self) -> bool {
        self.ctx.fsync_failing()
    }

    /// Resolves with the error once a flush round has failed. After a failed fsync the kernel
    /// may have dropped the dirty pages, so nothing written since the last good fsync can be
    /// trusted (PostgreSQL's "fsyncgate"); the node stops rather than go on acknowledging.
    pub async fn failed(&self) -> String {
        self.ctx.failed().await
    }

    pub fn stats(&self) -> StoreStats {
        self.ctx.stats()
    }

    /// Graceful close: flush everything, stop and join the flusher, release the lock.
    /// Idempotent; after a power cut it skips the flush.
    pub fn close(&self) -> Result<()> {
        let prev = match self.ctx.state.compare_exchange(OPEN, CLOSING, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(p) | Err(p) => p,
        };
        let flushed = if prev == OPEN || prev == CLOSING { self.flush_all() } else { Ok(()) };
        self.ctx.stop_flusher();
        if let Some(h) = lock(&self.flusher).take() {
            if h.join().is_err() {
                tracing::error!(file = %self.dir.display(), "flusher thread panicked");
            }
        }
        let _ = self.ctx.state.compare_exchange(CLOSING, CLOSED, Ordering::SeqCst, Ordering::SeqCst);
        for p in self.partitions() {
            p.poke();
        }
        if lock(&self.dir_lock).take().is_some() {
            tracing::info!(file = %self.dir.display(), "log store closed");
        }
        flushed
    }

    /// Atomically replaces `<dir>/<name>` (temp file, fsync, rename, fsync dir).
    pub fn write_meta(&self, name: &str, bytes: &[u8]) -> Result<()> {
        check_meta_name(name)?;
        write_durable(&self.dir, name, bytes)
    }

    /// A metadata file holding JSON, parsed; `what` names it in the error when it does not parse.
    pub fn read_json_meta<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>> {
        let Some(bytes) = self.read_meta(name)? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| BrokerError::Corrupt {
            file: self.dir.join(name),
            position: 0,
            reason: format!("{what} is not valid JSON: {e}"),
        })
    }

    pub fn read_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        check_meta_name(name)?;
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BrokerError::io("read metadata", &path, e)),
        }
    }
}

/// Plain file names only, and none that the store itself owns.
fn check_meta_name(name: &str) -> Result<()> {
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !plain || name == PARTITIONS_DIR || name.starts_with("power-cut-report") || name == REPORT_FILE {
        return Err(BrokerError::Invalid(format!(
            "metadata name '{name}' is not a plain file name the store allows"
        )));
    }
    Ok(())
}

impl Drop for LogStore {
    fn drop(&mut self) {
        if lock(&self.dir_lock).is_some() {
            if let Err(e) = self.close() {
                tracing::error!(file = %self.dir.display(), error = %e, "close on drop failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_dir_cannot_be_opened_twice_until_closed_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
        let err = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).err().expect("second open must fail");
        assert!(matches!(err, BrokerError::DataDirLocked { .. }));
        assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
        s.close().unwrap();
        s.close().unwrap(); // idempotent
        let (s2, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
        assert!(s.create_partition("t", 0).is_err(), "a closed store takes no new work");
        drop(s2);
        LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
    }

    #[test]
    fn a_json_metadata_file_that_does_not_parse_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
        assert_eq!(s.read_json_meta::<Vec<i32>>("acls.json", "ACL file").unwrap(), None);
        s.write_meta("acls.json", b"[1,2").unwrap();
        let err = s.read_json_meta::<Vec<i32>>("acls.json", "ACL file").unwrap_err();
        assert!(matches!(err, BrokerError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("acls.json") && err.to_string().contains("ACL file"), "{err}");
        s.write_meta("acls.json", b"[1,2]").unwrap();
        assert_eq!(s.read_json_meta::<Vec<i32>>("acls.json", "ACL file").unwrap(), Some(vec![1, 2]));
    }

    #[test]
    fn metadata_is_replaced_atomically_and_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
        assert_eq!(s.read_meta("topics.json").unwrap(), None);
        s.write_meta("topics.json", b"{\"a\":1}").unwrap();
        s.write_meta("topics.json", b"{\"a\":2}").unwrap();
        assert_eq!(s.read_meta("topics.json").unwrap().as_deref(), Some(&b"{\"a\":2}"[..]));
        assert!(!dir.path().join(".topics.json.tmp").exists());
        for bad in ["", "../x", "a/b", ".lock", "partitions", "power-cut-report.json"] {
            assert!(s.write_meta(bad, b"x").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn partitions_are_listed_sorted_and_recovered_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
        for (t, p) in [("b", 1), ("a-x", 10), ("a-x", 2)] {
            s.create_partition(t, p).unwrap();
        }
        let names = |s: &LogStore| {
            s.partitions().iter().map(|p| (p.topic().to_string(), p.partition())).collect::<Vec<_>>()
        };
        let want = vec![("a-x".to_string(), 2), ("a-x".to_string(), 10), ("b".to_string(), 1)];
        assert_eq!(names(&s), want);
        drop(s);
        let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 4096).unwrap();
        assert_eq!(names(&s), want);
        assert_eq!(rep.partitions.len(), 3);
    }
}
