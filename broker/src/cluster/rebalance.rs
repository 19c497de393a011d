//! Preferred-leader rebalancing, as Kafka's `auto.leader.rebalance.enable`.
//!
//! After a node returns, the partitions it was preferred leader for are led elsewhere. Every
//! `CHECK_EVERY` this node looks at the groups it is the preferred leader of; where another node
//! leads and this replica has applied everything it holds and the partition has been quiet for
//! `QUIET_FOR`, it starts an election. openraft grants it: the current leader's lease has long
//! expired and the candidate's log is as long as the leader's. Quietness is the cheap proxy for
//! "caught up": a candidate with a shorter log is refused and only costs one extra election.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::cluster::Cluster;

/// Kafka checks every 300 s; a lab wants to see it within seconds.
const CHECK_EVERY: Duration = Duration::from_secs(3);
/// No new entries applied for this long before we disturb the current leader.
const QUIET_FOR: Duration = Duration::from_secs(2);

impl Cluster {
    pub(crate) async fn rebalance_leaders(self: Arc<Self>) {
        // group -> (applied index last seen, when it last changed)
        let mut seen: HashMap<String, (Option<u64>, Instant)> = HashMap::new();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
            let meta = self.metadata();
            for group in self.partition_groups() {
                let crate::raft::typ::GroupId::Partition { topic, partition } = &group.id else { continue };
                let preferred = meta
                    .topics
                    .get(topic)
                    .and_then(|t| t.replicas.get(*partition as usize))
                    .and_then(|r| r.first().copied());
                if preferred != Some(self.node_id) {
                    continue;
                }
                let m = group.metrics();
                let applied = m.last_applied.map(|l| l.index);
                let now = Instant::now();
                let entry = seen.entry(group.id.to_string()).or_insert((applied, now));
                if entry.0 != applied {
                    *entry = (applied, now);
                    continue;
                }
                let leader_elsewhere = matches!(m.current_leader, Some(l) if l != self.node_id);
                let caught_up = applied.is_some() && applied == m.last_log_index;
                if leader_elsewhere && caught_up && now.duration_since(entry.1) >= QUIET_FOR {
                    tracing::info!(group = %group.id, node_id = self.node_id, from = ?m.current_leader, "preferred leader takes its partition back");
                    if let Err(e) = group.raft.trigger().elect().await {
                        tracing::warn!(group = %group.id, error = %e, "preferred-leader election could not start");
                    }
                    entry.1 = now;
                }
            }
        }
    }
}
