//! A node on its own: the topic catalogue is its `topics.json`, it leads every partition in
//! epoch 0, coordinates every group and hands out producer ids from its own counter.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use kafka_protocol::ResponseError;

use super::topology::{KafkaError, TopicPlacement, Topology};
use super::NodeState;
use crate::acls::{AclBinding, AclFilter};
use crate::log::PartitionLog;
use crate::raft::typ::NodeId;
use crate::telemetry::EventKind;
use crate::topic_config::TopicConfigs;
use crate::topics::TopicInfo;

pub struct SingleNode;

fn placement(node: &NodeState, t: &TopicInfo) -> TopicPlacement {
    let me = node.config.node_id;
    TopicPlacement { name: t.name.clone(), id: t.id, replicas: vec![vec![me]; t.partitions.max(0) as usize] }
}

fn internal(e: impl std::fmt::Display) -> KafkaError {
    (ResponseError::UnknownServerError, e.to_string())
}

/// Creates a topic in the catalogue and starts streaming its partitions' offsets.
fn create(
    node: &NodeState,
    name: &str,
    partitions: i32,
    configs: TopicConfigs,
) -> Result<TopicInfo, KafkaError> {
    let (info, logs) = node.topics.create(name, partitions, configs)?;
    for log in &logs {
        node.telemetry.watch_partition(log, node.shutdown.clone(), &node.tasks);
    }
    node.telemetry.emit(EventKind::TopicCreated { topic: info.name.clone(), partitions });
    Ok(info)
}

impl Topology for SingleNode {
    fn brokers(&self, node: &NodeState) -> Vec<(i32, SocketAddr)> {
        vec![(node.config.node_id, node.advertised())]
    }

    fn live_brokers(&self, node: &NodeState) -> Vec<(i32, SocketAddr)> {
        self.brokers(node)
    }

    fn controller(&self, node: &NodeState) -> Option<i32> {
        Some(node.config.node_id)
    }

    fn topic_exists(&self, node: &NodeState, name: &str) -> bool {
        node.topics.get(name).is_some()
    }

    fn partition_count(&self, node: &NodeState, name: &str) -> Option<i32> {
        node.topics.get(name).map(|t| t.partitions)
    }

    fn topics(&self, node: &NodeState) -> Vec<TopicPlacement> {
        node.topics.list().iter().map(|t| placement(node, t)).collect()
    }

    fn catalogue_ready(&self) -> BoxFuture<'_, bool> {
        futures::future::ready(true).boxed()
    }

    fn topic_or_create<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        allow_create: bool,
        _ready: bool,
    ) -> BoxFuture<'a, Result<TopicPlacement, KafkaError>> {
        let found = match node.topics.get(name) {
            Some(t) => Ok(t),
            None if !(allow_create && node.config.auto_create_topics) => {
                Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))
            }
            None => match create(node, name, node.config.default_partitions, TopicConfigs::new()) {
                // Another connection created it between our look-up and our create: success.
                Err((ResponseError::TopicAlreadyExists, _)) => {
                    node.topics.get(name).ok_or((ResponseError::UnknownTopicOrPartition, name.to_string()))
                }
                other => other,
            },
        };
        futures::future::ready(found.map(|t| placement(node, &t))).boxed()
    }

    fn topic_configs(&self, node: &NodeState, name: &str) -> Option<TopicConfigs> {
        node.topics.get(name).map(|t| t.configs)
    }

    fn partition_leader(&self, node: &NodeState, topic: &str, partition: i32) -> Option<(i32, i32)> {
        node.topics.partition(topic, partition).map(|_| (node.config.node_id, 0))
    }

    fn readable_log(
        &self,
        node: &NodeState,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<PartitionLog>, KafkaError> {
        node.topics.partition(topic, partition).ok_or_else(|| {
            (ResponseError::UnknownTopicOrPartition, format!("{topic}-{partition} does not exist"))
        })
    }

    fn high_watermark_established(&self, _topic: &str, _partition: i32) -> bool {
        true
    }

    fn check_assignment(&self, node: &NodeState, manual: Option<&[Vec<NodeId>]>) -> Result<(), KafkaError> {
        let me = node.config.node_id as NodeId;
        match manual {
            Some(lists) if lists.iter().any(|r| r.as_slice() != [me]) => Err((
                ResponseError::InvalidReplicaAssignment,
                format!("this single-node broker can only place replicas on broker {me}"),
            )),
            _ => Ok(()),
        }
    }

    fn create_topic<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        partitions: i32,
        _replication_factor: Option<i16>, // 1: CreateTopics refuses more than the one broker
        configs: TopicConfigs,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> BoxFuture<'a, Result<[u8; 16], KafkaError>> {
        let created = self
            .check_assignment(node, manual.as_deref())
            .and_then(|()| create(node, name, partitions, configs))
            .map(|info| info.id);
        futures::future::ready(created).boxed()
    }

    fn add_partitions<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        total: i32,
        manual: Option<Vec<Vec<NodeId>>>,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        let added = self.check_assignment(node, manual.as_deref()).and_then(|()| {
            let (_, logs) = node.topics.add_partitions(name, total)?;
            for log in &logs {
                node.telemetry.watch_partition(log, node.shutdown.clone(), &node.tasks);
            }
            Ok(())
        });
        futures::future::ready(added).boxed()
    }

    fn delete_topic<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        let deleted = node.topics.delete(name).map(|()| {
            node.producers.forget_topic(name);
            node.telemetry.emit(EventKind::TopicDeleted { topic: name.to_string() });
        });
        futures::future::ready(deleted).boxed()
    }

    fn set_topic_configs<'a>(
        &'a self,
        node: &'a NodeState,
        name: &'a str,
        configs: TopicConfigs,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        futures::future::ready(node.topics.set_configs(name, configs)).boxed()
    }

    fn delete_records<'a>(
        &'a self,
        node: &'a NodeState,
        topic: &'a str,
        partition: i32,
        offset: i64,
    ) -> BoxFuture<'a, Result<i64, KafkaError>> {
        futures::future::ready(node.topics.delete_records(topic, partition, offset)).boxed()
    }

    fn create_acls<'a>(
        &'a self,
        node: &'a NodeState,
        bindings: Vec<AclBinding>,
    ) -> BoxFuture<'a, Result<(), KafkaError>> {
        futures::future::ready(node.acls.create(&bindings).map_err(internal)).boxed()
    }

    fn describe_acls<'a>(
        &'a self,
        node: &'a NodeState,
        filter: &'a AclFilter,
    ) -> BoxFuture<'a, Result<Vec<AclBinding>, KafkaError>> {
        futures::future::ready(Ok(node.acls.describe(filter))).boxed()
    }

    fn delete_acls<'a>(
        &'a self,
        node: &'a NodeState,
        filters: Vec<AclFilter>,
    ) -> BoxFuture<'a, Result<Vec<Vec<AclBinding>>, KafkaError>> {
        futures::future::ready(node.acls.delete(&filters).map_err(internal)).boxed()
    }

    fn allocate_producer_id<'a>(&'a self, node: &'a NodeState) -> BoxFuture<'a, Result<(i64, i16), String>> {
        futures::future::ready(node.producers.allocate().map_err(|e| e.to_string())).boxed()
    }

    fn coordinator_serves(&self, _started: Option<u64>) -> bool {
        true
    }

    fn coordinator_commits(&self, _started: Option<u64>) -> bool {
        true
    }

    fn coordinator_may_return(&self) -> bool {
        false
    }

    fn confirm_coordinator<'a>(&'a self, _term: Option<u64>) -> BoxFuture<'a, Result<(), String>> {
        futures::future::ready(Ok(())).boxed()
    }
}
