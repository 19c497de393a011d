//! Topic operations in cluster mode: proposals to the controller, and the leaders clients see.

use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::cluster::metadata::{assign_replicas, ControllerCommand, ControllerReply, TopicAssignment};
use crate::cluster::raft_group::{ProposeError, RaftGroup};
use crate::cluster::Cluster;
use crate::log::PartitionLog;
use crate::raft::transport::{LeadEntry, LeadsVersion};
use crate::raft::typ::{GroupId, NodeId};
use crate::topic_config::TopicConfigs;
use crate::topics::MAX_PARTITIONS;

/// A Kafka error code and the message that goes with it.
pub type KafkaError = (ResponseError, String);

pub(super) fn propose_error(e: ProposeError) -> KafkaError {
    // NOT_CONTROLLER is retriable: the client asks again once a controller leader exists.
    (ResponseError::NotController, format!("the controller could not commit the change: {e:?}"))
}

impl Cluster {
    /// Creates a topic with leaders spread over the nodes (preferred leader first per partition),
    /// `replication_factor` replicas each (None: the cluster's configured factor).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: Option<i16>,
        configs: TopicConfigs,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> Result<TopicAssignment, KafkaError> {
        crate::topics::validate_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err((
                ResponseError::InvalidPartitions,
                format!("partitions must be 1..={MAX_PARTITIONS}, got {partitions}"),
            ));
        }
        let nodes: Vec<NodeId> = self.kafka_addrs.keys().copied().collect();
        // Start each topic's leader rotation at a different node so small topics spread too.
        let rotation = self.metadata().topics.len();
        let now = crate::telemetry::now_ns();
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&now.to_be_bytes());
        id[8..12].copy_from_slice(&crc32c::crc32c(name.as_bytes()).to_be_bytes());
        let replicas = match manual {
            Some(lists) => {
                let rf = lists.first().map_or(0, Vec::len);
                check_manual_assignment(&lists, partitions as usize, rf, &nodes)?;
                lists
            }
            None => {
                let rf = replication_factor.unwrap_or(self.config.replication_factor).max(1) as usize;
                assign_replicas(&self.placement_nodes(&nodes, rf), partitions, rf, rotation)
            }
        };
        let assignment =
            TopicAssignment { replicas, id, created_at_ns: now, configs, log_starts: Default::default() };
        let cmd = ControllerCommand::CreateTopic { name: name.to_string(), assignment: assignment.clone() };
        match self.propose_controller(cmd).await.map_err(propose_error)? {
            ControllerReply::Done => {
                tracing::info!(topic = name, partitions, "topic created through the controller");
                Ok(assignment)
            }
            ControllerReply::TopicExists => {
                Err((ResponseError::TopicAlreadyExists, format!("topic '{name}' already exists")))
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// The nodes new replicas go to: the ones this node can reach when there are at least `rf`,
    /// as Kafka places replicas on live brokers (a partition whose only replica is down has no
    /// leader until it returns); with fewer (RF 3 of three nodes, one down) all of them, so
    /// topics and partitions can still be created while a node is away.
    fn placement_nodes(&self, nodes: &[NodeId], rf: usize) -> Vec<NodeId> {
        let live: Vec<NodeId> = nodes.iter().copied().filter(|n| self.reachable(*n)).collect();
        if live.len() >= rf {
            live
        } else {
            nodes.to_vec()
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<(), KafkaError> {
        match self
            .propose_controller(ControllerCommand::DeleteTopic { name: name.to_string() })
            .await
            .map_err(propose_error)?
        {
            ControllerReply::Done => Ok(()),
            ControllerReply::NoSuchTopic => {
                Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// Replaces a topic's configs (already checked by `topic_config`).
    pub async fn set_topic_configs(&self, name: &str, configs: TopicConfigs) -> Result<(), KafkaError> {
        let cmd = ControllerCommand::SetTopicConfigs { name: name.to_string(), configs };
        match self.propose_controller(cmd).await.map_err(propose_error)? {
            ControllerReply::Done => Ok(()),
            ControllerReply::NoSuchTopic => {
                Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// Grows a topic to `total` partitions. New partitions continue the topic's leader rotation
    /// unless `manual` gives their replicas (one list per new partition, as Kafka's
    /// CreatePartitions assignments). The new groups start wherever the metadata change lands.
    pub async fn add_partitions(
        &self,
        name: &str,
        total: i32,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> Result<(), KafkaError> {
        let meta = self.metadata();
        let Some(topic) = meta.topics.get(name) else {
            return Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")));
        };
        let current = topic.replicas.len();
        crate::topics::check_partition_growth(name, current as i32, total)?;
        let nodes: Vec<NodeId> = self.kafka_addrs.keys().copied().collect();
        let rf = topic.replicas.first().map_or(self.config.replication_factor as usize, Vec::len);
        let replicas = match manual {
            Some(lists) => {
                check_manual_assignment(&lists, total as usize - current, rf, &nodes)?;
                lists
            }
            None => {
                // The topic's rotation goes on over the nodes placed on now: partition 0's
                // preferred leader keeps its position when it is among them.
                let on = self.placement_nodes(&nodes, rf);
                let rotation = topic
                    .replicas
                    .first()
                    .and_then(|r| on.iter().position(|n| Some(n) == r.first()))
                    .unwrap_or(0);
                assign_replicas(&on, total, rf, rotation).split_off(current)
            }
        };
        let cmd = ControllerCommand::AddPartitions { name: name.to_string(), current, replicas };
        match self.propose_controller(cmd).await.map_err(propose_error)? {
            ControllerReply::Done => {
                tracing::info!(
                    topic = name,
                    from = current,
                    to = total,
                    "partitions added through the controller"
                );
                Ok(())
            }
            ControllerReply::NoSuchTopic => {
                Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))
            }
            ControllerReply::Invalid(why) => Err((ResponseError::InvalidPartitions, why)),
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// DeleteRecords: the controller records the partition's new log start, then this node (its
    /// leader) moves its log's; the other replicas follow from the metadata (`apply_assignment`).
    /// `offset` is checked by the caller against the high watermark. Returns the start now.
    pub async fn delete_records(&self, name: &str, partition: i32, offset: i64) -> Result<i64, KafkaError> {
        let cmd = ControllerCommand::DeleteRecords { name: name.to_string(), partition, offset };
        match self.propose_controller(cmd).await.map_err(propose_error)? {
            ControllerReply::Done => {
                Ok(self.partition(name, partition).map_or(offset, |g| g.log.set_log_start(offset)))
            }
            ControllerReply::NoSuchTopic => {
                Err((ResponseError::UnknownTopicOrPartition, format!("{name}-{partition} does not exist")))
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// The local group of a partition this node leads, or the Kafka error to answer with.
    pub fn leader_group(&self, topic: &str, partition: i32) -> Result<Arc<RaftGroup>, KafkaError> {
        let known = self
            .metadata()
            .topics
            .get(topic)
            .is_some_and(|t| (0..t.replicas.len() as i32).contains(&partition));
        if !known {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("{topic}-{partition} does not exist"),
            ));
        }
        match self.partition(topic, partition) {
            Some(g) if g.is_leader(self.node_id) => Ok(g),
            Some(g) => Err((
                ResponseError::NotLeaderOrFollower,
                format!("{topic}-{partition} is led by {:?}, not {}", g.leader(), self.node_id),
            )),
            None => Err((
                ResponseError::NotLeaderOrFollower,
                format!("node {} holds no replica of {topic}-{partition}", self.node_id),
            )),
        }
    }

    /// The log of a partition this node leads (reads are served by the leader only).
    pub fn leader_log(&self, topic: &str, partition: i32) -> Result<Arc<PartitionLog>, KafkaError> {
        self.leader_group(topic, partition).map(|g| Arc::clone(&g.log))
    }

    /// (leader, leader epoch = Raft term) of a partition as this node knows it. A leader this
    /// node suspects dead is not named: until its successor is elected clients hear "no leader"
    /// (LEADER_NOT_AVAILABLE, retried within ~100 ms) rather than an address that will not
    /// answer, which a stock client retries only after its reconnect back-off.
    ///
    /// A partition this node hosts no replica of is named by the leader's own announcement
    /// (`leader_directory.rs`).
    pub fn partition_leader(&self, topic: &str, partition: i32) -> Option<(NodeId, i32)> {
        let epoch = |term: u64| term.min(i32::MAX as u64) as i32;
        let Some(g) = self.partition(topic, partition) else {
            let announced = self.directory.leader_of(topic, partition, |l| self.reachable(l));
            return announced.map(|(leader, term)| (leader, epoch(term)));
        };
        let term = epoch(g.view().term);
        // Not a leader this node cannot reach this moment either: a killed node's connections
        // close at once, while liveness suspects it only after the suspicion timeout. Clients
        // asking in between (librdkafka asks 100 ms after losing its connection, then only once
        // a second) then see the partition leaderless and keep asking until the new leader is
        // named, instead of being told the dead node still leads.
        g.leader().filter(|l| self.reachable(*l)).map(|l| (l, term))
    }

    /// The partition groups this node leads (confirmed) that `peer` hosts no replica of: what it
    /// announces to that peer.
    pub(crate) fn leads_for(&self, peer: NodeId) -> Vec<LeadEntry> {
        self.partition_groups()
            .iter()
            .filter(|g| !g.voters.contains(&peer))
            .filter_map(|g| {
                let GroupId::Partition { topic, partition } = &g.id else { return None };
                // One read: the leadership and its term from the same view.
                let v = g.view();
                (g.leader_in(&v) == Some(self.node_id)).then(|| LeadEntry {
                    topic: topic.clone(),
                    partition: *partition,
                    term: v.term,
                })
            })
            .collect()
    }

    /// A peer's announced leaderships (`RaftRequest::Leads`), kept only where the controller's
    /// assignment names that peer a replica of the partition: a leader must be one, and the
    /// directory then holds at most the cluster's real partitions whatever a peer sends. A list
    /// not kept whole (a topic this node has not applied yet) is asked for again.
    pub(crate) fn take_leads(&self, from: NodeId, version: LeadsVersion, groups: Vec<LeadEntry>) {
        if from == self.node_id || !self.kafka_addrs.contains_key(&from) {
            tracing::debug!(from, "leaderships from a node not in the cluster ignored");
            return;
        }
        let meta = self.metadata();
        let sent = groups.len();
        let kept: Vec<LeadEntry> = groups
            .into_iter()
            .filter(|l| {
                let replicas = usize::try_from(l.partition)
                    .ok()
                    .and_then(|p| meta.topics.get(&l.topic).and_then(|a| a.replicas.get(p)));
                replicas.is_some_and(|r| r.contains(&from))
            })
            .collect();
        let whole = kept.len() == sent;
        self.directory.replace(from, whole.then_some(version), kept);
    }

    /// This node, or a peer it hears from and holds a connection to right now.
    pub fn reachable(&self, node: NodeId) -> bool {
        node == self.node_id || (self.liveness.is_live(node) && self.transport.connected(node))
    }

    /// Hands out a producer id, taking blocks of ids from the controller so they are unique
    /// across the cluster and never reused.
    pub async fn allocate_producer_id(&self) -> Result<i64, KafkaError> {
        /// One controller round trip per thousand producers.
        const BLOCK: i64 = 1000;
        {
            let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
            if ids.0 < ids.1 {
                ids.0 += 1;
                return Ok(ids.0 - 1);
            }
        }
        match self
            .propose_controller(ControllerCommand::AllocateProducerIds { count: BLOCK })
            .await
            .map_err(propose_error)?
        {
            ControllerReply::ProducerIds { first } => {
                let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
                *ids = (first + 1, first + BLOCK);
                Ok(first)
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }
}

/// An explicit assignment (CreateTopics, CreatePartitions) must name, for each partition, `rf`
/// distinct nodes of the cluster.
fn check_manual_assignment(
    lists: &[Vec<NodeId>],
    new: usize,
    rf: usize,
    nodes: &[NodeId],
) -> Result<(), KafkaError> {
    let bad = |why: String| Err((ResponseError::InvalidReplicaAssignment, why));
    if lists.len() != new {
        return bad(format!("{} assignments for {new} new partitions", lists.len()));
    }
    if rf == 0 {
        return bad("an assignment names no broker".into());
    }
    for (i, replicas) in lists.iter().enumerate() {
        let distinct: std::collections::BTreeSet<_> = replicas.iter().collect();
        if replicas.len() != rf || distinct.len() != rf {
            return bad(format!("new partition {i}: {replicas:?} is not {rf} distinct brokers"));
        }
        if let Some(unknown) = replicas.iter().find(|n| !nodes.contains(n)) {
            return bad(format!("new partition {i}: broker {unknown} is not in the cluster {nodes:?}"));
        }
    }
    Ok(())
}
