//! What the supervisor tells its owner (the UI, the timeline), and what it says about a node.

use std::net::SocketAddr;
use std::path::PathBuf;

use broker::telemetry::memory::MemoryReport;
use serde::Serialize;

/// Which output stream of a node a line came from.
pub use crate::launcher::Stream;

/// A node process' life events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Spawned; not serving yet.
    Started,
    /// Printed its ready line.
    Ready,
    /// Ended because the lab asked (stop, kill, power cut, shutdown).
    Exited,
    /// Ended by itself: a crash, a panic, a failed start.
    Died,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SupervisorEvent {
    Log {
        node: i32,
        stream: Stream,
        line: String,
    },
    Process {
        node: i32,
        state: ProcessState,
        pid: u32,
        detail: String,
    },
    /// Sampled every second while the node runs. `cpu_percent` is of one core (a busy node on
    /// two cores shows up to 200).
    Resources {
        node: i32,
        cpu_percent: f32,
        memory_bytes: u64,
        disk_bytes: u64,
        /// The node's own account of its memory (`GET /memory`), when it answered in time (a
        /// paused node does not).
        node_memory: Option<MemoryReport>,
    },
}

/// Where a node stands, as the lab sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Never started, or stopped/killed by the lab.
    Stopped,
    /// Spawned, waiting for its ready line.
    Starting,
    Running,
    /// SIGSTOPped by the lab.
    Paused,
    /// Ended by itself (see the `Died` event for why).
    Died,
}

/// One node's identity, process and addresses.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub id: i32,
    pub pid: Option<u32>,
    pub state: NodeState,
    /// The broker's own Kafka listener (bypasses the fabric).
    pub kafka_direct: SocketAddr,
    /// What the broker advertises and clients use: the fabric's client proxy for this node, or
    /// `kafka_direct` itself with `direct_links`.
    pub kafka_advertised: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    pub data_dir: PathBuf,
    pub config_file: PathBuf,
}
