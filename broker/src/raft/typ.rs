//! The openraft type configuration, named once for the whole crate.
//!
//! `single-term-leader` is on: a term has at most one leader, so a log id is (term, index) and both
//! are derivable from a stored partition entry (its term and its position). See decisions.md.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Raft node ids are the Kafka broker ids.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The one openraft type configuration of the broker.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = std::io::Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type RaftMetrics = openraft::RaftMetrics<NodeId, openraft::BasicNode>;
pub type AppendEntriesRequest = openraft::raft::AppendEntriesRequest<TypeConfig>;
pub type AppendEntriesResponse = openraft::raft::AppendEntriesResponse<NodeId>;
pub type VoteRequest = openraft::raft::VoteRequest<NodeId>;
pub type VoteResponse = openraft::raft::VoteResponse<NodeId>;
pub type InstallSnapshotRequest = openraft::raft::InstallSnapshotRequest<TypeConfig>;
pub type InstallSnapshotResponse = openraft::raft::InstallSnapshotResponse<NodeId>;

/// Which Raft group a message belongs to (defined with the telemetry contract, which spells it).
pub use crate::group_id::GroupId;

/// What a group replicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// A Kafka record batch (RecordBatch v2 bytes) for a partition group.
    Batch(Bytes),
    /// A controller command, JSON-encoded by the controller module.
    Controller(Bytes),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Batch(b) => write!(f, "batch({} bytes)", b.len()),
            Command::Controller(b) => write!(f, "controller({} bytes)", b.len()),
        }
    }
}

/// What applying a command produced.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum CommandResult {
    /// Membership and blank entries.
    #[default]
    None,
    /// Kafka offsets the batch was given (inclusive last offset, as Kafka reports).
    Batch { base_offset: i64, last_offset: i64 },
    /// A controller command's JSON answer.
    Controller(Bytes),
}
