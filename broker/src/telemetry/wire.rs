//! The node's telemetry contract: the words with a closed set of values, and the group name.
//!
//! Every type a node writes on its HTTP endpoint derives `Serialize` and `Deserialize`, and the
//! lab (`labs`) reads the answers back into the same types (decision 37), so a field renamed here
//! breaks the build of both sides instead of a key lookup at run time. Where they live:
//!
//! | answer                    | type                                                              |
//! |---------------------------|-------------------------------------------------------------------|
//! | `GET /state`              | [`crate::state::StateSnapshot`] (its `raft`: [`crate::cluster::ClusterSnapshot`]) |
//! | `GET /raft/summary`       | [`crate::cluster::summary::RaftSummary`]                          |
//! | `GET /raft/groups`        | `Vec<`[`GroupState`]`>`                                         |
//! | `GET /partitions`         | `Vec<`[`crate::state::PartitionState`]`>`                         |
//! | `GET /raft/trace`         | [`crate::cluster::rpc_trace::TraceAnswer`]                        |
//! | `POST /raft/trace/watch`  | [`TraceWatch`]                                                    |
//! | `GET /events` (each SSE)  | [`crate::telemetry::Event`]                                       |
//! | `GET /memory`             | [`crate::telemetry::memory::MemoryReport`]                        |
//! | `GET /digest`             | `Vec<`[`crate::endpoint::PartitionDigest`]`>`                                  |
//! | stdout, once serving      | [`ReadyLine`] (`clusterlab-broker`'s only stdout line)            |
//!
//! The types built from the node's internals stay beside the code that builds them; this module
//! holds what has no other home, and the Raft group snapshot the event stream carries
//! (`GroupState`, built in `cluster::watch`), and imports nothing of the crate, so anything may
//! use it.
//! The types the lab shows in its UI also derive `ts_rs::TS`: `ui/src/api/generated.ts` is
//! written from them (`labs/src/lab/ts_export.rs`).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use crate::group_id::{GroupId, CONTROLLER_GROUP};

/// One snapshot of a group's Raft state, as telemetry and `/state` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct GroupState {
    pub group: GroupId,
    pub term: u64,
    /// Who this node voted for in `term`, and whether that vote is committed (a leader exists).
    pub voted_for: Option<u64>,
    pub vote_committed: bool,
    pub role: Role,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// On the leader: each member's matched log index.
    #[serde(deserialize_with = "node_keyed")]
    pub matched: std::collections::BTreeMap<u64, Option<u64>>,
    pub voters: Vec<u64>,
}

/// A node's role in one Raft group, as `/state`, `/events` and `/raft/trace` report it.
/// openraft's server states, plus `IsolatedLeader`: a leader its majority no longer answers.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    TS,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
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
        self.into()
    }
}

/// A step of an election in one group (telemetry `election` events).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    TS,
    strum::IntoStaticStr,
    strum::Display,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
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
        self.into()
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
    pub watched: Option<GroupId>,
}

/// The line `clusterlab-broker` prints on stdout once it serves, the one sign a launcher waits
/// for: `{"event":"ready","http":"127.0.0.1:9080","kafka":"127.0.0.1:9092","node_id":1,
/// "pid":4242,"raft":"127.0.0.1:9093"}` (`raft` is null for a single node). Fields are declared
/// in the order the line always had them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyLine {
    pub event: ReadyEvent,
    pub http: SocketAddr,
    pub kafka: SocketAddr,
    pub node_id: i32,
    pub pid: u32,
    pub raft: Option<SocketAddr>,
}

/// The ready line's `event`: one word, so any other JSON on stdout is not taken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyEvent {
    Ready,
}

impl ReadyLine {
    /// The ready line, if `line` is one.
    pub fn parse(line: &str) -> Option<ReadyLine> {
        serde_json::from_str(line).ok()
    }
}

impl std::fmt::Display for ReadyLine {
    /// The line as printed (compact JSON).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// The Raft group name of a partition, `<topic>-<partition>`: [`GroupId`]'s spelling, for the
/// places that hold names (maps keyed by name, requests).
pub fn partition_group(topic: &str, partition: i32) -> String {
    GroupId::partition(topic, partition).to_string()
}

/// Which node leads a group, from several nodes' reports of it: the one that says it leads, in
/// the highest term any reports (a deposed leader that has not noticed yet reports an older term
/// and loses). How every reader of many nodes' `/state` picks a leader.
pub fn claimed_leader<'a, N>(
    reports: impl IntoIterator<Item = (N, &'a GroupState)>,
) -> Option<(N, &'a GroupState)> {
    reports.into_iter().filter(|(_, g)| g.role == Role::Leader).max_by_key(|(_, g)| g.term)
}

/// For maps keyed by node id (`#[serde(deserialize_with = "node_keyed")]`). JSON object keys are
/// strings; serde reads them back as numbers when the map is read straight from text, but not
/// from inside a flattened or internally tagged type (an event, a timeline entry), which serde
/// buffers first. This reads either.
pub fn node_keyed<'de, D, V>(d: D) -> Result<std::collections::BTreeMap<u64, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    let raw: std::collections::BTreeMap<NodeKey, V> = Deserialize::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct NodeKey(u64);

impl<'de> Deserialize<'de> for NodeKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = NodeKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a node id, as a number or a string of digits")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NodeKey, E> {
                Ok(NodeKey(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NodeKey, E> {
                v.parse().map(NodeKey).map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_wire_spelling() {
        assert_eq!(serde_json::to_string(&Role::IsolatedLeader).unwrap(), "\"IsolatedLeader\"");
        assert_eq!(serde_json::to_string(&ElectionPhase::LeaderKnown).unwrap(), "\"leader_known\"");
        assert_eq!(serde_json::to_string(&LifecyclePhase::HandingOff).unwrap(), "\"handing_off\"");
        // The derived names (as_str, Display) are serde's, for every variant.
        for r in <Role as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_string(r).unwrap(), format!("\"{}\"", r.as_str()));
            assert_eq!(r.to_string(), r.as_str());
        }
        for p in <ElectionPhase as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_string(p).unwrap(), format!("\"{p}\""));
        }
        assert_eq!(partition_group("orders", 3), "orders-3");
    }

    /// Node-keyed maps read back from inside an internally tagged enum, where serde buffers
    /// the keys as strings.
    #[test]
    fn node_keyed_maps_read_back_from_inside_a_tagged_enum() {
        #[derive(Deserialize, PartialEq, Debug)]
        #[serde(tag = "type")]
        enum Tagged {
            M {
                #[serde(deserialize_with = "node_keyed")]
                matched: std::collections::BTreeMap<u64, Option<u64>>,
            },
        }
        let t: Tagged = serde_json::from_str(r#"{"type":"M","matched":{"1":7,"3":null}}"#).unwrap();
        assert_eq!(t, Tagged::M { matched: [(1, Some(7)), (3, None)].into_iter().collect() });
        assert!(serde_json::from_str::<Tagged>(r#"{"type":"M","matched":{"x":1}}"#).is_err());
    }

    /// The ready line as the broker always printed it (serde_json's `json!` sorted its keys),
    /// and nothing else taken for one.
    #[test]
    fn ready_line_keeps_its_spelling() {
        let line = concat!(
            r#"{"event":"ready","http":"127.0.0.1:4001","kafka":"127.0.0.1:4000","#,
            r#""node_id":2,"pid":7,"raft":null}"#
        );
        let ready = ReadyLine::parse(line).expect("a ready line");
        assert_eq!((ready.kafka.port(), ready.node_id, ready.raft), (4000, 2, None));
        assert_eq!(ready.to_string(), line);
        assert_eq!(ReadyLine::parse(&line.replace("\"ready\"", "\"started\"")), None);
        assert_eq!(ReadyLine::parse("2026-01-01 INFO started"), None);
    }
}
