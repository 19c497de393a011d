//! Who leads the partitions this node holds no replica of.
//!
//! A node knows the leader of a group it hosts from its own copy of the group. With as many
//! replicas as nodes (three nodes, RF 3) that is every group. With fewer (a five-node lab with
//! RF 3, or `replication_factor = 1`) a node answering Metadata named no leader for the
//! partitions it does not host, and a client that asked it never found them: its produce timed
//! out. Kafka's brokers learn every leader from the controller (UpdateMetadata); here each
//! leader tells the other nodes itself, on the node heartbeat that already runs per peer:
//!
//! - the heartbeat carries the version of the sender's leaderships, bumped whenever one of its
//!   groups changes term, leader or confirmation, and when its groups or its peers' liveness
//!   change;
//! - a peer holding another version answers "send them", and the sender sends, whole, the
//!   groups it leads that this peer does not host ([`RaftRequest::Leads`]).
//!
//! With as many replicas as nodes those lists are empty, so what this costs there is two numbers
//! on each heartbeat. A version names the sender's start time too, so a restarted node's versions
//! never match what its peers hold of its previous run.
//!
//! [`RaftRequest::Leads`]: crate::raft::transport::RaftRequest::Leads

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::raft::transport::{LeadEntry, LeadsVersion};
use crate::raft::typ::NodeId;

/// What one peer last said it leads.
struct Announced {
    /// None: some of the list was not taken, so the next heartbeat asks for it again.
    version: Option<LeadsVersion>,
    /// topic -> partition -> term (by topic first, so a lookup needs no owned key).
    leads: HashMap<String, HashMap<i32, u64>>,
}

/// This node's leadership version, and the leaderships its peers announced.
pub struct LeaderDirectory {
    started_us: u64,
    changes: AtomicU64,
    peers: Mutex<BTreeMap<NodeId, Announced>>,
}

impl Default for LeaderDirectory {
    fn default() -> Self {
        let started_us = crate::telemetry::now_ns() / 1_000;
        LeaderDirectory { started_us, changes: AtomicU64::new(0), peers: Mutex::default() }
    }
}

impl LeaderDirectory {
    /// Something this node leads (or may announce) changed: peers will ask for the list again.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// The version of this node's leaderships, to read before the list is made.
    pub fn version(&self) -> LeadsVersion {
        LeadsVersion { started_us: self.started_us, changes: self.changes.load(Ordering::Relaxed) }
    }

    /// Whether this node holds `peer`'s list as of `version`.
    pub fn holds(&self, peer: NodeId, version: LeadsVersion) -> bool {
        self.lock().get(&peer).is_some_and(|a| a.version == Some(version))
    }

    /// `peer`'s whole list, replacing what it said before; `version` None to have it sent again.
    pub fn replace(&self, peer: NodeId, version: Option<LeadsVersion>, leads: Vec<LeadEntry>) {
        let mut by_topic: HashMap<String, HashMap<i32, u64>> = HashMap::new();
        for l in leads {
            by_topic.entry(l.topic).or_default().insert(l.partition, l.term);
        }
        self.lock().insert(peer, Announced { version, leads: by_topic });
    }

    /// (leader, term) of a partition this node does not host: of the peers `reachable` says
    /// can be reached, the one announcing the highest term. A deposed leader that has not yet
    /// heard of its successor still announces its old term, so the highest term wins.
    pub fn leader_of(
        &self,
        topic: &str,
        partition: i32,
        reachable: impl Fn(NodeId) -> bool,
    ) -> Option<(NodeId, u64)> {
        self.lock()
            .iter()
            .filter_map(|(peer, a)| a.leads.get(topic)?.get(&partition).map(|term| (*peer, *term)))
            .filter(|(peer, _)| reachable(*peer))
            .max_by_key(|(_, term)| *term)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, Announced>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(changes: u64) -> LeadsVersion {
        LeadsVersion { started_us: 1, changes }
    }

    fn lead(topic: &str, partition: i32, term: u64) -> LeadEntry {
        LeadEntry { topic: topic.into(), partition, term }
    }

    #[test]
    fn the_reachable_peer_with_the_highest_term_leads() {
        let d = LeaderDirectory::default();
        assert_eq!(d.leader_of("t", 0, |_| true), None, "nothing announced yet");
        d.replace(2, Some(v(7)), vec![lead("t", 0, 3), lead("t", 1, 1)]);
        d.replace(3, Some(v(9)), vec![lead("t", 0, 4)]);
        assert_eq!(d.leader_of("t", 0, |_| true), Some((3, 4)), "the successor's term wins");
        assert_eq!(d.leader_of("t", 0, |p| p != 3), Some((2, 3)), "an unreachable leader is not named");
        assert_eq!(d.leader_of("t", 1, |_| true), Some((2, 1)));
        assert!(d.holds(2, v(7)) && !d.holds(2, v(8)) && !d.holds(4, v(7)));
        let restarted = LeadsVersion { started_us: 2, changes: 7 };
        assert!(!d.holds(2, restarted), "a restarted node's version matches nothing of its last run");
        d.replace(2, None, vec![]);
        assert_eq!(d.leader_of("t", 1, |_| true), None, "a new list replaces the old one whole");
        assert!(!d.holds(2, v(8)), "a list not taken whole is asked for again");
    }

    #[test]
    fn every_change_moves_the_version() {
        let d = LeaderDirectory::default();
        let v = d.version();
        d.changed();
        assert_ne!(d.version(), v);
        assert_eq!(d.version().started_us, v.started_us);
    }
}
