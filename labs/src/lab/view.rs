//! What the lab knows about the cluster right now, read from every node's `/state`: who leads
//! each Raft group, in which term, and who votes. Role targets (`leader:t/0`, `controller`,
//! `follower:t/0`) are resolved against it at the moment a fault runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use broker::state::StateSnapshot;
use broker::telemetry::wire::{claimed_leader, GroupState, CONTROLLER_GROUP};
use serde::Serialize;

use crate::node_client::typed::{self, StateParts};

/// A healthy node answers `/state` in milliseconds even on a loaded debug build; a second is
/// generous, and short enough that a drill's wait on "a new leader" notices it promptly.
const OBSERVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Every group's state, without the per-partition offsets a view does not use (drills poll this
/// every few tens of milliseconds while they wait).
const STATE_PARTS: StateParts = StateParts::GROUPS;

/// One group's leadership as observed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupLeader {
    pub leader: i32,
    pub term: u64,
    pub voters: Vec<i32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterView {
    /// Node id -> its `/state` (None: it did not answer).
    pub states: BTreeMap<i32, Option<Arc<StateSnapshot>>>,
    /// Group name ("controller", "<topic>-<p>") -> the leader that says so itself, highest term.
    pub leaders: BTreeMap<String, GroupLeader>,
}

impl ClusterView {
    /// Asks every node for `/state` at once; a node that does not answer within
    /// `OBSERVE_TIMEOUT` (paused, overloaded) counts as not answering this time.
    pub async fn observe(nodes: &[(i32, SocketAddr)]) -> ClusterView {
        let calls = nodes.iter().map(|(id, addr)| async move {
            (*id, typed::state(*addr, STATE_PARTS, OBSERVE_TIMEOUT).await.ok().map(Arc::new))
        });
        let states: BTreeMap<i32, Option<Arc<StateSnapshot>>> =
            futures::future::join_all(calls).await.into_iter().collect();
        // Every node's report of every group; only a node that believes it leads counts, since
        // followers may know a stale leader (`claimed_leader`).
        let mut reports: BTreeMap<String, Vec<(i32, &GroupState)>> = BTreeMap::new();
        for (id, state) in &states {
            let Some(raft) = state.as_ref().and_then(|s| s.raft.as_ref()) else { continue };
            for g in &raft.groups {
                reports.entry(g.group.to_string()).or_default().push((*id, g));
            }
        }
        let leaders = reports
            .into_iter()
            .filter_map(|(group, r)| {
                let (leader, g) = claimed_leader(r)?;
                let voters = g.voters.iter().map(|v| *v as i32).collect();
                Some((group, GroupLeader { leader, term: g.term, voters }))
            })
            .collect();
        ClusterView { states, leaders }
    }

    pub fn leader_of(&self, group: &str) -> Option<&GroupLeader> {
        self.leaders.get(group)
    }

    /// The group name of a partition as nodes report it.
    pub fn partition_group(topic: &str, partition: u32) -> String {
        broker::telemetry::wire::partition_group(topic, partition as i32)
    }

    /// Nodes that answered.
    pub fn alive(&self) -> Vec<i32> {
        self.states.iter().filter(|(_, s)| s.is_some()).map(|(id, _)| *id).collect()
    }

    /// Every partition group of `topic` has a leader (and the controller too, in cluster mode).
    pub fn all_leaders(&self, topic: &str, partitions: u32) -> bool {
        (0..partitions).all(|p| self.leaders.contains_key(&Self::partition_group(topic, p)))
    }

    /// The node leading the most partition groups (ties: the lowest id).
    pub fn busiest(&self) -> Option<i32> {
        let mut led: BTreeMap<i32, usize> = BTreeMap::new();
        for (_, l) in self.leaders.iter().filter(|(g, _)| g.as_str() != CONTROLLER_GROUP) {
            *led.entry(l.leader).or_default() += 1;
        }
        led.into_iter().max_by_key(|(id, n)| (*n, -id)).map(|(id, _)| id)
    }

    /// Each partition group's leader term, as observed (the controller left out).
    pub fn partition_terms(&self) -> BTreeMap<String, u64> {
        self.leaders
            .iter()
            .filter(|(g, _)| g.as_str() != CONTROLLER_GROUP)
            .map(|(g, l)| (g.clone(), l.term))
            .collect()
    }

    /// A node's applied index of a group, as it reports it.
    pub fn applied(&self, node: i32, group: &str) -> Option<u64> {
        let raft = self.states.get(&node)?.as_ref()?.raft.as_ref()?;
        raft.groups.iter().find(|g| g.group == group)?.applied_index
    }
}
