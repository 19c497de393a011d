//! Cluster mode: this node as one of several, replicating with Raft.
//!
//! - `metadata` — the controller group's state machine (topics, assignment, offsets, ids).
//! - `raft_group` — one running Raft group with its ordered proposals and cached view.
//! - `liveness` — one heartbeat per peer for all groups; the failure detector groups rely on.
//! - `leader_directory` — leaders of the partitions this node hosts no replica of.
//! - `elections`— the node's election driver: which node campaigns for a leaderless group, when.
//! - `hand_off` — a stopping node's leaderships handed to caught-up followers.
//! - `watch`    — Raft metrics to telemetry events (terms, votes, elections, matched indexes).
//! - `summary`  — `/state`'s raft section, `/raft/summary` counts and paged group states.
//! - `rpc_trace`— `/raft/trace`: RPC-level events and the watched group's replica state.
//! - `router`   — inbound Raft requests: node-level ones answered here, the rest to their group.
//! - `reconcile`— local partition groups started and stopped to follow the controller's assignment.
//! - `topics`   — topic operations as controller proposals, and the leaders clients see.
//! - `acls`     — ACL bindings as controller commands, read from the applied copy.
//! - `rebalance`— preferred leaders taken back after a node returns (`auto.leader.rebalance`).
//!
//! Every node runs the controller group (all nodes vote) and one group per partition replica it
//! holds. Groups are created when the controller's metadata says so (`reconcile`), on every
//! replica alike; none of this blocks on an absent peer.

mod acls;
mod elections;
mod hand_off;
pub mod leader_directory;
pub mod liveness;
pub mod metadata;
pub mod raft_group;
mod rebalance;
mod reconcile;
mod router;
pub mod rpc_trace;
pub mod summary;
pub mod topics;
pub mod watch;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{ClusterConfig, Config};
use crate::error::{BrokerError, Result};
use crate::log::LogStore;
use crate::raft::transport::{RaftReply, RaftRequest, Transport};
use crate::raft::typ::{GroupId, NodeId};
use crate::telemetry::Telemetry;
use leader_directory::LeaderDirectory;
use liveness::Liveness;
use metadata::{ClusterMetadata, ControllerApplier, ControllerCommand, ControllerReply};
use raft_group::{GroupEnv, ProposeError, RaftGroup};
use router::Router;
pub use summary::{ClusterSnapshot, RaftSummary};

/// The controller's log lives in the store like a partition of this internal topic.
pub const CONTROLLER_TOPIC: &str = "__cluster_metadata";
/// How long a forwarded controller command may take before the caller gives up.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// Partition groups started (when a topic appears) or stopped at the same time: bounds the burst.
const GROUPS_AT_ONCE: usize = 256;
/// This node's part of the cluster.
pub struct Cluster {
    pub node_id: NodeId,
    pub config: ClusterConfig,
    /// Every node's Kafka address, this one included.
    pub kafka_addrs: BTreeMap<NodeId, SocketAddr>,
    pub transport: Arc<Transport>,
    pub controller: Arc<RaftGroup>,
    pub controller_state: Arc<ControllerApplier>,
    pub liveness: Arc<Liveness>,
    /// Leaders of partitions not hosted here, as their leaders announce them.
    pub directory: Arc<LeaderDirectory>,
    store: Arc<LogStore>,
    /// What every group of this node shares (store, transport, openraft config, liveness).
    env: GroupEnv,
    partitions: RwLock<BTreeMap<(String, i32), Arc<RaftGroup>>>,
    /// Poked when partition groups start, so that the election driver looks at them at once.
    groups_added: tokio::sync::Notify,
    /// The unused part of this node's block of producer ids: [next, end).
    producer_ids: std::sync::Mutex<(i64, i64)>,
    telemetry: Arc<Telemetry>,
    /// Set the first time `metadata_ready` holds; see there.
    metadata_caught_up: std::sync::atomic::AtomicBool,
    /// Set when this node starts handing off its leaderships to stop: it takes none itself.
    stopping: std::sync::atomic::AtomicBool,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Cluster {
    /// Starts the transport and the controller group. Returns at once: peers may still be down.
    pub async fn start(
        config: &Config,
        cluster: &ClusterConfig,
        kafka_advertised: SocketAddr,
        store: Arc<LogStore>,
        telemetry: Arc<Telemetry>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Cluster>> {
        let node_id = config.node_id as NodeId;
        let raft_listener = bind_raft_listener(cluster.raft_listen).await?;
        let (peers, kafka_addrs) = addresses(cluster, node_id, kafka_advertised);
        let transport = Transport::new(node_id, peers);
        let raft_config = raft_config(cluster)?;
        let liveness = start_liveness(node_id, kafka_addrs.keys().copied(), cluster, &transport);
        let tasks = TaskTracker::new();
        let directory = Arc::new(LeaderDirectory::default());
        let env = GroupEnv {
            node_id,
            store: Arc::clone(&store),
            transport: Arc::clone(&transport),
            config: raft_config,
            liveness: Arc::clone(&liveness),
            directory: Arc::clone(&directory),
        };
        let voters: Vec<NodeId> = kafka_addrs.keys().copied().collect();
        let (controller_state, controller) = start_controller(&env, voters).await?;
        let this = Arc::new(Cluster {
            node_id,
            config: cluster.clone(),
            kafka_addrs,
            transport,
            controller,
            controller_state,
            liveness,
            directory,
            store,
            env,
            partitions: RwLock::new(BTreeMap::new()),
            groups_added: tokio::sync::Notify::new(),
            producer_ids: std::sync::Mutex::new((0, 0)),
            telemetry,
            metadata_caught_up: std::sync::atomic::AtomicBool::new(false),
            stopping: std::sync::atomic::AtomicBool::new(false),
            shutdown,
            tasks,
        });
        this.run_background(raft_listener);
        Ok(this)
    }

    /// Serves Raft traffic and starts the node-level tasks (telemetry of the controller,
    /// heartbeats, elections, reconciliation, leader rebalancing), all on `self.tasks` and
    /// stopped by `self.shutdown`.
    fn run_background(self: &Arc<Self>, raft_listener: tokio::net::TcpListener) {
        Arc::clone(&self.transport).serve(raft_listener, Arc::new(Router(Arc::downgrade(self))));
        watch::watch_group(
            &self.telemetry,
            self.transport.trace(),
            &self.controller,
            self.shutdown.clone(),
            &self.tasks,
        );
        let weak = Arc::downgrade(self);
        let on_flip = Arc::new(move |peer: NodeId, live: bool| {
            let Some(cluster) = weak.upgrade() else { return };
            // Which leaders are confirmed depends on who answers.
            cluster.directory.changed();
            if live {
                cluster.on_peer_back(peer);
            }
        });
        let weak = Arc::downgrade(self);
        let announcer = liveness::Announcer {
            directory: Arc::clone(&self.directory),
            leads_for: Arc::new(move |peer| weak.upgrade().map_or_else(Vec::new, |c| c.leads_for(peer))),
        };
        liveness::run(
            Arc::clone(&self.liveness),
            Arc::clone(&self.transport),
            Duration::from_millis(self.config.heartbeat_interval_ms),
            announcer,
            on_flip,
            self.shutdown.clone(),
            &self.tasks,
        );
        self.tasks.spawn(Arc::clone(self).drive_elections());
        self.tasks.spawn(Arc::clone(self).reconcile());
        self.tasks.spawn(Arc::clone(self).rebalance_leaders());
    }

    /// The local handle of a group, if this node hosts it.
    pub fn group(&self, id: &GroupId) -> Option<Arc<RaftGroup>> {
        match id {
            GroupId::Controller => Some(Arc::clone(&self.controller)),
            GroupId::Partition { topic, partition } => self.partition(topic, *partition),
        }
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<RaftGroup>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    pub fn partition_groups(&self) -> Vec<Arc<RaftGroup>> {
        self.partitions.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    pub fn metadata(&self) -> Arc<ClusterMetadata> {
        self.controller_state.current()
    }

    pub fn controller_leader(&self) -> Option<NodeId> {
        self.controller.leader()
    }

    /// The controller term in which this node may coordinate consumer groups: it is the
    /// confirmed controller leader (see `RaftGroup::leader`) and has applied an entry of its
    /// own term. That entry (openraft's blank one) comes after everything earlier leaders
    /// committed, so the applied offsets then include every commit acknowledged before.
    pub fn coordinating_term(&self) -> Option<u64> {
        if self.controller.leader() != Some(self.node_id) {
            return None;
        }
        let rx = self.controller.raft.metrics();
        let m = rx.borrow();
        let own = m.current_leader == Some(self.node_id)
            && m.last_applied.is_some_and(|l| l.leader_id.term == m.current_term);
        own.then_some(m.current_term)
    }

    /// Whether openraft still has this node leading the controller in `term`. Weaker than
    /// `coordinating_term` (no majority heard lately): enough for writes, which only commit if a
    /// majority accepts them in that term, and it does not turn a moment of missed heartbeats
    /// into refused commits that clients then retry behind newer ones.
    pub fn leads_controller_in(&self, term: u64) -> bool {
        let rx = self.controller.raft.metrics();
        let m = rx.borrow();
        m.current_leader == Some(self.node_id) && m.current_term == term
    }

    /// Whether openraft has this node leading the controller now, in whatever term (no
    /// liveness or confirmation involved).
    pub fn leads_controller(&self) -> bool {
        self.controller.raft.metrics().borrow().current_leader == Some(self.node_id)
    }

    /// Confirms with a majority that this node still leads the controller in `term` and waits
    /// until what was committed before is applied here (openraft's linearizable read), so a
    /// read of the applied metadata is not stale: a leader cut off from the others keeps the
    /// Leader role (openraft 0.9) and would otherwise answer from old state.
    pub async fn confirm_controller_leadership(&self, term: u64, limit: Duration) -> Result<()> {
        let not = |why: String| BrokerError::NotCoordinator(why);
        match tokio::time::timeout(limit, self.controller.raft.ensure_linearizable()).await {
            Err(_) => return Err(not(format!("no majority confirmed the leadership within {limit:?}"))),
            Ok(Err(e)) => return Err(not(e.to_string())),
            Ok(Ok(_)) => {}
        }
        match self.coordinating_term() {
            Some(t) if t == term => Ok(()),
            other => Err(not(format!("coordinating term {other:?}, not {term}"))),
        }
    }

    /// Proposes a controller command on this node only, in controller term `term`: never
    /// forwarded. What only the current leader may decide (offset commits checked against its
    /// group generations) must not be applied on behalf of a deposed one.
    pub async fn propose_controller_as_leader(
        &self,
        term: u64,
        command: ControllerCommand,
    ) -> Result<ControllerReply> {
        // Raft leadership in `term` is enough here (see `leads_controller_in`): refusing a commit
        // because a heartbeat was missed made librdkafka retry it behind newer ones.
        if !self.leads_controller_in(term) {
            return Err(BrokerError::NotCoordinator(format!(
                "no longer the controller leader of term {term}"
            )));
        }
        match self.controller.propose(command.to_command()).await {
            Ok(Ok(r)) => Ok(ControllerReply::from_result(&r)),
            Ok(Err(ProposeError::NotLeader { leader })) => {
                Err(BrokerError::NotCoordinator(format!("the controller is led by {leader:?} now")))
            }
            Ok(Err(ProposeError::Stopped)) | Err(_) => Err(BrokerError::ShuttingDown),
            Ok(Err(ProposeError::Failed(e))) => Err(BrokerError::Raft {
                group: crate::group_id::GroupId::Controller,
                step: "propose",
                reason: e,
            }),
        }
    }

    /// True once this node's copy of the cluster metadata can be trusted: the controller has had
    /// a leader and everything in the local controller log was applied, at least once since
    /// start-up. A restarted node replays its log only after it hears from a leader; before that
    /// its topic list is empty, and an answer "unknown topic" would make librdkafka drop the
    /// topic for 30 s. Once caught up it stays so: a controller leader cut off from its majority
    /// keeps an uncommitted tail forever, and waiting on that stalled every Metadata request
    /// (and the connection behind it) for the whole partition.
    pub fn metadata_ready(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.metadata_caught_up.load(Ordering::Relaxed) {
            return true;
        }
        let m = self.controller.metrics();
        let ready = m.current_leader.is_some() && m.last_applied.map(|l| l.index) == m.last_log_index;
        if ready {
            self.metadata_caught_up.store(true, Ordering::Relaxed);
        }
        ready
    }

    /// Waits (bounded) until `metadata_ready`.
    pub async fn wait_metadata_ready(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        let mut rx = self.controller.raft.metrics();
        loop {
            if self.metadata_ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return false;
            }
        }
    }

    /// Runs a controller command on the controller leader (here or forwarded) and waits until
    /// this node has applied it too, so a topic created through any node is visible at once.
    pub async fn propose_controller(
        &self,
        command: ControllerCommand,
    ) -> std::result::Result<ControllerReply, ProposeError> {
        let result = match self.controller.propose(command.to_command()).await {
            Ok(Ok(r)) => r,
            Ok(Err(ProposeError::NotLeader { leader: Some(leader) })) if leader != self.node_id => {
                let reply = self
                    .transport
                    .request(
                        leader,
                        GroupId::Controller,
                        RaftRequest::Propose(command.to_command()),
                        FORWARD_TIMEOUT,
                    )
                    .await;
                match reply {
                    Ok(RaftReply::Proposed(Ok(r))) => r,
                    Ok(RaftReply::Proposed(Err(e))) => return Err(ProposeError::Failed(e)),
                    Ok(other) => return Err(ProposeError::Failed(format!("unexpected reply {other:?}"))),
                    Err(e) => return Err(ProposeError::Failed(e.to_string())),
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(ProposeError::Stopped),
        };
        self.wait_controller_applied().await;
        Ok(ControllerReply::from_result(&result))
    }

    /// Waits (bounded) until the local controller state machine has caught up with the leader.
    async fn wait_controller_applied(&self) {
        let deadline = tokio::time::Instant::now() + FORWARD_TIMEOUT;
        let mut rx = self.controller.raft.metrics();
        loop {
            let m = rx.borrow_and_update().clone();
            let target = self.controller_leader_applied_hint(&m);
            if m.last_applied.map(|l| l.index) >= target {
                return;
            }
            if tokio::time::timeout_at(deadline, rx.changed()).await.is_err() {
                return;
            }
        }
    }

    /// The index this node must apply to see everything committed before now: its own last log
    /// index (entries it has are the leader's up to there).
    fn controller_leader_applied_hint(&self, m: &crate::raft::typ::RaftMetrics) -> Option<u64> {
        m.last_log_index
    }

    /// Whether this node has begun to stop (and so refuses to take leaderships handed to it).
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops every group and the transport.
    pub async fn stop(&self) {
        // Concurrently: one after another, 10,000 groups took longer than a graceful stop may.
        let started = std::time::Instant::now();
        let groups = self.partition_groups();
        let count = groups.len();
        futures::stream::iter(groups)
            .for_each_concurrent(GROUPS_AT_ONCE, |g| async move { g.stop().await })
            .await;
        self.controller.stop().await;
        tracing::info!(groups = count, ms = started.elapsed().as_millis() as u64, "raft groups stopped");
        self.tasks.close();
        self.tasks.wait().await;
        self.transport.close().await;
    }
}

/// Every peer's Raft address, and every node's Kafka address (this one's as advertised).
fn addresses(
    cluster: &ClusterConfig,
    node_id: NodeId,
    kafka_advertised: SocketAddr,
) -> (BTreeMap<NodeId, SocketAddr>, BTreeMap<NodeId, SocketAddr>) {
    let peers = cluster.peers.iter().map(|p| (p.id as NodeId, p.raft)).collect();
    let mut kafka_addrs: BTreeMap<NodeId, SocketAddr> =
        cluster.peers.iter().map(|p| (p.id as NodeId, p.kafka)).collect();
    kafka_addrs.insert(node_id, kafka_advertised);
    (peers, kafka_addrs)
}

/// The openraft configuration every group of this node shares (`raft_group::group_config`).
fn raft_config(cluster: &ClusterConfig) -> Result<Arc<openraft::Config>> {
    let config_error = |message: String| BrokerError::Config { source_name: "cluster".into(), message };
    let config = raft_group::group_config(cluster.election_timeout_min_ms, cluster.election_timeout_max_ms)
        .map_err(config_error)?;
    Ok(Arc::new(config))
}

/// The failure detector over `nodes`, told of every message the transport hears from a peer.
fn start_liveness(
    node_id: NodeId,
    nodes: impl IntoIterator<Item = NodeId>,
    cluster: &ClusterConfig,
    transport: &Transport,
) -> Arc<Liveness> {
    // A peer silent for the whole election timeout range is suspected. The lease followers
    // honour (openraft's election_timeout_max, see `raft_config`) is shorter, so they grant a
    // successor at once.
    let liveness =
        Arc::new(Liveness::new(node_id, nodes, Duration::from_millis(cluster.election_timeout_max_ms)));
    let heard = Arc::clone(&liveness);
    transport.on_heard(Arc::new(move |peer| heard.heard(peer)));
    liveness
}

/// Starts the controller group over its log in the store, with `voters` (every node) as its
/// members; returns the applier holding its metadata, and the group.
async fn start_controller(
    env: &GroupEnv,
    voters: Vec<NodeId>,
) -> Result<(Arc<ControllerApplier>, Arc<RaftGroup>)> {
    let controller_state = ControllerApplier::new();
    let controller_log = env.store.create_partition(CONTROLLER_TOPIC, 0)?;
    let controller =
        RaftGroup::start(env, GroupId::Controller, voters, controller_log, controller_state.clone()).await?;
    Ok((controller_state, controller))
}

async fn bind_raft_listener(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            BrokerError::PortInUse { listener: "raft", addr, port: addr.port() }
        } else {
            BrokerError::io("bind raft listener", addr.to_string(), e)
        }
    })
}
