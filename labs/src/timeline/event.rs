//! The timeline's event model: one ordered log for a whole run.

use broker::cluster::rpc_trace::ReplicaLog;
use broker::raft::trace::TraceEvent;
use broker::telemetry::memory::MemoryReport;
use broker::telemetry::wire::{ElectionPhase, GroupId, Role};
use serde::{Deserialize, Serialize};

use crate::checker::AnomalyKind;
use crate::history::Op;

/// Who an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Source {
    /// The lab itself (faults, drill steps, checks).
    Lab,
    /// A broker node, by node id.
    Node(i32),
    /// A client (producer / consumer) by process number.
    Client(u32),
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct TimelineEvent {
    /// Position in the timeline (assigned on append; strictly increasing).
    pub seq: u64,
    /// Wall-clock Unix nanoseconds.
    pub ts_ns: u64,
    pub source: Source,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// A fault was applied or healed.
    Fault {
        fault: FaultName,
        target: String,
        detail: Option<String>,
    },
    /// A node process changed (source: the node), or the cluster as a whole (source: the lab).
    Process {
        state: ProcessPhase,
        pid: Option<u32>,
        detail: Option<String>,
    },
    /// A Raft group's state on a node (from the node's telemetry `raft` events).
    Raft {
        group: GroupId,
        term: u64,
        role: Role,
        leader: Option<u64>,
        last_log_index: Option<u64>,
        applied_index: Option<u64>,
        voted_for: Option<u64>,
    },
    /// An election phase in a group.
    Election {
        group: GroupId,
        term: u64,
        phase: ElectionPhase,
        leader: Option<u64>,
    },
    /// A partition replica's offsets on a node (appended = log end, flushed, committed = high watermark).
    Offsets {
        topic: String,
        partition: i32,
        log_end_offset: i64,
        flushed_offset: i64,
        high_watermark: i64,
    },
    /// RPC-level Raft telemetry of the watched group from every node, one batch per poll
    /// (`lab/raft_trace.rs`): each node's new events and its replica of the group.
    RaftTrace {
        group: Option<GroupId>,
        nodes: Vec<NodeTrace>,
    },
    /// Any other node telemetry, kept as it came.
    Telemetry {
        #[ts(type = "unknown")]
        data: serde_json::Value,
    },
    /// A client operation (see `history`).
    Client {
        op: Op,
    },
    /// CPU / memory / disk of a node process.
    Resources {
        cpu_percent: f32,
        /// Resident set size.
        memory_bytes: u64,
        disk_bytes: u64,
        /// The node's own account (heap in use, held free, log index), when it answered;
        /// timelines written before it existed have none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node_memory: Option<MemoryReport>,
    },
    /// A line a node wrote to stdout/stderr.
    Log {
        stream: String,
        line: String,
    },
    /// A drill step began or a narration line for the audience.
    Step {
        index: usize,
        description: String,
    },
    Narration {
        text: String,
    },
    /// A checker finding (live or final) or a refused start a drill expected (see [`CheckName`]).
    Check {
        anomaly: CheckName,
        detail: String,
    },
    /// The final verdict of a drill or check.
    Verdict {
        ok: bool,
        summary: String,
    },
}

/// The faults (and heals), as a drill writes them (`fault = "..."`; serde's unknown-variant error
/// lists them all) and as a `fault` event records them: one closed set, so drills, the window's
/// fault bands and the exports name the same things.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ts_rs::TS,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum FaultName {
    Kill,
    Stop,
    Pause,
    Resume,
    Restart,
    PowerCut,
    SlowDisk,
    FsyncFail,
    /// A segment byte flipped while the node is down (one event for the step, then one per node
    /// with the byte in its detail).
    CorruptSegment,
    /// A foreign listener holds a node's port before start-up.
    TakePort,
    Isolate,
    Split,
    Bridge,
    CutLink,
    DelayLink,
    BlackholeLink,
    Toxic,
    /// Every link passes again.
    Heal,
    HealLink,
}

impl FaultName {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a `check` event names, as one word in its JSON (the recorded timelines' format): an
/// anomaly kind the final check found (`lost_write`), one the live checker raised while the run
/// went (`live:lost_write`), or a start the drill expected to be refused and that was
/// (`start_refused`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(into = "String", try_from = "String")]
#[ts(type = "AnomalyKind | `live:${AnomalyKind}` | \"start_refused\"")]
pub enum CheckName {
    Found(AnomalyKind),
    Live(AnomalyKind),
    StartRefused,
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckName::Found(k) => write!(f, "{k}"),
            CheckName::Live(k) => write!(f, "live:{k}"),
            CheckName::StartRefused => f.write_str("start_refused"),
        }
    }
}

impl From<CheckName> for String {
    fn from(c: CheckName) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for CheckName {
    type Error = String;

    /// The anomaly kind's error lists the valid names.
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "start_refused" => Ok(CheckName::StartRefused),
            _ => match s.strip_prefix("live:") {
                Some(k) => k.parse().map(CheckName::Live),
                None => s.parse().map(CheckName::Found),
            },
        }
    }
}

/// What a `process` event says.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ts_rs::TS,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ProcessPhase {
    /// A node process was spawned; not serving yet.
    Started,
    /// It printed its ready line.
    Ready,
    /// It ended because the lab asked (stop, kill, power cut, shutdown).
    Exited,
    /// It ended by itself: a crash, a panic, a failed start.
    Died,
    /// The lab started a cluster (a new run begins).
    ClusterStarted,
    /// The lab stopped the cluster.
    ClusterStopped,
}

impl ProcessPhase {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One node's part of a [`EventKind::RaftTrace`] batch, as its `GET /raft/trace` said it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct NodeTrace {
    pub node: i32,
    /// Its events (votes, appends, node heartbeats, campaigns, commits, truncations), in seq order.
    pub events: Vec<TraceEvent>,
    /// Its replica of the group (log tail by term, committed, flushed, role), when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaLog>,
    /// Events the node dropped from its ring before the lab read them.
    #[serde(default)]
    pub missed: u64,
    /// Milliseconds of silence after which the node suspects a peer (the election deadline).
    #[serde(default)]
    pub suspect_after_ms: u64,
}

impl TimelineEvent {
    /// A short label for charts and traces.
    pub fn label(&self) -> String {
        match &self.kind {
            EventKind::Fault { fault, target, .. } => format!("{fault} {target}"),
            EventKind::Process { state, .. } => state.as_str().to_string(),
            EventKind::Raft { group, term, role, .. } => format!("{group} {role} t{term}"),
            EventKind::Election { group, term, phase, .. } => format!("{group} election {phase} t{term}"),
            EventKind::Offsets { topic, partition, high_watermark, .. } => {
                format!("{topic}-{partition} hw {high_watermark}")
            }
            EventKind::RaftTrace { group, nodes } => format!(
                "{} raft messages of {}",
                nodes.iter().map(|n| n.events.len()).sum::<usize>(),
                group.as_ref().map_or_else(|| "no group".to_string(), ToString::to_string)
            ),
            EventKind::Telemetry { .. } => "telemetry".into(),
            EventKind::Client { op } => format!("{:?} {:?}", op.kind, op.op_type),
            EventKind::Resources { cpu_percent, .. } => format!("cpu {cpu_percent:.0}%"),
            EventKind::Log { line, .. } => line.clone(),
            EventKind::Step { description, .. } => description.clone(),
            EventKind::Narration { text } => text.clone(),
            EventKind::Check { anomaly, .. } => anomaly.to_string(),
            EventKind::Verdict { ok, .. } => {
                if *ok {
                    "verdict: ok".into()
                } else {
                    "verdict: FAILED".into()
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The derived names (as_str, Display) are serde's, for every variant.
    #[test]
    fn fault_and_phase_names_are_their_serde_names() {
        for f in <FaultName as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_string(f).unwrap(), format!("\"{}\"", f.as_str()));
            assert_eq!(f.to_string(), f.as_str());
        }
        for p in <ProcessPhase as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{}\"", p.as_str()));
        }
    }

    /// Check events as recorded timelines hold them load, and are written back byte for byte.
    #[test]
    fn check_events_keep_their_recorded_json() {
        for name in ["lost_write", "live:poll_skip", "start_refused"] {
            let line = format!(
                r#"{{"seq":1,"ts_ns":2,"source":{{"kind":"lab"}},"type":"check","anomaly":"{name}","detail":"d"}}"#
            );
            let e: TimelineEvent = serde_json::from_str(&line).unwrap();
            assert_eq!(serde_json::to_string(&e).unwrap(), line);
        }
        let err = serde_json::from_str::<TimelineEvent>(
            r#"{"seq":1,"ts_ns":2,"source":{"kind":"lab"},"type":"check","anomaly":"live:lost","detail":""}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown anomaly kind 'lost'; the kinds are: lost_write,"), "{err}");
    }
}
