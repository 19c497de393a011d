//! `GET /raft/trace`: the node's RPC-level Raft events (`raft/trace.rs`) with the watched
//! group's state on this replica — its log tail by term, committed and flushed index, and how
//! long ago this node last heard from the group's leader (the node's failure detector suspects
//! it `suspect_after_ms` after that: the election deadline of quiet groups).

use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::raft::trace::TracePage;
use crate::raft::typ::NodeId;
use crate::telemetry::wire::GroupId;

/// Entries of the watched group's log tail shown per replica: what fits in a row of the view.
const TAIL_ENTRIES: u64 = 40;

/// One answer to `GET /raft/trace`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceAnswer {
    #[serde(flatten)]
    pub page: TracePage,
    pub suspect_after_ms: u64,
    /// The watched group as this replica has it (None: not hosted here, or nothing watched).
    pub replica: Option<ReplicaLog>,
}

/// The watched group on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ReplicaLog {
    /// When this state was read, wall-clock Unix nanoseconds (None only in runs recorded before
    /// nodes said it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub at_ns: Option<u64>,
    pub group: GroupId,
    pub term: u64,
    pub role: crate::telemetry::wire::Role,
    pub leader: Option<NodeId>,
    pub voted_for: Option<NodeId>,
    /// Entries in the log (the next index).
    pub entries: u64,
    /// Runs `(term, first index, last index)` of the last entries, oldest first.
    pub tail: Vec<(u64, u64, u64)>,
    /// Applied index (openraft applies as soon as it knows an entry is committed).
    pub committed: Option<u64>,
    /// Last index known to be fsynced on this node.
    pub flushed: Option<u64>,
    /// Milliseconds since this node last heard from the leader's node (None: it leads, or no
    /// leader is known).
    pub heard_leader_ms_ago: Option<u64>,
    /// On the leader: each member's matched index.
    #[serde(deserialize_with = "crate::telemetry::wire::node_keyed")]
    pub matched: std::collections::BTreeMap<NodeId, Option<u64>>,
}

impl Cluster {
    pub fn trace_page(&self, since: u64, limit: usize) -> TraceAnswer {
        let trace = self.transport.trace();
        let page = trace.page(since, limit);
        let replica = trace.watched().and_then(|id| self.group(&id)).map(|g| {
            let (m, v) = (g.metrics(), g.view());
            let entries = g.log.entry_count();
            let tail = g.log.index_tail(entries.saturating_sub(TAIL_ENTRIES), entries);
            let flushed_entries = g.log.flushed_entries();
            let mut runs: Vec<(u64, u64, u64)> = Vec::new();
            for (index, term, _) in &tail {
                match runs.last_mut() {
                    Some((t, _, last)) if t == term => *last = *index,
                    _ => runs.push((*term, *index, *index)),
                }
            }
            let flushed =
                tail.iter().take_while(|(index, _, _)| *index < flushed_entries).last().map(|e| e.0);
            let heard_leader_ms_ago = match v.leader {
                Some(l) if l != self.node_id => {
                    self.liveness.snapshot().into_iter().find(|p| p.id == l).and_then(|p| p.heard_ms_ago)
                }
                _ => None,
            };
            let state = crate::cluster::watch::GroupState::of(&g, &m, &v);
            ReplicaLog {
                at_ns: Some(crate::telemetry::now_ns()),
                group: g.id.clone(),
                term: v.term,
                role: state.role,
                leader: v.leader,
                voted_for: state.voted_for,
                entries,
                tail: runs,
                committed: v.applied,
                flushed,
                heard_leader_ms_ago,
                matched: state.matched,
            }
        });
        TraceAnswer { page, suspect_after_ms: self.liveness.suspect_after().as_millis() as u64, replica }
    }

    /// Chooses the group whose messages are recorded in full (`None`: only counters). A name this
    /// node does not host is accepted: the group may be created here later.
    pub fn watch_group(&self, name: Option<&str>) -> Result<Option<GroupId>, String> {
        let group = name.map(str::parse::<GroupId>).transpose()?;
        self.transport.trace().watch(group.clone());
        Ok(group)
    }
}
