//! What this node reports about its Raft groups, at any number of groups.
//!
//! - [`ClusterSnapshot`]: `/state`'s `raft` section. With `?raft=summary` it leaves out the
//!   per-group list and the replicated metadata, which at 10,000 partitions is megabytes per poll.
//! - [`RaftSummary`]: `GET /raft/summary`, counts only (leaders per node, groups this node leads,
//!   follows, or sees without a live leader, per topic), cheap enough to poll every few ms.
//! - `GET /raft/groups?topic=&offset=&limit=`: the per-group states a page at a time.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::ServerState;
use serde::{Deserialize, Serialize};

use crate::cluster::liveness::PeerLiveness;
use crate::cluster::metadata::ClusterMetadata;
use crate::cluster::raft_group::RaftGroup;
use crate::cluster::watch::GroupState;
use crate::cluster::Cluster;
use crate::raft::typ::{GroupId, NodeId};

/// Names of leaderless groups listed in a summary (the count is always exact).
const LEADERLESS_SAMPLE: usize = 20;
/// Largest page of `/raft/groups`.
pub const MAX_PAGE: usize = 10_000;

/// `/state` in cluster mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct ClusterSnapshot {
    pub node_id: NodeId,
    pub controller_leader: Option<NodeId>,
    /// Every group's state (empty when `/state?raft=summary` asked for the summary only).
    pub groups: Vec<GroupState>,
    pub summary: RaftSummary,
    pub peers: Vec<crate::raft::transport::PeerStatus>,
    /// The replicated topic assignments and committed consumer offsets; left out with the
    /// per-group list (hundreds of KB at 10,000 partitions, and no summary reader uses it).
    /// The UI does not show it: no TypeScript for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(skip)]
    pub metadata: Option<Arc<ClusterMetadata>>,
}

/// Counts over every group this node hosts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RaftSummary {
    pub node_id: NodeId,
    pub controller_leader: Option<NodeId>,
    /// Groups hosted here, the controller included.
    pub groups: usize,
    /// Groups this node leads, confirmed by a majority.
    pub leading: usize,
    /// Groups where openraft says Leader but the majority does not answer (or never did).
    pub leading_unconfirmed: usize,
    /// Groups following a leader this node can hear.
    pub following: usize,
    /// Groups with no leader this node can hear (none known, or its node is suspected).
    pub leaderless: usize,
    pub candidates: usize,
    /// Groups by the leader this node believes in (confirmed or not).
    #[serde(deserialize_with = "crate::telemetry::wire::node_keyed")]
    pub leaders: BTreeMap<NodeId, usize>,
    pub max_term: u64,
    pub topics: BTreeMap<String, TopicSummary>,
    /// Up to 20 leaderless group names, to look at.
    pub leaderless_sample: Vec<String>,
    pub peers: Vec<PeerLiveness>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct TopicSummary {
    pub hosted: usize,
    pub leading: usize,
    pub leaderless: usize,
}

impl Cluster {
    fn all_groups(&self) -> Vec<Arc<RaftGroup>> {
        let mut groups = vec![Arc::clone(&self.controller)];
        groups.extend(self.partition_groups());
        groups
    }

    pub fn summary(&self) -> RaftSummary {
        let mut s = RaftSummary {
            node_id: self.node_id,
            controller_leader: self.controller_leader(),
            peers: self.liveness.snapshot(),
            ..RaftSummary::default()
        };
        for g in self.all_groups() {
            let v = g.view();
            s.groups += 1;
            s.max_term = s.max_term.max(v.term);
            let topic = match &g.id {
                GroupId::Controller => None,
                GroupId::Partition { topic, .. } => Some(s.topics.entry(topic.clone()).or_default()),
            };
            if let Some(l) = v.leader {
                *s.leaders.entry(l).or_default() += 1;
            }
            let (leading, leaderless) = match v.leader {
                Some(l) if l == self.node_id && g.confirmed(&v) => {
                    s.leading += 1;
                    (true, false)
                }
                Some(l) if l == self.node_id => {
                    s.leading_unconfirmed += 1;
                    (false, true)
                }
                Some(l) if self.liveness.is_live(l) => {
                    s.following += 1;
                    (false, false)
                }
                _ => (false, true),
            };
            if v.state == ServerState::Candidate {
                s.candidates += 1;
            }
            if leaderless {
                s.leaderless += 1;
                if s.leaderless_sample.len() < LEADERLESS_SAMPLE {
                    s.leaderless_sample.push(g.id.to_string());
                }
            }
            if let Some(t) = topic {
                t.hosted += 1;
                t.leading += usize::from(leading);
                t.leaderless += usize::from(leaderless);
            }
        }
        s
    }

    /// `/state`'s `raft` section; `groups: false` leaves the per-group list and the metadata out.
    pub fn snapshot(&self, groups: bool) -> ClusterSnapshot {
        let state = |g: &RaftGroup| GroupState::of(g, &g.metrics(), &g.view());
        ClusterSnapshot {
            node_id: self.node_id,
            controller_leader: self.controller_leader(),
            groups: if groups { self.all_groups().iter().map(|g| state(g)).collect() } else { Vec::new() },
            summary: self.summary(),
            peers: self.transport.peer_status(),
            metadata: groups.then(|| self.metadata()),
        }
    }

    /// One page of group states, optionally of one topic (`"controller"` names the controller).
    pub fn group_page(&self, topic: Option<&str>, offset: usize, limit: usize) -> Vec<GroupState> {
        self.all_groups()
            .into_iter()
            .filter(|g| match (topic, &g.id) {
                (None, _) => true,
                (Some(t), GroupId::Partition { topic, .. }) => t == topic,
                (Some(t), GroupId::Controller) => t == "controller",
            })
            .skip(offset)
            .take(limit.min(MAX_PAGE))
            .map(|g| GroupState::of(&g, &g.metrics(), &g.view()))
            .collect()
    }
}
