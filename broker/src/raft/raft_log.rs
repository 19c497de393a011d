//! openraft's log storage over a `PartitionLog`: the Raft log *is* the partition log.
//!
//! Votes go to the node's vote log (always durable, whatever the fsync policy). Log
//! entries follow the node's fsync policy: under `always` openraft is told an append is done
//! only after its fsync, so a commit means "fsynced on a majority"; under `interval`/`never` a
//! commit means "written to a majority's page cache" — the loss a power cut then causes is the
//! lesson the lab teaches, and `flushed_offset` shows it.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, StorageIOError};

use crate::config::FsyncPolicy;
use crate::log::RaftEntryBytes;
use crate::log::{LogStore, PartitionLog};
use crate::raft::committed_mark::CommittedMark;
use crate::raft::entry_codec;
use crate::raft::trace::{term_runs, RaftTrace, TraceKind};
use crate::raft::typ::{Entry, GroupId, LogId, NodeId, StorageError, TypeConfig, Vote};

/// One group's log store; cheap to clone (openraft asks for a separate reader).
#[derive(Clone)]
pub struct RaftLog {
    group: GroupId,
    log: Arc<PartitionLog>,
    store: Arc<LogStore>,
    /// Told about truncations (a follower's log rolling back is what the Raft view shows).
    trace: Option<Arc<RaftTrace>>,
    /// Partitions only: where a restarted replica resumes applying (see `committed_mark`).
    committed: Option<Arc<CommittedMark>>,
}

fn io_error(subject: ErrorSubject<NodeId>, verb: ErrorVerb, e: impl std::fmt::Display) -> StorageError {
    StorageError::IO { source: StorageIOError::new(subject, verb, AnyError::error(e.to_string())) }
}

impl RaftLog {
    pub fn new(group: GroupId, log: Arc<PartitionLog>, store: Arc<LogStore>) -> RaftLog {
        let committed =
            matches!(group, GroupId::Partition { .. }).then(|| Arc::new(CommittedMark::new(&log.dir)));
        RaftLog { group, log, store, trace: None, committed }
    }

    /// Records truncations in `trace`.
    pub fn traced(self, trace: &Arc<RaftTrace>) -> RaftLog {
        RaftLog { trace: Some(Arc::clone(trace)), ..self }
    }
}

/// A stored entry's Raft index is its position (decision 11), so an entry can only be stored at
/// the end of the log with the index openraft gave it. openraft appends contiguously after its
/// last log id (`do_append_entries` and `leader_append_entries` assert it), starting at index 0
/// (`Engine::initialize`); since nothing is purged or installed from a snapshot, the log starts
/// at 0 too. Anything else would store an entry under the wrong index, silently: this names the
/// first such entry, which `append` refuses.
fn misplaced_entry(next: u64, entries: &[Entry]) -> Option<StorageError> {
    let (e, at) = entries.iter().zip(next..).find(|(e, at)| e.log_id.index != *at)?;
    Some(io_error(
        ErrorSubject::Log(e.log_id),
        ErrorVerb::Write,
        format!(
            "entry {} would land at index {at}: an index is a position in this log, which holds \
             entries 0..{next} and can neither start past 0 nor have holes",
            e.log_id
        ),
    ))
}

impl RaftLogReader<TypeConfig> for RaftLog {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        let read = |e| io_error(ErrorSubject::Logs, ErrorVerb::Read, e);
        let stored = self.log.entries_by_index(from, to).map_err(read)?;
        let mut entries = Vec::with_capacity(stored.len());
        for (i, (term, batch)) in stored.into_iter().enumerate() {
            entries.push(entry_codec::decode(from + i as u64, term, batch).map_err(read)?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for RaftLog {
    type LogReader = RaftLog;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let count = self.log.entry_count();
        let last_log_id = match (count.checked_sub(1), self.log.last_entry_term()) {
            (Some(index), Some(term)) => Some(LogId::new(openraft::CommittedLeaderId::new(term, 0), index)),
            _ => None,
        };
        // Nothing is ever purged: lab logs are small, and keeping them means no snapshots.
        Ok(LogState { last_purged_log_id: None, last_log_id })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let bytes =
            serde_json::to_vec(vote).map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))?;
        // Durable on return: batched with every other vote and append of one flush round.
        self.store
            .save_vote(&self.group.to_string(), &bytes)
            .await
            .map_err(|e| io_error(ErrorSubject::Vote, ErrorVerb::Write, e))
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(mark) = &self.committed {
            mark.save(committed);
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed.as_ref().and_then(|mark| mark.read(&self.log)))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        let name = self.group.to_string();
        match self.store.read_vote(&name) {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io_error(
                    ErrorSubject::Vote,
                    ErrorVerb::Read,
                    format!("the vote of {name} is not a vote: {e}"),
                )
            }),
        }
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let write = |e: crate::BrokerError| io_error(ErrorSubject::Logs, ErrorVerb::Write, e);
        let entries: Vec<Entry> = entries.into_iter().collect();
        if let Some(e) = misplaced_entry(self.log.entry_count(), &entries) {
            return Err(e);
        }
        let encoded: Vec<RaftEntryBytes> =
            entries.iter().map(entry_codec::encode).collect::<Result<_, _>>().map_err(write)?;
        if self.log.append_with_terms(&encoded).map_err(write)?.is_none() {
            callback.log_io_completed(Ok(()));
            return Ok(());
        }
        // The cluster metadata (controller) log is always fsynced: the fsync policy is about
        // partition data; losing topics and membership would leave no cluster to recover.
        // Durable means every entry up to the last appended, counted in entries: Raft's own
        // entries occupy no offset (decision 46) but must be on disk all the same.
        let durable = matches!(self.group, GroupId::Controller) || self.store.policy() == FsyncPolicy::Always;
        match entries.last().filter(|_| durable) {
            Some(last) => {
                let (log, urgent) = (Arc::clone(&self.log), self.group == GroupId::Controller);
                let end = last.log_id.index + 1;
                // Completed by the flusher's round; no thread waits for it. Detached: it ends at
                // that round, or with an error when the store closes or its disk fails.
                tokio::spawn(async move {
                    let synced = log.wait_entries_flushed(end, urgent).await;
                    callback.log_io_completed(synced.map_err(|e| std::io::Error::other(e.to_string())));
                });
            }
            None => callback.log_io_completed(Ok(())),
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::info!(group = %self.group, index = log_id.index, "truncating conflicting entries");
        if let Some(trace) = &self.trace {
            trace.truncate(&self.group, || {
                let terms = self.log.entry_terms(log_id.index, u64::MAX);
                TraceKind::Truncate {
                    from: log_id.index,
                    discarded: terms.len() as u64,
                    terms: term_runs(terms),
                }
            });
        }
        self.log
            .truncate_entries_from(log_id.index)
            .map_err(|e| io_error(ErrorSubject::Logs, ErrorVerb::Delete, e))
    }

    async fn purge(&mut self, _log_id: LogId) -> Result<(), StorageError> {
        Ok(())
    }
}
