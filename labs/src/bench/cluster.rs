//! A three-node `clusterlab-broker` cluster owned by this run: ports, start, SIGKILL, restart,
//! and what each node's `GET /state` says about Raft.
//!
//! Peers must know each other's addresses before they start, so every port is picked up front
//! (bind 127.0.0.1:0, read the port, close it just before spawning). Each node is a
//! [`Child`] of [`crate::launcher`], killed on drop; only these PIDs are ever signalled.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::broker_process::{ReadyLine, READY_TIMEOUT, STATE_TIMEOUT, STOP_TIMEOUT};
use crate::error::{LabError, Result};
use crate::launcher::{self, Child, Launch};

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

/// The fixed addresses of one node.
#[derive(Debug, Clone, Copy)]
pub struct NodeAddrs {
    pub id: i32,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
}

/// `/state` `raft` of one node: the node's own type (`broker::telemetry::wire`).
pub use broker::cluster::ClusterSnapshot as RaftView;
use broker::config::{ClusterConfig, Config, PeerConfig};
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

/// Reserves a free loopback port; the caller keeps the listener until just before the node
/// that gets the port starts (so the nine picks cannot collide), then drops it. Another process
/// could take the port in that window; a clash fails the start loudly.
fn free_port(held: &mut Vec<TcpListener>) -> Result<SocketAddr> {
    let l =
        TcpListener::bind("127.0.0.1:0").map_err(LabError::io("binding 127.0.0.1:0 to find a free port"))?;
    let addr = l.local_addr().map_err(LabError::io("reading a bound port"))?;
    held.push(l);
    Ok(addr)
}

/// Three broker processes on fresh data directories under one temporary directory.
pub struct Cluster {
    bin: PathBuf,
    fsync: String,
    timing: RaftTiming,
    pub addrs: Vec<NodeAddrs>,
    /// `nodes[i]` is node id `i + 1`; `None` while killed.
    nodes: Vec<Option<Child>>,
    // Kept last so the directory is removed after the processes are gone.
    data: tempfile::TempDir,
}

impl Cluster {
    /// Picks ports and spawns the three nodes in parallel; returns once every node printed its
    /// ready line (Raft elections may still be under way: see [`Cluster::wait_ready`]).
    pub fn start(bin: &Path, data_root: &Path, fsync: &str, timing: RaftTiming) -> Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("clusterlab-bench-cluster-")
            // CLUSTERLAB_KEEP_DATA=1 keeps data dirs and broker logs for a post-mortem.
            .disable_cleanup(std::env::var_os("CLUSTERLAB_KEEP_DATA").is_some())
            .tempdir_in(data_root)
            .map_err(LabError::io(format!("creating a data directory in {}", data_root.display())))?;
        let (mut addrs, mut held) = (Vec::with_capacity(NODES), Vec::new());
        for id in 1..=NODES as i32 {
            addrs.push(NodeAddrs {
                id,
                kafka: free_port(&mut held)?,
                http: free_port(&mut held)?,
                raft: free_port(&mut held)?,
            });
        }
        drop(held);
        let mut cluster =
            Cluster { bin: bin.to_path_buf(), fsync: fsync.to_string(), timing, addrs, nodes: vec![], data };
        let spawned: Vec<Result<Child>> = std::thread::scope(|s| {
            let handles: Vec<_> = (1..=NODES as i32)
                .map(|id| {
                    let c = &cluster;
                    s.spawn(move || c.spawn_node(id))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LabError::Process {
                            what: "starting a node".into(),
                            detail: "spawn thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        for r in spawned {
            // An error drops the nodes already collected, which kills them.
            cluster.nodes.push(Some(r?));
        }
        tracing::info!(bootstrap = %cluster.bootstrap(), fsync, "cluster processes ready");
        Ok(cluster)
    }

    fn node_dir(&self, id: i32) -> PathBuf {
        self.data.path().join(format!("node{id}"))
    }

    /// Spawns node `id` with its fixed ports and data directory (also used to restart it).
    fn spawn_node(&self, id: i32) -> Result<Child> {
        let me = self.addrs[(id - 1) as usize];
        let peers = self.addrs.iter().filter(|p| p.id != id);
        let config = Config {
            node_id: id,
            data_dir: self.node_dir(id),
            kafka_listen: me.kafka,
            http_listen: me.http,
            fsync: self
                .fsync
                .parse()
                .map_err(|detail| LabError::InvalidArgument { what: "fsync", detail })?,
            auto_create_topics: false,
            cluster: Some(ClusterConfig {
                raft_listen: me.raft,
                peers: peers.map(|p| PeerConfig { id: p.id, raft: p.raft, kafka: p.kafka }).collect(),
                replication_factor: self.addrs.len() as i16,
                election_timeout_min_ms: self.timing.election_timeout_min_ms,
                election_timeout_max_ms: self.timing.election_timeout_max_ms,
                heartbeat_interval_ms: self.timing.heartbeat_interval_ms,
                ..ClusterConfig::default()
            }),
            ..Config::default()
        };
        let config_file = self.data.path().join(format!("node{id}.toml"));
        launcher::write_broker_config(&config_file, &config)?;
        let mut cmd = launcher::broker_command(&self.bin, &config_file);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        // One stderr log per start, so a restart does not truncate the log of the killed run.
        let log = self.data.path().join(format!("node{id}-start{}.log", log_serial()));
        let launch = Launch::new(format!("clusterlab-broker node {id}"), cmd).log_to(log);
        let (proc, ready) = launcher::spawn(launch, ReadyLine::parse)?;
        let ready = proc.expect_ready(ready, READY_TIMEOUT)?;
        tracing::debug!(node = id, pid = ready.pid, "node ready");
        Ok(proc)
    }

    /// All three Kafka listeners, comma-separated.
    pub fn bootstrap(&self) -> String {
        self.addrs.iter().map(|a| a.kafka.to_string()).collect::<Vec<_>>().join(",")
    }

    /// The process id of node `id` while it runs.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.nodes.get((id - 1) as usize)?.as_ref().map(Child::pid)
    }

    pub fn is_running(&self, id: i32) -> bool {
        self.nodes.get((id - 1) as usize).is_some_and(|n| n.is_some())
    }

    /// SIGKILL node `id` (no flush, no goodbye) and reap it; returns when it is dead.
    pub fn kill(&mut self, id: i32) -> Result<()> {
        let slot = self
            .nodes
            .get_mut((id - 1) as usize)
            .ok_or(LabError::InvalidArgument { what: "node id", detail: id.to_string() })?;
        if let Some(p) = slot.take() {
            tracing::debug!(node = id, pid = p.pid(), "SIGKILL");
            p.kill();
        }
        Ok(())
    }

    /// Starts a killed node again on its old ports and data directory; returns once it is ready.
    pub fn restart(&mut self, id: i32) -> Result<()> {
        if self.is_running(id) {
            return Ok(());
        }
        let proc = self.spawn_node(id)?;
        self.nodes[(id - 1) as usize] = Some(proc);
        Ok(())
    }

    /// `/state` raft views of every running node that answers (a node mid-restart may not).
    pub async fn views(&self) -> Vec<RaftView> {
        let mut out = Vec::with_capacity(NODES);
        for a in &self.addrs {
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

    /// SIGTERM every running node; the first non-zero exit or timeout is returned after all
    /// nodes were asked to stop.
    pub fn stop(&mut self) -> Result<()> {
        let mut first_err = None;
        for (i, slot) in self.nodes.iter_mut().enumerate() {
            if let Some(p) = slot.take() {
                let r = match p.stop(STOP_TIMEOUT) {
                    Ok(Some(0)) => Ok(()),
                    Ok(code) => Err(LabError::Process {
                        what: format!("stopping cluster node {} with SIGTERM", i + 1),
                        detail: format!("exit code {code:?}, expected 0; last stderr lines:\n{}", p.tail()),
                    }),
                    Err(e) => Err(e),
                };
                if let Err(e) = r {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn log_serial() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
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
    let started = Instant::now();
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        match crate::bench::produce::create_topic(
            bootstrap,
            topic,
            partitions,
            NODES as i32,
            left.min(Duration::from_secs(5)),
        )
        .await
        {
            Ok(()) => return Ok(()),
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
