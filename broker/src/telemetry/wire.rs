//! The node's telemetry contract: the words with a closed set of values, and the group name.
//!
//! Every type a node writes on its HTTP endpoint derives `Serialize` and `Deserialize`, and the
//! lab (`labs`) reads the answers back into the same types (decision 40), so a field renamed here
//! breaks the build of both sides instead of a key lookup at run time. Where they live:
//!
//! | answer                    | type                                                              |
//! |---------------------------|-------------------------------------------------------------------|
//! | `GET /state`              | [`crate::state::StateSnapshot`] (its `raft`: [`crate::cluster::ClusterSnapshot`]) |
//! | `GET /raft/summary`       | [`crate::cluster::summary::RaftSummary`]                          |
//! | `GET /raft/groups`        | `Vec<`[`crate::cluster::watch::GroupState`]`>`                    |
//! | `GET /partitions`         | `Vec<`[`crate::state::PartitionState`]`>`                         |
//! | `GET /raft/trace`         | [`crate::cluster::rpc_trace::TraceAnswer`]                        |
//! | `POST /raft/trace/watch`  | [`TraceWatch`]                                                    |
//! | `GET /events` (each SSE)  | [`crate::telemetry::Event`]                                       |
//! | `GET /digest`             | `Vec<`[`crate::telemetry::http::PartitionDigest`]`>`                          |
//!
//! The types built from the node's internals stay beside the code that builds them; this module
//! holds what has no other home and imports nothing of the crate, so anything may use it.
//! The types the lab shows in its UI also derive `ts_rs::TS`: `ui/src/api/generated.ts` is
//! written from them (`labs/src/lab/ts_export.rs`).

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// A node's role in one Raft group, as `/state`, `/events` and `/raft/trace` report it.
/// openraft's server states, plus `IsolatedLeader`: a leader its majority no longer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
    IsolatedLeader,
}

impl Role {
    /// The spelling on the wire (`"Leader"`, `"IsolatedLeader"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "Leader",
            Role::Follower => "Follower",
            Role::Candidate => "Candidate",
            Role::Learner => "Learner",
            Role::Shutdown => "Shutdown",
            Role::IsolatedLeader => "IsolatedLeader",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of an election in one group (telemetry `election` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ElectionPhase {
    /// This node became a candidate (or a candidate again, in a new term).
    Started,
    /// This node's candidacy ended with it leading.
    Won,
    /// This node's candidacy ended without it leading.
    Lost,
    /// A leader this node did not know before is known now.
    LeaderKnown,
}

impl ElectionPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ElectionPhase::Started => "started",
            ElectionPhase::Won => "won",
            ElectionPhase::Lost => "lost",
            ElectionPhase::LeaderKnown => "leader_known",
        }
    }
}

impl std::fmt::Display for ElectionPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The node process's lifecycle (telemetry `lifecycle` events), in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecyclePhase {
    Started,
    /// Leaderships are being handed to other nodes before a graceful stop.
    HandingOff,
    Draining,
    Flushed,
    Stopped,
}

/// The answer to `POST /raft/trace/watch`: the group now recorded in full, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceWatch {
    pub watched: Option<String>,
}

/// The Raft group name of a partition: `<topic>-<partition>`, as every answer spells it (the
/// controller's group is `controller`).
pub fn partition_group(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The name of the controller's Raft group.
pub const CONTROLLER_GROUP: &str = "controller";
