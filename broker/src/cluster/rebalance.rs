//! Preferred-leader rebalancing, as Kafka's `auto.leader.rebalance.enable`.
//!
//! After a node returns, the partitions it is the preferred leader of are led elsewhere. Every
//! `CHECK_EVERY` each leader looks at the groups it leads but is not preferred for; where the
//! preferred replica is live, has matched the whole log and the partition has been quiet for
//! `QUIET_FOR` — or has been led here for `BUSY_AFTER` without ever being quiet, as under a
//! steady workload — the leader hands the group over (asks that replica to campaign, as a
//! graceful stop does). The leader knows exactly how far each follower got, so a hand-off never
//! goes to a replica that would be refused for a shorter log; an append still in flight is
//! refused and retried by the client, as after any leader change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::elections::ask_to_campaign;
use crate::cluster::raft_group::RaftGroup;
use crate::cluster::Cluster;
use crate::raft::typ::{GroupId, NodeId};

/// Kafka checks every 300 s; a lab wants to see it within seconds.
const CHECK_EVERY: Duration = Duration::from_secs(3);
/// No new entries applied for this long before leadership moves.
const QUIET_FOR: Duration = Duration::from_secs(2);
/// A partition that is never quiet moves after this long anyway: Kafka's rebalance does not wait
/// for traffic to stop, and under a lab's steady workload the skew would otherwise stay.
const BUSY_AFTER: Duration = Duration::from_secs(15);
/// At most this many hand-offs per check, so a returning node takes its groups back in waves
/// rather than as one storm of elections.
const HAND_OFFS_PER_CHECK: usize = 256;

/// What the rebalancer remembers about a group this node leads.
struct Watch {
    /// The applied index last seen, and when it last changed.
    applied: Option<u64>,
    changed: Instant,
    /// Since when this node has led the group (or last tried to hand it over).
    since: Instant,
}

impl Cluster {
    pub(crate) async fn rebalance_leaders(self: Arc<Self>) {
        let mut seen: HashMap<GroupId, Watch> = HashMap::new();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let hand_offs = self.due_hand_offs(&mut seen, Instant::now());
            self.hand_over(hand_offs).await;
        }
    }

    /// The groups to hand to their preferred leader now, with that leader: led here but not
    /// preferred, the preferred replica live and caught up, and quiet or busy long enough (at
    /// most `HAND_OFFS_PER_CHECK`). `seen` follows the groups this node leads.
    fn due_hand_offs(&self, seen: &mut HashMap<GroupId, Watch>, now: Instant) -> Vec<(GroupId, NodeId)> {
        let mut hand_offs = Vec::new();
        let mut led = std::collections::HashSet::new();
        for group in self.partition_groups() {
            let v = group.view();
            if v.leader != Some(self.node_id) || !group.confirmed(&v) {
                continue;
            }
            led.insert(group.id.clone());
            let entry = seen.entry(group.id.clone()).or_insert(Watch {
                applied: v.applied,
                changed: now,
                since: now,
            });
            if entry.applied != v.applied {
                entry.applied = v.applied;
                entry.changed = now;
            }
            let Some(&preferred) = group.preferred.first() else { continue };
            let due = now.duration_since(entry.changed) >= QUIET_FOR
                || now.duration_since(entry.since) >= BUSY_AFTER;
            if preferred == self.node_id
                || !self.liveness.is_live(preferred)
                || !due
                || hand_offs.len() >= HAND_OFFS_PER_CHECK
            {
                continue;
            }
            if caught_up(&group, preferred) {
                hand_offs.push((group.id.clone(), preferred));
                // If the hand-off fails, wait as long again before the next try.
                entry.changed = now;
                entry.since = now;
            }
        }
        seen.retain(|id, _| led.contains(id));
        hand_offs
    }

    /// Asks each preferred leader to campaign, in one message per leader for all its groups;
    /// a failure waits for a later check.
    async fn hand_over(&self, hand_offs: Vec<(GroupId, NodeId)>) {
        let mut by_leader: BTreeMap<NodeId, Vec<GroupId>> = BTreeMap::new();
        for (id, to) in hand_offs {
            tracing::info!(group = %id, node_id = self.node_id, to, "handing the group to its preferred leader");
            by_leader.entry(to).or_default().push(id);
        }
        let requests = by_leader.into_iter().map(|(to, groups)| async move {
            match ask_to_campaign(&self.transport, to, &groups, CHECK_EVERY).await {
                Ok(started) => {
                    for (id, why) in groups.iter().zip(started).filter_map(|(id, s)| Some((id, s.err()?))) {
                        tracing::warn!(group = %id, to, why, "preferred-leader hand-off refused");
                    }
                }
                Err(reply) => {
                    tracing::warn!(to, groups = groups.len(), reply, "preferred-leader hand-off failed")
                }
            }
        });
        futures::future::join_all(requests).await;
    }
}

/// Whether `preferred` has matched the group's whole log. Only here is the full metrics copy
/// worth it: the matched index per follower.
fn caught_up(group: &RaftGroup, preferred: NodeId) -> bool {
    let m = group.metrics();
    m.replication
        .as_ref()
        .and_then(|r| r.get(&preferred))
        .is_some_and(|matched| matched.map(|l| l.index) == m.last_log_index)
}
