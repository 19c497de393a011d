//! A node of a cluster: the catalogue, ACLs and producer-id blocks live in the controller's Raft
//! log, every partition is its own Raft group, and the controller leader coordinates groups.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::ResponseError;

use super::topology::{KafkaError, TopicPlacement, Topology};
use super::NodeState;
use crate::acls::{AclBinding, AclFilter};
use crate::cluster::metadata::TopicAssignment;
use crate::cluster::Cluster;
use crate::log::PartitionLog;
use crate::raft::typ::NodeId;
use crate::topic_config::TopicConfigs;

/// How long a Metadata request waits for a restarted node's metadata to catch up before it
/// answers with what it has (unknown topics then say LEADER_NOT_AVAILABLE, which clients retry).
const METADATA_CATCH_UP: Duration = Duration::from_secs(5);
/// How long the leadership confirmation may take before the answer is NOT_COORDINATOR.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Replicated(pub Arc<Cluster>);

fn placement(name: &str, a: &TopicAssignment) -> TopicPlacement {
    TopicPlacement {
        name: name.to_string(),
        id: a.id,
        replicas: a.replicas.iter().map(|r| r.iter().map(|n| *n as i32).collect()).collect(),
    }
}

impl Topology for Replicated {
    fn brokers(&self, _node: &NodeState) -> Vec<(i32, SocketAddr)> {
        self.0.kafka_addrs.iter().map(|(id, addr)| (*id as i32, *addr)).collect()
    }

    // Brokers this node can reach now, as Kafka lists only brokers with a live registration.
    // A client forgets a node missing from the list (librdkafka >= 2.10 drops its handle) and
    // meets it afresh once it is listed again; a handle kept across a kill carries a reconnect
    // back-off that librdkafka keeps doubling for as long as attempts are < 10 s apart, which a
    // stock client then waits out (4-6 s) when that node becomes the new leader.
    fn live_brokers(&self, _node: &NodeState) -> Vec<(i32, SocketAddr)> {
        let c = &self.0;
        c.kafka_addrs
            .iter()
            .filter(|(id, _)| c.reachable(**id))
            .map(|(id, addr)| (*id as i32, *addr))
            .collect()
    }

    fn controller(&self, _node: &NodeState) -> Option<i32> {
        // Named only while reachable, like the brokers listed beside it. Told of a controller
        // missing from the broker list, librdkafka's admin client waits for that broker without
        // asking again: a topic created right after start-up, before this node had heard its
        // peers, timed out after 60 s. "None" makes it ask again.
        let c = &self.0;
        c.controller_leader().filter(|l| c.reachable(*l)).map(|l| l as i32)
    }

    fn topic_exists(&self, _node: &NodeState, name: &str) -> bool {
        self.0.metadata().topics.contains_key(name)
    }

    fn partition_count(&self, _node: &NodeState, name: &str) -> Option<i32> {
        self.0.metadata().topics.get(name).map(|t| t.replicas.len() as i32)
    }

    fn topics(&self, _node: &NodeState) -> Vec<TopicPlacement> {
        self.0.metadata().topics.iter().map(|(name, a)| placement(name, a)).collect()
    }

    fn catalogue_ready(&self) -> BoxFuture<'_, bool> {
        self.0.wait_metadata_ready(METADATA_CATCH_UP).boxed()
    }

    fn topic_or_create<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        allow_create: bool,
        ready: bool,
    ) -> BoxFuture<'a, Result<TopicPlacement, KafkaError>> {
        async move {
            let c = &self.0;
            let existing = c.metadata().topics.get(name).cloned();
            let assignment = match existing {
                Some(a) => Ok(a),
                None if allow_create && ready => {
                    match c
                        .create_topic(name, node.config.default_partitions, None, Default::default(), None)
                        .await
                    {
                        // Created by someone else meanwhile: that is success too.
                        Err((ResponseError::TopicAlreadyExists, _)) => c
                            .metadata()
                            .topics
                            .get(name)
                            .cloned()
                            .ok_or((ResponseError::LeaderNotAvailable, String::new())),
                        other => other,
                    }
                }
                None if !ready => Err((ResponseError::LeaderNotAvailable, String::new())),
                None => Err((ResponseError::UnknownTopicOrPartition, String::new())),
            };
            assignment.map(|a| placement(name, &a))
        }
        .boxed()
    }

    fn topic_configs(&self, _node: &NodeState, name: &str) -> Option<TopicConfigs> {
        self.0.metadata().topics.get(name).map(|t| t.configs.clone())
    }

    fn partition_leader(&self, _node: &NodeState, topic: &str, partition: i32) -> Option<(i32, i32)> {
        self.0.partition_leader(topic, partition).map(|(l, epoch)| (l as i32, epoch))
    }

    fn readable_log(
        &self,
        _node: &NodeState,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionLog>, KafkaError> {
        self.0.leader_log(topic, partition)
    }

    fn high_watermark_established(&self, topic: &str, partition: i32) -> bool {
        let Some(group) = self.0.partition(topic, partition) else { return true };
        group.view().own_term_applied()
    }

    fn check_assignment(&self, _node: &NodeState, _manual: Option<&[Vec<NodeId>]>) -> Result<(), KafkaError> {
        // The controller checks an assignment against the brokers when it applies it.
        Ok(())
    }

    fn create_topic<'a>(
        &'a self,
        _node: &'a NodeState,
        name: &'a str,
        partitions: i32,
        replication_factor: Option<i16>,
        configs: TopicConfigs,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> BoxFuture<'a, Result<[u8; 16], KafkaError>> {
        let created = self.0.create_topic(name, partitions, replication_factor, configs, manual);
        async move { created.await.map(|a| a.id) }.boxed()
    }

    fn add_partitions<'a>(
        &'a self,
        _node: &'a NodeState,
        name: &'a str,
        total: i32,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        self.0.add_partitions(name, total, manual).boxed()
    }

    fn delete_topic<'a>(
        &'a self,
        _node: &'a NodeState,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        self.0.delete_topic(name).boxed()
    }

    fn set_topic_configs<'a>(
        &'a self,
        _node: &'a NodeState,
        name: &'a str,
        configs: TopicConfigs,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        self.0.set_topic_configs(name, configs).boxed()
    }

    fn delete_records<'a>(
        &'a self,
        _node: &'a NodeState,
        topic: &'a str,
        partition: i32,
        offset: i64,
    ) -> BoxFuture<'a, Result<i64, KafkaError>> {
        self.0.delete_records(topic, partition, offset).boxed()
    }

    fn create_acls<'a>(
        &'a self,
        _node: &'a NodeState,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        self.0.create_acls(bindings).boxed()
    }

    fn describe_acls<'a>(
        &'a self,
        _node: &'a NodeState,
        filter: &'a AclFilter,
    ) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaError>> {
        self.0.describe_acls(filter).boxed()
    }

    fn delete_acls<'a>(
        &'a self,
        _node: &'a NodeState,
        filters: Vec<AclFilter>,
    ) -> BoxFuture<'a, Result<Vec<Vec<AclBinding>>, KafkaError>> {
        self.0.delete_acls(filters).boxed()
    }

    fn allocate_producer_id<'a>(&'a self, _node: &'a NodeState) -> BoxFuture<'a, Result<(i64, i16), String>> {
        async move { self.0.allocate_producer_id().await.map(|id| (id, 0)).map_err(|(_, msg)| msg) }.boxed()
    }

    /// Only the confirmed controller leader that has applied its own term's first entry, and only
    /// with the coordinator started for that term: one of an earlier term (this node lost the
    /// lead and won it back) holds group state that may be stale.
    fn coordinator_serves(&self, started: Option<u64>) -> bool {
        matches!((self.0.coordinating_term(), started), (Some(now), Some(s)) if now == s)
    }

    /// openraft having this node lead the coordinator's term is enough (see
    /// `Cluster::leads_controller_in`): the commit itself goes through the controller's log.
    fn coordinator_commits(&self, started: Option<u64>) -> bool {
        started.is_some_and(|t| self.0.leads_controller_in(t))
    }

    fn coordinator_may_return(&self) -> bool {
        self.0.leads_controller()
    }

    fn confirm_coordinator<'a>(&'a self, term: Option<u64>) -> BoxFuture<'a, Result<(), String>> {
        async move {
            let term = term.unwrap_or_default();
            self.0.confirm_controller_leadership(term, CONFIRM_TIMEOUT).await.map_err(|e| e.to_string())
        }
        .boxed()
    }
}
