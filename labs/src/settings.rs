//! The settings a cluster is started with, and the lab's one set of defaults.
//!
//! Its own module, below everything that reads it: the supervisor (node configs), drills (their
//! `[setup]`), the lab protocol (which re-exports it), the CLI flags and the bench. When it lived
//! in `lab::protocol`, the supervisor and the drill parser depended on the lab, which depends on
//! them (issue 12).

use serde::{Deserialize, Serialize};

/// Cluster settings chosen before start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    pub nodes: usize,
    /// "always", "interval:<ms>" or "never".
    pub fsync: String,
    pub partitions: i32,
    pub replication_factor: i16,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_ms: u64,
    /// Refused by the broker (openraft 0.9 has none); kept so the UI can show why.
    pub pre_vote: bool,
    /// Workload defaults.
    pub acks: String,
    pub idempotence: bool,
}

/// The lab's one set of defaults (the broker's own Raft timing): the supervisor, the drills, the
/// bench and the CLI flags take theirs from here, and the UI's test reads this block.
impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            nodes: 3,
            fsync: "always".into(),
            partitions: 3,
            replication_factor: 3,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_ms: 50,
            pre_vote: false,
            acks: "all".into(),
            idempotence: true,
        }
    }
}

impl ClusterSettings {
    /// Raft slowed down ten times so that a room can follow it in the Raft view: one node
    /// heartbeat every half second, a leader suspected after three silent seconds. Everything
    /// else as by default. (The UI's "Teaching tempo" button; its test reads this block.)
    pub fn teaching_tempo() -> ClusterSettings {
        ClusterSettings {
            election_timeout_min_ms: 1500,
            election_timeout_max_ms: 3000,
            heartbeat_ms: 500,
            ..ClusterSettings::default()
        }
    }
}
