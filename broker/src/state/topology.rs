//! What differs between a single node and a node of a cluster, as one interface (decision 42):
//! the topic catalogue and how it changes, where partitions are read and who leads them, which
//! brokers and controller clients are told about, who hands out producer ids and when the group
//! coordinator may answer. [`NodeState`] holds one implementation, chosen once at start-up:
//! [`SingleNode`](super::single::SingleNode) (the node's own catalogue and files) or
//! [`Replicated`](super::replicated::Replicated) (the controller's Raft log and one Raft group per
//! partition). Handlers ask it, never which mode they run in.
//!
//! Left outside on purpose: what exists only in a cluster (the Raft views of `/raft/*`, the
//! controller's telemetry) reads [`NodeState::cluster`] as an optional feature, and the produce
//! path chooses between a local append and a Raft proposal itself (its two halves are the
//! produce handler's own code).

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use kafka_protocol::ResponseError;

use super::NodeState;
use crate::acls::{AclBinding, AclFilter};
use crate::log::PartitionLog;
use crate::raft::typ::NodeId;
use crate::topic_config::TopicConfigs;

/// A refusal as the Kafka answer carries it: the error code and a message.
pub type KafkaError = (ResponseError, String);

/// A topic as Metadata describes it.
#[derive(Debug, Clone)]
pub struct TopicPlacement {
    pub name: String,
    pub id: [u8; 16],
    /// Each partition's replicas, preferred leader first.
    pub replicas: Vec<Vec<i32>>,
}

/// The seam between the two ways a node runs. Methods that change or await the catalogue return
/// boxed futures so the node can hold either implementation behind one pointer.
pub trait Topology: Send + Sync {
    /// Every broker of the cluster, with the address clients use (this node alone when single).
    fn brokers(&self, node: &NodeState) -> Vec<(i32, SocketAddr)>;
    /// The brokers a Metadata answer lists now: those this node can reach.
    fn live_brokers(&self, node: &NodeState) -> Vec<(i32, SocketAddr)>;
    /// The controller, which also coordinates every consumer group; None while unknown or not
    /// reachable from this node.
    fn controller(&self, node: &NodeState) -> Option<i32>;

    fn topic_exists(&self, node: &NodeState, name: &str) -> bool;
    fn partition_count(&self, node: &NodeState, name: &str) -> Option<i32>;
    fn topics(&self, node: &NodeState) -> Vec<TopicPlacement>;
    /// Waits (bounded) until this node's view of the catalogue has caught up with what was
    /// decided before it started; false if it has not (a restarted cluster node replaying).
    fn catalogue_ready(&self) -> BoxFuture<'_, bool>;
    /// The topic, created with the default partitions when missing and `allow_create`; while the
    /// catalogue is not `ready` a missing topic is LEADER_NOT_AVAILABLE (clients retry), never
    /// created.
    fn topic_or_create<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        allow_create: bool,
        ready: bool,
    ) -> BoxFuture<'a, Result<TopicPlacement, KafkaError>>;
    fn topic_configs(&self, node: &NodeState, name: &str) -> Option<TopicConfigs>;

    /// (leader, leader epoch) of a partition as this node knows it.
    fn partition_leader(&self, node: &NodeState, topic: &str, partition: i32) -> Option<(i32, i32)>;
    /// The log a client may read from here (a follower's is not).
    fn readable_log(
        &self,
        node: &NodeState,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionLog>, KafkaError>;

    /// Whether this node, leading the partition, knows its high watermark: in a cluster, once
    /// it has applied an entry of its own term.
    fn high_watermark_established(&self, topic: &str, partition: i32) -> bool;

    /// Refuses replica assignments this topology cannot place (before anything changes).
    fn check_assignment(&self, node: &NodeState, manual: Option<&[Vec<NodeId>]>) -> Result<(), KafkaError>;
    /// Creates a topic with `replication_factor` replicas per partition (None: the configured
    /// default) or the `manual` assignment; its id.
    fn create_topic<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        partitions: i32,
        replication_factor: Option<i16>,
        configs: TopicConfigs,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> BoxFuture<'a, Result<[u8; 16], KafkaError>>;
    fn add_partitions<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        total: i32,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> BoxFuture<'a, Result<(), KafkaError>>;
    fn delete_topic<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaError>>;
    fn set_topic_configs<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        configs: TopicConfigs,
    ) -> BoxFuture<'a, Result<(), KafkaError>>;
    /// Moves a partition's log start to `offset`; the new log start.
    fn delete_records<'a>(
        &'a self,
        node: &'a NodeState,
        topic: &'a str,
        partition: i32,
        offset: i64,
    ) -> BoxFuture<'a, Result<i64, KafkaError>>;

    fn create_acls<'a>(
        &'a self,
        node: &'a NodeState,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'a, Result<(), KafkaError>>;
    fn describe_acls<'a>(
        &'a self,
        node: &'a NodeState,
        filter: &'a AclFilter,
    ) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaError>>;
    /// The bindings each filter removed.
    fn delete_acls<'a>(
        &'a self,
        node: &'a NodeState,
        filters: Vec<AclFilter>,
    ) -> BoxFuture<'a, Result<Vec<Vec<AclBinding>>, KafkaError>>;

    /// A new producer id and its epoch.
    fn allocate_producer_id<'a>(&'a self, node: &'a NodeState) -> BoxFuture<'a, Result<(i64, i16), String>>;

    /// Whether a coordinator started for controller term `started` may answer group requests now.
    fn coordinator_serves(&self, started: Option<u64>) -> bool;
    /// Whether it may take an offset commit now (the commit itself is replicated, so leading the
    /// term is enough).
    fn coordinator_commits(&self, started: Option<u64>) -> bool;
    /// Whether this node may count as the coordinator again in a moment (it leads the
    /// controller but its term is not confirmed this instant): worth a short wait.
    fn coordinator_may_return(&self) -> bool;
    /// Confirms with a majority that term `term`'s coordinator is still the coordinator, before
    /// it answers an offset fetch from state a successor may have moved on from.
    fn confirm_coordinator<'a>(&'a self, term: Option<u64>) -> BoxFuture<'a, Result<(), String>>;
}
