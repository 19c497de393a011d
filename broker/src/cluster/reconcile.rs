//! Local partition groups follow the controller's assignment: started when a replica of this
//! node appears in the metadata, stopped (and their data removed) when it goes.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;

use super::metadata::ClusterMetadata;
use super::raft_group::RaftGroup;
use super::{watch, Cluster, GROUPS_AT_ONCE};
use crate::error::{BrokerError, Result};
use crate::raft::state_machine::PartitionApplier;
use crate::raft::typ::GroupId;

impl Cluster {
    /// Creates, starts and stops local partition groups to match the controller's metadata.
    pub(super) async fn reconcile(self: Arc<Self>) {
        let mut rx = self.controller_state.subscribe();
        loop {
            let meta = rx.borrow_and_update().clone();
            if let Err(e) = self.apply_assignment(&meta).await {
                tracing::error!(node_id = self.node_id, error = %e, "could not start a partition group");
                self.telemetry.warn(format!("could not start a partition group: {e}"));
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    }

    async fn apply_assignment(&self, meta: &ClusterMetadata) -> Result<()> {
        let mut wanted = BTreeMap::new();
        for (topic, a) in &meta.topics {
            for (p, replicas) in a.replicas.iter().enumerate() {
                if replicas.contains(&self.node_id) {
                    wanted.insert((topic.clone(), p as i32), replicas.clone());
                }
            }
        }
        let existing: Vec<(String, i32)> =
            self.partitions.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        for key in existing.iter().filter(|k| !wanted.contains_key(*k)) {
            let handle = self.partitions.write().unwrap_or_else(|p| p.into_inner()).remove(key);
            if let Some(h) = handle {
                h.stop().await;
                // The vote dies with the group: a topic created again under the same name
                // must start a fresh group (openraft refuses to initialize one with a vote).
                self.store.forget_vote(&h.id.to_string()).await?;
                self.store.delete_partition(&key.0, key.1)?;
                self.directory.changed(); // no longer announced as led here
                tracing::info!(topic = %key.0, partition = key.1, "partition group removed");
            }
        }
        // Started concurrently: each start waits for its first entry to be fsynced, and the
        // flusher syncs all of them in one round instead of one after the other.
        let starts = wanted.into_iter().filter(|((t, p), _)| self.partition(t, *p).is_none()).map(
            |((topic, p), voters)| async move {
                let log = self.store.create_partition(&topic, p)?;
                self.telemetry.watch_partition(&log, self.shutdown.clone(), &self.tasks);
                let id = GroupId::Partition { topic: topic.clone(), partition: p };
                let handle = RaftGroup::start(&self.env, id, voters, log, Arc::new(PartitionApplier)).await?;
                watch::watch_group(
                    &self.telemetry,
                    self.transport.trace(),
                    &handle,
                    self.shutdown.clone(),
                    &self.tasks,
                );
                self.partitions.write().unwrap_or_else(|p| p.into_inner()).insert((topic, p), handle);
                self.groups_added.notify_one();
                // A group may lead from its start (one voter): no view change would tell.
                self.directory.changed();
                Ok::<(), BrokerError>(())
            },
        );
        let results: Vec<Result<()>> =
            futures::stream::iter(starts).buffer_unordered(GROUPS_AT_ONCE).collect().await;
        // DeleteRecords: every local replica starts where the controller says (again after a
        // restart, when the controller log is replayed).
        for (topic, a) in &meta.topics {
            for (p, start) in &a.log_starts {
                if let Some(g) = self.partition(topic, *p) {
                    g.log.set_log_start(*start);
                }
            }
        }
        results.into_iter().collect()
    }
}
