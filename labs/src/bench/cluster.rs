//! A three-node `clusterlab-broker` cluster owned by a bench run, and what each node's
//! `GET /state` says about Raft.
//!
//! The processes belong to a [`Supervisor`], the one owner of broker processes in `labs`: it
//! picks the ports, writes each node's config, spawns, signals and reaps (and kills whatever is
//! left when dropped). A bench's supervisor differs from the lab's only in the options that keep
//! the lab out of the measurement: direct links (no fabric proxy), no resource sampling, quiet
//! brokers (`RUST_LOG=warn` unless set), no auto-created topics, and one stderr log per start in
//! the node's directory under a temporary directory (kept with `CLUSTERLAB_KEEP_DATA=1`).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Serialize;

use crate::bench::broker_process::{STATE_TIMEOUT, STOP_TIMEOUT};
use crate::error::{LabError, Result};
use crate::supervisor::{Supervisor, SupervisorConfig};

/// Nodes in the cluster (node ids 1..=NODES).
pub const NODES: usize = 3;
/// How often the /state pollers look again.
pub const POLL: Duration = Duration::from_millis(10);

/// The Raft timing every node gets; printed in the setup.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RaftTiming {
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
}

/// The fixed addresses of one node (its own listeners: a bench cluster has no proxies).
#[derive(Debug, Clone, Copy)]
pub struct NodeAddrs {
    pub id: i32,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
}

/// `/state` `raft` of one node: the node's own type (`broker::telemetry::wire`).
pub use broker::cluster::ClusterSnapshot as RaftView;
use broker::telemetry::wire::claimed_leader;
/// The Raft group name of a partition, as `/state` spells it.
pub use broker::telemetry::wire::partition_group;

/// One group of a node's view.
pub fn group<'a>(view: &'a RaftView, name: &str) -> Option<&'a broker::cluster::watch::GroupState> {
    view.groups.iter().find(|g| g.group == name)
}

/// The node that says it leads `group`, in the highest term any node reports (a deposed leader
/// that has not noticed yet reports an older term and loses).
pub fn leader_of(views: &[RaftView], group: &str) -> Option<(i32, u64)> {
    let reports = views.iter().filter_map(|v| self::group(v, group).map(|g| (v.node_id as i32, g)));
    claimed_leader(reports).map(|(id, g)| (id, g.term))
}

/// True once the controller and every partition of `topic` have a leader.
pub fn cluster_ready(views: &[RaftView], topic: &str, partitions: i32) -> bool {
    leader_of(views, "controller").is_some()
        && (0..partitions).all(|p| leader_of(views, &partition_group(topic, p)).is_some())
}

/// The supervisor's options for a bench cluster: the lab's defaults, except what would put the
/// lab into the figures (see the module comment; each option says why).
fn supervisor_config(bin: &Path, run_dir: &Path, fsync: &str, timing: RaftTiming) -> SupervisorConfig {
    let mut c = SupervisorConfig::new(bin.to_path_buf());
    c.nodes = NODES;
    c.data_root = Some(run_dir.to_path_buf());
    c.fsync = fsync.to_string();
    c.election_timeout_ms = (timing.election_timeout_min_ms, timing.election_timeout_max_ms);
    c.heartbeat_ms = timing.heartbeat_interval_ms;
    c.replication_factor = NODES as i16;
    c.direct_links = true;
    c.sample_resources = false;
    c.log_files = true;
    // Info-level logs per request would tax the brokers during a throughput test.
    c.broker_rust_log = "warn".into();
    c.auto_create_topics = false;
    c.stop_timeout = STOP_TIMEOUT;
    c
}

/// Three broker processes on fresh data directories under one temporary directory.
pub struct Cluster {
    supervisor: Supervisor,
    // Kept last so the directory is removed after the processes are gone.
    _data: tempfile::TempDir,
}

impl Cluster {
    /// Starts the three nodes (spawned together); returns once every node printed its ready
    /// line (Raft elections may still be under way: see [`Cluster::wait_ready`]).
    pub async fn start(bin: &Path, data_root: &Path, fsync: &str, timing: RaftTiming) -> Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("clusterlab-bench-cluster-")
            // CLUSTERLAB_KEEP_DATA=1 keeps data dirs and broker logs for a post-mortem.
            .disable_cleanup(std::env::var_os("CLUSTERLAB_KEEP_DATA").is_some())
            .tempdir_in(data_root)
            .map_err(LabError::io(format!("creating a data directory in {}", data_root.display())))?;
        // Nobody reads the supervisor's events: what a bench needs is in the log files, and a
        // node's death is logged by the supervisor too.
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let config = supervisor_config(bin, data.path(), fsync, timing);
        let supervisor = Supervisor::new(config, events).await?;
        // An error drops the supervisor, which kills the nodes already started.
        supervisor.start_all().await?;
        tracing::info!(bootstrap = %supervisor.bootstrap_servers(), fsync, "cluster processes ready");
        Ok(Cluster { supervisor, _data: data })
    }

    /// Every node's listeners, in node order.
    pub fn addrs(&self) -> Vec<NodeAddrs> {
        let nodes = self.supervisor.nodes();
        nodes
            .iter()
            .map(|n| NodeAddrs { id: n.id, kafka: n.kafka_direct, http: n.http, raft: n.raft })
            .collect()
    }

    /// The listeners of node `id`.
    pub fn addr(&self, id: i32) -> Result<NodeAddrs> {
        let n = self.supervisor.node_info(id)?;
        Ok(NodeAddrs { id, kafka: n.kafka_direct, http: n.http, raft: n.raft })
    }

    /// All three Kafka listeners, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.supervisor.bootstrap_servers()
    }

    /// The process id of node `id` while it runs.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.supervisor.node_info(id).ok()?.pid
    }

    /// The process ids of the running nodes, in node order (for readings from `/proc`).
    pub fn pids(&self) -> Vec<u32> {
        self.supervisor.nodes().iter().filter_map(|n| n.pid).collect()
    }

    pub fn is_running(&self, id: i32) -> bool {
        self.pid(id).is_some()
    }

    /// SIGKILL node `id` (no flush, no goodbye); returns when it is dead and reaped.
    pub async fn kill(&self, id: i32) -> Result<()> {
        tracing::debug!(node = id, pid = ?self.pid(id), "SIGKILL");
        self.supervisor.kill(id).await
    }

    /// Starts a killed node again on its old ports and data directory; returns once it is ready.
    pub async fn restart(&self, id: i32) -> Result<()> {
        if self.is_running(id) {
            return Ok(());
        }
        self.supervisor.start(id).await
    }

    /// `/state` raft views of every running node that answers (a node mid-restart may not).
    pub async fn views(&self) -> Vec<RaftView> {
        let mut out = Vec::with_capacity(NODES);
        for a in self.addrs() {
            if self.is_running(a.id) {
                if let Ok(v) = raft_view(a.http).await {
                    out.push(v);
                }
            }
        }
        out
    }

    /// Polls /state until the controller and every partition of `topic` have a leader.
    pub async fn wait_ready(&self, topic: Option<(&str, i32)>, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        loop {
            let views = self.views().await;
            let ok = match topic {
                Some((t, n)) => cluster_ready(&views, t, n),
                None => leader_of(&views, "controller").is_some(),
            };
            if ok {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= timeout {
                return Err(LabError::Timeout {
                    what: format!("waiting for Raft leaders ({topic:?})"),
                    secs: timeout.as_secs_f64(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM to every running node in turn, each waited for; the first that did not exit with
    /// status 0 in time is the error, returned after every node was asked to stop.
    pub async fn stop(&self) -> Result<()> {
        let mut first_err = None;
        for id in self.supervisor.node_ids() {
            if let Err(e) = self.supervisor.stop_gracefully(id).await {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// `GET /state` of one node, reduced to its `raft` object.
pub async fn raft_view(http: SocketAddr) -> Result<RaftView> {
    let parts = crate::node_client::typed::StateParts::ALL;
    let state = crate::node_client::typed::state(http, parts, STATE_TIMEOUT).await?;
    state.raft.ok_or_else(|| LabError::Telemetry {
        addr: http.to_string(),
        detail: "/state has no 'raft' object: the node is not in cluster mode".into(),
    })
}

/// Creates an RF-3 topic, retrying while there is no controller leader yet (NOT_CONTROLLER).
pub async fn create_replicated_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Result<()> {
    create_topic_with_replicas(bootstrap, topic, partitions, NODES as i32, timeout).await
}

/// [`create_replicated_topic`] with `replication_factor` replicas per partition.
pub async fn create_topic_with_replicas(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
    timeout: Duration,
) -> Result<()> {
    // The broker waits for the new partitions' leaders at most 30 s before it answers.
    const MAX_OPERATION: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        attempts += 1;
        match crate::bench::produce::create_topic(
            bootstrap,
            topic,
            partitions,
            replication_factor,
            left.min(MAX_OPERATION),
        )
        .await
        {
            Ok(()) => return Ok(()),
            // An earlier attempt that timed out on the client's side may have created it.
            Err(LabError::Kafka {
                source: KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists),
                ..
            }) if attempts > 1 => return Ok(()),
            Err(e) if started.elapsed() < timeout => {
                tracing::debug!(error = %e, "topic creation not yet possible; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use broker::cluster::watch::GroupState;
    use broker::telemetry::wire::Role;

    fn g(group: &str, term: u64, role: Role, leader: Option<u64>) -> GroupState {
        GroupState {
            group: group.parse().unwrap(),
            term,
            voted_for: leader,
            vote_committed: leader.is_some(),
            role,
            leader,
            last_log_index: None,
            applied_index: None,
            matched: Default::default(),
            voters: vec![1, 2, 3],
        }
    }

    fn view(node_id: u64, groups: Vec<GroupState>) -> RaftView {
        RaftView {
            node_id,
            controller_leader: None,
            groups,
            summary: Default::default(),
            peers: Vec::new(),
            metadata: None,
        }
    }

    #[test]
    fn highest_term_leader_wins() {
        let views = vec![
            view(1, vec![g("t-0", 3, Role::Leader, Some(1))]),
            view(2, vec![g("t-0", 4, Role::Leader, Some(2))]),
            view(3, vec![g("t-0", 4, Role::Follower, Some(2))]),
        ];
        assert_eq!(leader_of(&views, "t-0"), Some((2, 4)));
        assert_eq!(leader_of(&views, "t-1"), None);
    }

    #[test]
    fn ready_needs_controller_and_every_partition() {
        let mut views = vec![view(
            1,
            vec![g("controller", 1, Role::Leader, Some(1)), g("t-0", 1, Role::Leader, Some(1))],
        )];
        assert!(cluster_ready(&views, "t", 1));
        assert!(!cluster_ready(&views, "t", 2));
        views[0].groups.push(g("t-1", 2, Role::Candidate, None));
        assert!(!cluster_ready(&views, "t", 2));
        views.push(view(2, vec![g("t-1", 2, Role::Leader, Some(2))]));
        assert!(cluster_ready(&views, "t", 2));
        assert_eq!(partition_group("t", 1), "t-1");
    }
}
