//! openraft's state machine for a group: applying committed entries.
//!
//! For a partition, applying a batch only moves the committed end offset (the high watermark):
//! the batch is already in the log, written once. For the controller, the `Applier` executes
//! the command against the cluster metadata. Snapshots are disabled (logs are never purged).

use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, SnapshotMeta, StorageIOError, StoredMembership,
};

use crate::log::PartitionLog;
use crate::raft::typ::{Command, CommandResult, Entry, LogId, NodeId, StorageError, TypeConfig};

/// What a group does with a committed command.
pub trait Applier: Send + Sync + 'static {
    /// `offsets` are the Kafka offsets `[base, next)` the entry occupies in this group's log.
    fn apply(&self, index: u64, command: &Command, offsets: (i64, i64)) -> CommandResult;
}

/// Partitions: a committed batch answers with its offsets.
pub struct PartitionApplier;

impl Applier for PartitionApplier {
    fn apply(&self, _index: u64, command: &Command, (base, next): (i64, i64)) -> CommandResult {
        match command {
            Command::Batch(_) => CommandResult::Batch { base_offset: base, last_offset: next - 1 },
            Command::Controller(_) => CommandResult::None,
        }
    }
}

pub struct GroupStateMachine {
    log: Arc<PartitionLog>,
    applier: Arc<dyn Applier>,
    applied: Option<LogId>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
}

impl GroupStateMachine {
    pub fn new(log: Arc<PartitionLog>, applier: Arc<dyn Applier>) -> GroupStateMachine {
        GroupStateMachine { log, applier, applied: None, membership: StoredMembership::default() }
    }
}

fn sm_error(verb: ErrorVerb, what: &str) -> StorageError {
    StorageError::IO { source: StorageIOError::new(ErrorSubject::StateMachine, verb, AnyError::error(what)) }
}

impl RaftStateMachine<TypeConfig> for GroupStateMachine {
    type SnapshotBuilder = NoSnapshots;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId>, StoredMembership<NodeId, openraft::BasicNode>), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut results = Vec::new();
        let mut committed_end = None;
        for entry in entries {
            let index = entry.log_id.index;
            let offsets = self.log.entry_offsets(index).ok_or_else(|| {
                sm_error(ErrorVerb::Read, &format!("applying index {index} that is not in the local log"))
            })?;
            let result = match &entry.payload {
                EntryPayload::Normal(cmd) => self.applier.apply(index, cmd, offsets),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                    CommandResult::None
                }
                EntryPayload::Blank => CommandResult::None,
            };
            self.applied = Some(entry.log_id);
            committed_end = Some(offsets.1);
            results.push(result);
        }
        if let Some(end) = committed_end {
            self.log.set_committed(end);
        }
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        NoSnapshots
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<std::io::Cursor<Vec<u8>>>, StorageError> {
        Err(sm_error(ErrorVerb::Write, "snapshots are disabled: followers catch up from the log"))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        _snapshot: Box<std::io::Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        Err(sm_error(ErrorVerb::Write, "snapshots are disabled: followers catch up from the log"))
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        Ok(None)
    }
}

/// Snapshots are never built: the snapshot policy is `Never` and logs are never purged.
pub struct NoSnapshots;

impl RaftSnapshotBuilder<TypeConfig> for NoSnapshots {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        Err(sm_error(ErrorVerb::Write, "snapshots are disabled"))
    }
}
