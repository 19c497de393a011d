//! `NodeState`: everything a request handler may touch, shared by all connections.
//!
//! What a single node and a cluster node do differently sits behind [`Topology`] (`topology.rs`,
//! decision 42): `single.rs` and `replicated.rs` are its two implementations.

mod replicated;
mod single;
mod topology;

pub use replicated::Replicated;
pub use single::SingleNode;
pub use topology::{KafkaError, TopicPlacement, Topology};

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acls::Acls;
use crate::broker_configs::DynamicConfigs;
use crate::config::Config;
use crate::groups::{GroupCoordinator, GroupsSnapshot};
use crate::log::{LogStore, PartitionOffsets, RecoveryReport, StoreStats};
use crate::producers::Producers;
use crate::registry::Registry;
use crate::telemetry::{Event, Telemetry};
use crate::topic_config::TopicConfigs;
use crate::topics::{TopicInfo, Topics};

/// Shared node state. Handlers receive it as `Arc<NodeState>`.
pub struct NodeState {
    pub config: Config,
    /// The Kafka address actually bound (differs from the config when it asked for port 0).
    pub kafka_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub registry: Registry,
    pub store: Arc<LogStore>,
    pub topics: Topics,
    /// A single node's ACL bindings (a cluster keeps them in the controller's metadata).
    pub acls: Acls,
    /// Kafka's dynamic broker configs set on this node (stored and described, not acted on).
    pub dynamic_configs: DynamicConfigs,
    pub producers: Producers,
    /// The consumer-group coordinator, and in cluster mode the controller term it was started
    /// for (None on a single node, and for the placeholder a cluster node starts with). Replaced
    /// each time this node starts coordinating in a new term; use `coordinator()`.
    pub groups: std::sync::RwLock<(Arc<GroupCoordinator>, Option<u64>)>,
    /// How this node runs: alone or in a cluster. Everything the two do differently goes
    /// through it.
    pub topology: Box<dyn Topology>,
    /// The cluster, for what exists only there (Raft views, the controller's telemetry).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    pub telemetry: Arc<Telemetry>,
    pub recovery: RecoveryReport,
    pub started_at_ns: u64,
    /// Fired when the node begins its graceful stop.
    pub shutdown: CancellationToken,
    /// Fired when the stop is complete; the HTTP endpoint serves until then.
    pub stopped: CancellationToken,
    /// Background tasks (telemetry watchers, timers) awaited on shutdown.
    pub tasks: TaskTracker,
    /// Kafka requests read and not yet answered, over all connections (`/metrics`): what the
    /// bounds in `protocol::connection` keep in check.
    pub kafka_requests_in_progress: Arc<std::sync::atomic::AtomicUsize>,
    /// ... and the bytes of their frames (`/metrics`), counted apart from the budget below so
    /// that the gauge shows what is held, whatever the budget does.
    pub kafka_request_bytes_in_progress: Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes of fetch answers built and not yet written (`/metrics`).
    pub kafka_answer_bytes_in_progress: Arc<std::sync::atomic::AtomicUsize>,
    /// `max_request_bytes_in_progress`, shared by all Kafka client connections: their request
    /// frames and their fetch answers.
    pub kafka_request_bytes: Arc<crate::budget::ByteBudget>,
    /// Kafka requests read since start (`/metrics`): next to the Raft requests, what a message
    /// costs at many partitions (`clusterlab bench --scale`).
    pub kafka_requests_total: std::sync::atomic::AtomicU64,
}

/// `GET /state`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StateSnapshot {
    pub node_id: i32,
    pub kafka_addr: SocketAddr,
    pub advertised_kafka: SocketAddr,
    pub http_addr: SocketAddr,
    pub fsync: String,
    pub fsync_delay_ms: u64,
    /// The fsync-failure fault is set (the next flush round fails and stops the node).
    pub fsync_failing: bool,
    pub started_at_ns: u64,
    pub now_ns: u64,
    pub shutting_down: bool,
    pub topics: Vec<TopicInfo>,
    /// Every local partition's offsets (empty when `/state?partitions=summary` asked for the
    /// summary only; `/partitions` pages through them).
    pub partitions: Vec<PartitionState>,
    pub partition_summary: PartitionSummary,
    pub groups: GroupsSnapshot,
    /// Cluster mode: every Raft group's state and the peer links.
    pub raft: Option<crate::cluster::ClusterSnapshot>,
    pub recovery: RecoveryReport,
    pub store: StoreStats,
    pub recent_warnings: Vec<Event>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PartitionState {
    pub topic: String,
    pub partition: i32,
    #[serde(flatten)]
    pub offsets: PartitionOffsets,
}

/// Counts over every local partition, cheap at any partition count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PartitionSummary {
    pub partitions: usize,
    /// Records appended but not yet fsynced, summed over the partitions.
    pub unflushed_records: i64,
    /// The partition furthest behind on fsync here (None when every one is flushed).
    pub slowest: Option<SlowestReplica>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct SlowestReplica {
    pub topic: String,
    pub partition: i32,
    pub unflushed_records: i64,
}

impl NodeState {
    /// A topic's explicitly set configs.
    pub fn topic_configs(&self, name: &str) -> Option<TopicConfigs> {
        self.topology.topic_configs(self, name)
    }

    pub async fn set_topic_configs(&self, name: &str, configs: TopicConfigs) -> Result<(), KafkaError> {
        self.topology.set_topic_configs(self, name, configs).await
    }

    /// `raft_groups: false` leaves the per-group list out (`/state?raft=summary`).
    /// `raft_groups` / `partitions`: include the per-group and per-partition lists (at 10,000
    /// partitions each is megabytes; the summaries are always there).
    pub fn snapshot(&self, raft_groups: bool, partitions: bool) -> StateSnapshot {
        StateSnapshot {
            node_id: self.config.node_id,
            kafka_addr: self.kafka_addr,
            advertised_kafka: self.advertised(),
            http_addr: self.http_addr,
            fsync: self.store.policy().to_string(),
            fsync_delay_ms: self.store.fsync_delay().as_millis() as u64,
            fsync_failing: self.store.fsync_failing(),
            started_at_ns: self.started_at_ns,
            now_ns: crate::telemetry::now_ns(),
            shutting_down: self.shutdown.is_cancelled(),
            topics: self.topics.list(),
            partitions: if partitions { self.partition_page(None, 0, usize::MAX) } else { Vec::new() },
            partition_summary: self.partition_summary(),
            groups: self.current_coordinator().snapshot(),
            raft: self.cluster.as_ref().map(|c| c.snapshot(raft_groups)),
            recovery: self.recovery.clone(),
            store: self.store.stats(),
            recent_warnings: self.telemetry.recent_warnings(),
        }
    }

    /// Local partitions' offsets in (topic, partition) order, a page at a time, optionally of one
    /// topic.
    pub fn partition_page(&self, topic: Option<&str>, offset: usize, limit: usize) -> Vec<PartitionState> {
        self.store
            .partitions()
            .iter()
            .filter(|l| topic.is_none_or(|t| t == l.topic()))
            .skip(offset)
            .take(limit)
            .map(|l| PartitionState {
                topic: l.topic().to_string(),
                partition: l.partition(),
                offsets: l.offsets(),
            })
            .collect()
    }

    pub fn partition_summary(&self) -> PartitionSummary {
        let mut s = PartitionSummary::default();
        for l in self.store.partitions() {
            let o = l.offsets();
            let behind = (o.log_end_offset - o.flushed_offset).max(0);
            s.partitions += 1;
            s.unflushed_records += behind;
            if behind > s.slowest.as_ref().map_or(0, |w| w.unflushed_records) {
                s.slowest = Some(SlowestReplica {
                    topic: l.topic().to_string(),
                    partition: l.partition(),
                    unflushed_records: behind,
                });
            }
        }
        s
    }

    /// The log a client may read from here: the partition's own log on a single node, the
    /// leader's log in a cluster (followers answer NOT_LEADER_OR_FOLLOWER).
    pub fn readable_log(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Arc<crate::log::PartitionLog>, KafkaError> {
        self.topology.readable_log(self, topic, partition)
    }

    /// Whether a topic partition exists (in the catalogue this node goes by).
    pub fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.topology.partition_count(self, topic).is_some_and(|n| (0..n).contains(&partition))
    }

    /// Waits until every partition of `topics` (name, partition count) has a leader this node
    /// knows, or `timeout` passes; whether they all had one. CreateTopics and CreatePartitions
    /// answer after it, as Kafka's controller names a new partition's leader when it creates
    /// it: clients that read metadata right after (librdkafka's DeleteRecords does) would
    /// otherwise take a "no leader" answer for a partition whose election is a moment away.
    pub async fn wait_for_leaders(&self, topics: &[(String, i32)], timeout: std::time::Duration) -> bool {
        /// Elections take a few hundred milliseconds; checking every few ticks costs little.
        const POLL: std::time::Duration = std::time::Duration::from_millis(20);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let led = topics.iter().all(|(topic, count)| {
                (0..*count).all(|p| self.topology.partition_leader(self, topic, p).is_some())
            });
            if led {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The leader epoch clients see: the Raft term in a cluster, 0 on a single node.
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        self.topology.partition_leader(self, topic, partition).map_or(0, |(_, epoch)| epoch)
    }

    /// The coordinator that serves group requests here, or None when another node coordinates.
    pub fn coordinator(&self) -> Option<Arc<GroupCoordinator>> {
        self.coordinator_with_term().map(|(c, _)| c)
    }

    /// `coordinator()` and, in a cluster, the controller term it serves in.
    pub fn coordinator_with_term(&self) -> Option<(Arc<GroupCoordinator>, Option<u64>)> {
        let (coordinator, term) = self.groups.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.topology.coordinator_serves(term).then_some((coordinator, term))
    }

    /// The coordinator that takes offset commits here (see [`Topology::coordinator_commits`]).
    pub fn commit_coordinator(&self) -> Option<Arc<GroupCoordinator>> {
        let (coordinator, term) = self.groups.read().unwrap_or_else(|p| p.into_inner()).clone();
        self.topology.coordinator_commits(term).then_some(coordinator)
    }

    /// The installed coordinator whether or not it may serve (for telemetry).
    pub fn current_coordinator(&self) -> Arc<GroupCoordinator> {
        Arc::clone(&self.groups.read().unwrap_or_else(|p| p.into_inner()).0)
    }

    /// What clients are told to connect to: the configured advertised address, or the bound one.
    pub fn advertised(&self) -> SocketAddr {
        self.config.advertised_kafka.unwrap_or(self.kafka_addr)
    }
}
