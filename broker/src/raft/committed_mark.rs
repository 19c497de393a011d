//! The last committed log id a partition's group has seen, kept in a small file beside its log.
//!
//! Applying a partition entry only moves the high watermark, so nothing of the state machine is
//! stored and a restarted replica starts with nothing applied. Without a committed mark, the first
//! commit it then hears of makes openraft read every entry from index 0 in one call
//! (`apply_to_state_machine`): the whole log in memory at once, 130 MiB of transient heap per
//! restart in the 30-minute soak (issue 15). With it, openraft re-applies up to the mark at start
//! in chunks of 64 entries (`reapply_committed`) and the first commit reads only what came after.
//!
//! The mark is a lower bound of what is committed, never more, so it need not be durable: it is
//! written without fsync at most every [`WRITE_EVERY`], and one that is stale, missing, torn, or
//! past the end of a log cut short by a power cut only costs a longer first apply. It is used
//! only when the local log still holds its entry with its term. The controller's group keeps no
//! mark: its commands must be applied after the node has started, not inside openraft's start.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::log::{lock, PartitionLog};
use crate::raft::typ::LogId;

/// File name in the partition's directory.
pub const MARK_FILE: &str = "raft-committed.json";

/// A mark's size on disk: its JSON, padded with spaces (a log id's JSON is well under 128 bytes).
const MARK_BYTES: usize = 128;

/// How stale the mark on disk may get while commits go on.
pub const WRITE_EVERY: Duration = Duration::from_secs(5);

pub struct CommittedMark {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    /// The newest committed log id openraft saved in this process.
    latest: Option<LogId>,
    written_at: Option<Instant>,
}

impl CommittedMark {
    /// The mark of the partition stored in `dir`.
    pub fn new(dir: &Path) -> CommittedMark {
        CommittedMark {
            path: dir.join(MARK_FILE),
            state: Mutex::new(State { latest: None, written_at: None }),
        }
    }

    /// Records `committed`, and writes it when the file is older than [`WRITE_EVERY`]. A failed
    /// write is logged, not returned: the mark is an optimisation, and the log is what counts.
    pub fn save(&self, committed: Option<LogId>) {
        let mut state = lock(&self.state);
        state.latest = committed;
        let due = state.written_at.is_none_or(|at| at.elapsed() >= WRITE_EVERY);
        if let (true, Some(id)) = (due, committed) {
            state.written_at = Some(Instant::now());
            if let Err(e) = self.write(&id) {
                tracing::debug!(file = %self.path.display(), error = %e, "committed mark not written");
            }
        }
    }

    /// What openraft saved in this process, or else the mark on disk when `log` still holds its
    /// entry with its term.
    pub fn read(&self, log: &PartitionLog) -> Option<LogId> {
        if let Some(latest) = lock(&self.state).latest {
            return Some(latest);
        }
        let bytes = std::fs::read(&self.path).ok()?;
        let id: LogId = match serde_json::from_slice(&bytes) {
            Ok(id) => id,
            Err(e) => {
                tracing::debug!(file = %self.path.display(), error = %e, "committed mark unreadable: not used");
                return None;
            }
        };
        let held = log.entry_terms(id.index, id.index + 1) == [id.leader_id.term];
        if !held {
            tracing::debug!(file = %self.path.display(), mark = %id, entries = log.entry_count(),
                "committed mark names an entry this log does not hold: not used");
        }
        held.then_some(id)
    }

    /// Overwrites the mark in place, padded to [`MARK_BYTES`] so a shorter mark leaves nothing of
    /// a longer one behind. Not written aside and renamed: at 1,000 busy partitions that created
    /// ~200 inodes a second per broker, and every syncfs of the flusher then committed those
    /// creations to the filesystem journal (perf: ext4's inode allocation was 7 % of the runtime's
    /// CPU in a spread produce). A mark torn by a crash mid-write does not parse and is not used.
    fn write(&self, id: &LogId) -> std::io::Result<()> {
        use std::io::Write;
        let mut bytes = serde_json::to_vec(id)?;
        if bytes.len() < MARK_BYTES {
            bytes.resize(MARK_BYTES, b' ');
        }
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&self.path)?;
        file.write_all(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::config::FsyncPolicy;
    use crate::log::LogStore;
    use crate::raft::entry_codec;
    use crate::raft::typ::Entry;
    use openraft::entry::RaftEntry;

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(openraft::CommittedLeaderId::new(term, 0), index)
    }

    /// A partition log holding blank entries 0..terms.len() with those terms.
    fn log_with_terms(dir: &Path, terms: &[u64]) -> Arc<PartitionLog> {
        let (store, _) = LogStore::open(dir, FsyncPolicy::Always, 1 << 20).unwrap();
        let log = store.create_partition("m", 0).unwrap();
        let entries: Vec<_> = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| entry_codec::encode(&Entry::new_blank(log_id(t, i as u64))).unwrap())
            .collect();
        log.append_with_terms(&entries).unwrap();
        log
    }

    #[test]
    fn a_saved_mark_is_read_back_after_a_restart_only_while_the_log_holds_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_with_terms(dir.path(), &[1, 1, 2, 2]);
        let mark = CommittedMark::new(&log.dir);
        assert_eq!(mark.read(&log), None, "nothing saved yet");
        mark.save(Some(log_id(2, 2)));
        // Within WRITE_EVERY of the first write: kept in memory only.
        mark.save(Some(log_id(2, 3)));
        assert_eq!(mark.read(&log), Some(log_id(2, 3)));

        // A restarted replica sees the mark on disk.
        let restarted = CommittedMark::new(&log.dir);
        assert_eq!(restarted.read(&log), Some(log_id(2, 2)));
        // The same mark over a log that lost that entry, or holds it with another term, is unused.
        let short_dir = tempfile::tempdir().unwrap();
        let short = log_with_terms(short_dir.path(), &[1, 1]);
        std::fs::copy(log.dir.join(MARK_FILE), short.dir.join(MARK_FILE)).unwrap();
        assert_eq!(CommittedMark::new(&short.dir).read(&short), None);
        let other_dir = tempfile::tempdir().unwrap();
        let other = log_with_terms(other_dir.path(), &[1, 1, 3]);
        std::fs::copy(log.dir.join(MARK_FILE), other.dir.join(MARK_FILE)).unwrap();
        assert_eq!(CommittedMark::new(&other.dir).read(&other), None);
        // A torn file is unused, not an error.
        std::fs::write(log.dir.join(MARK_FILE), b"{\"leader_id\":").unwrap();
        assert_eq!(CommittedMark::new(&log.dir).read(&log), None);
    }

    #[test]
    fn a_shorter_mark_overwrites_a_longer_one_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_with_terms(dir.path(), &[1; 12]);
        let mark = CommittedMark::new(&log.dir);
        mark.write(&log_id(1, 11)).unwrap();
        mark.write(&log_id(1, 2)).unwrap();
        assert_eq!(std::fs::metadata(log.dir.join(MARK_FILE)).unwrap().len(), MARK_BYTES as u64);
        assert_eq!(CommittedMark::new(&log.dir).read(&log), Some(log_id(1, 2)));
    }

    #[tokio::test]
    async fn a_restarted_replica_applies_up_to_its_mark_as_it_starts() {
        use openraft::storage::{RaftLogStorage, RaftStateMachine};

        use crate::raft::raft_log::RaftLog;
        use crate::raft::state_machine::{GroupStateMachine, PartitionApplier};
        use crate::raft::typ::GroupId;

        let dir = tempfile::tempdir().unwrap();
        let (store, _) = LogStore::open(dir.path(), FsyncPolicy::Always, 1 << 20).unwrap();
        let log = store.create_partition("m", 0).unwrap();
        let entries: Vec<_> =
            (0..10).map(|i| entry_codec::encode(&Entry::new_blank(log_id(1, i))).unwrap()).collect();
        log.append_with_terms(&entries).unwrap();
        let group = GroupId::Partition { topic: "m".into(), partition: 0 };
        let mut before = RaftLog::new(group.clone(), Arc::clone(&log), Arc::clone(&store));
        before.save_committed(Some(log_id(1, 7))).await.unwrap();

        // A new process: a fresh log store and state machine over the same partition log.
        let mut raft_log = RaftLog::new(group, Arc::clone(&log), Arc::clone(&store));
        let mut sm = GroupStateMachine::new(Arc::clone(&log), Arc::new(PartitionApplier));
        let state = openraft::StorageHelper::new(&mut raft_log, &mut sm).get_initial_state().await.unwrap();
        assert_eq!(state.committed, Some(log_id(1, 7)), "starts with the mark committed");
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 7)), "re-applied up to it at start");
    }
}
