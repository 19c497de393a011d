//! The process supervisor: owns a lab's broker processes and the link fabric between them. It is
//! the one owner of broker processes in `labs`: the lab, the drills and the benches (through
//! `bench::cluster`, with direct links, no sampling and a log file per start) all run theirs here.
//!
//! Every broker is the lab's child, in its own process group, with PR_SET_PDEATHSIG(SIGKILL) and
//! kill-on-drop, and `Drop` SIGKILLs and reaps every child: however the lab ends, no broker
//! outlives it. Signals only ever go to pids this supervisor spawned and has not yet reaped.
//!
//! Layout of a run: `<data_root>/node-<id>/{node.toml, broker.pid, data/}`, plus
//! `broker-start-<n>.log` per start with `log_files`.
//!
//! Modules: `config` (what a lab is made of, each node's TOML), `ports` (the brokers' loopback
//! ports), `process` (one broker process as held here) and `nodes` (its life cycle: start, kill,
//! stop, pause, restart), `orphans` (brokers left by an earlier run), `resources` (CPU, memory and
//! disk per node, sampled), `segments` (corrupting a segment for the recovery lessons), `events`
//! (what the supervisor reports to its owner).

mod config;
mod events;
mod nodes;
mod orphans;
mod ports;
mod process;
mod resources;
mod segments;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedSender;

pub use config::SupervisorConfig;
pub use events::{NodeInfo, NodeState, ProcessState, Stream, SupervisorEvent};
pub use segments::Corruption;

use crate::error::{LabError, Result};
use crate::fabric::{Fabric, NodeTarget};
use config::{NodePorts, PeerAddrs};
use process::Proc;

/// Bound on the supervisor's calls to a node (/state of a busy node is tens of KiB).
const NODE_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long a node whose fault request failed may take to end before the failure is reported.
const FAULT_EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The broker binary for tests with real nodes: `CLUSTERLAB_BROKER_BIN`, else the target dir the
/// test runs from (`cargo build -p broker`).
#[cfg(test)]
pub(crate) fn tests_broker_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CLUSTERLAB_BROKER_BIN") {
        return p.into();
    }
    // target/<profile>/deps/<test exe> -> target/<profile>/clusterlab-broker
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().join("clusterlab-broker")
}

/// One node as the supervisor tracks it.
struct Node {
    id: i32,
    ports: NodePorts,
    advertised: SocketAddr,
    data_dir: PathBuf,
    config_file: PathBuf,
    pid_file: PathBuf,
    proc: Option<Proc>,
    state: NodeState,
    /// Launches so far: numbers the log file of each start.
    starts: u32,
    /// How its last process ended (`None` before the first end).
    last_exit: Option<process::ExitReport>,
}

impl Node {
    fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.id,
            pid: self.proc.as_ref().map(|p| p.pid),
            state: self.state,
            kafka_direct: self.ports.kafka,
            kafka_advertised: self.advertised,
            http: self.ports.http,
            raft: self.ports.raft,
            data_dir: self.data_dir.clone(),
            config_file: self.config_file.clone(),
        }
    }
}

type Nodes = Arc<Mutex<BTreeMap<i32, Node>>>;

fn lock(nodes: &Nodes) -> std::sync::MutexGuard<'_, BTreeMap<i32, Node>> {
    // A panic elsewhere must not make the lab unable to kill its brokers.
    nodes.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct Supervisor {
    config: SupervisorConfig,
    run_dir: PathBuf,
    fabric: Fabric,
    nodes: Nodes,
    events: UnboundedSender<SupervisorEvent>,
    /// `None` when the config turns sampling off.
    sampler: Option<resources::Sampler>,
}

impl Supervisor {
    /// Lays out the run directory, picks every port, starts the fabric's proxies (none with
    /// `direct_links`) and writes each node's config file. Starts no broker (see
    /// [`Supervisor::start_all`]).
    pub async fn new(
        config: SupervisorConfig,
        events: UnboundedSender<SupervisorEvent>,
    ) -> Result<Supervisor> {
        config.validate()?;
        let run_dir = config.data_root.clone().unwrap_or_else(config::default_run_dir);
        let ids: Vec<i32> = (1..=config.nodes as i32).collect();
        let (picked, held) = ports::reserve(ids.len() * 3)?;
        let node_ports: BTreeMap<i32, NodePorts> = ids
            .iter()
            .zip(picked.chunks(3))
            .map(|(&id, p)| (id, NodePorts { kafka: p[0], http: p[1], raft: p[2] }))
            .collect();
        // Direct links: a fabric with no proxies, so there is nothing to show or fault.
        let targets: Vec<NodeTarget> = if config.direct_links {
            Vec::new()
        } else {
            node_ports.iter().map(|(&id, p)| NodeTarget { id, raft: p.raft, kafka: p.kafka }).collect()
        };
        let fabric = Fabric::new(&targets).await?;
        // The proxies are bound: the brokers' ports can be let go for the brokers to take.
        drop(held);
        let mut nodes = BTreeMap::new();
        for &id in &ids {
            nodes.insert(id, lay_out_node(&config, &run_dir, &fabric, &node_ports, id)?);
        }
        tracing::info!(run_dir = %run_dir.display(), nodes = config.nodes, direct = config.direct_links, "lab laid out");
        let nodes: Nodes = Arc::new(Mutex::new(nodes));
        let sampler = config.sample_resources.then(|| start_sampling(&nodes, events.clone()));
        Ok(Supervisor { config, run_dir, fabric, nodes, events, sampler })
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn fabric(&self) -> &Fabric {
        &self.fabric
    }

    /// The nodes' advertised Kafka addresses (the client proxies, or the brokers' own listeners
    /// with `direct_links`), comma-separated, for a Kafka client's `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        lock(&self.nodes).values().map(|n| n.advertised.to_string()).collect::<Vec<_>>().join(",")
    }

    pub fn node_ids(&self) -> Vec<i32> {
        lock(&self.nodes).keys().copied().collect()
    }

    pub fn node_info(&self, id: i32) -> Result<NodeInfo> {
        self.with_node(id, |n| n.info())
    }

    pub fn nodes(&self) -> Vec<NodeInfo> {
        lock(&self.nodes).values().map(Node::info).collect()
    }

    fn with_node<T>(&self, id: i32, f: impl FnOnce(&mut Node) -> T) -> Result<T> {
        let mut nodes = lock(&self.nodes);
        let count = nodes.len();
        nodes.get_mut(&id).map(f).ok_or(LabError::UnknownNode { id, nodes: count })
    }

    /// The node's process if it runs (or is paused, or still starting).
    fn running(&self, id: i32) -> Result<Option<Proc>> {
        self.with_node(id, |n| n.proc.clone())
    }

    fn running_or_err(&self, id: i32, doing: &str) -> Result<Proc> {
        self.running(id)?
            .ok_or_else(|| LabError::NodeState { id, detail: format!("cannot {doing}: it is not running") })
    }

    /// GET /state of a running node.
    pub async fn state(&self, id: i32) -> Result<broker::state::StateSnapshot> {
        let http = self.node_info(id)?.http;
        crate::node_client::typed::state(http, crate::node_client::typed::StateParts::ALL, NODE_CALL_TIMEOUT)
            .await
    }

    /// Drops a node's files to their last fsync and aborts it (the broker does both).
    /// Returns the broker's report of what was cut.
    pub async fn power_cut(&self, id: i32) -> Result<broker::log::PowerCutReport> {
        let proc = self.running_or_err(id, "cut power")?;
        let http = self.node_info(id)?.http;
        proc.expected.store(true, std::sync::atomic::Ordering::SeqCst);
        let answer =
            match crate::node_client::post_text(http, "/faults/power-cut", None, NODE_CALL_TIMEOUT).await {
                Ok(body) => body,
                Err(e) => {
                    proc.expected.store(false, std::sync::atomic::Ordering::SeqCst);
                    return Err(e);
                }
            };
        if !proc.wait_exit(nodes::KILL_WAIT).await {
            tracing::warn!(node = id, "node still runs after its power cut; killing it");
            proc.signal(libc::SIGKILL);
            proc.wait_exit(nodes::KILL_WAIT).await;
        }
        serde_json::from_str(&answer).map_err(|source| LabError::Json {
            what: format!("reading node {id}'s power-cut report"),
            source,
        })
    }

    /// Adds `delay_ms` before every fsync of the node (0 clears it).
    pub async fn slow_disk(&self, id: i32, delay_ms: u64) -> Result<()> {
        let http = self.node_info(id)?.http;
        self.running_or_err(id, "slow its disk")?;
        let body = serde_json::json!({ "delay_ms": delay_ms }).to_string();
        crate::node_client::post_text(http, "/faults/slow-fsync", Some(body), NODE_CALL_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// Makes every fsync of the node fail with EIO: the broker stops at its next flush round
    /// (exit 74) and stays down until started again.
    pub async fn fsync_fail(&self, id: i32) -> Result<()> {
        let http = self.node_info(id)?.http;
        let proc = self.running_or_err(id, "fail its disk")?;
        match crate::node_client::post_text(http, "/faults/fsync-fail", Some("{}".into()), NODE_CALL_TIMEOUT)
            .await
        {
            Ok(_) => Ok(()),
            // Under load its next flush comes within milliseconds, and the node may stop before
            // its answer is written: a node that ends right after the request took the fault.
            Err(_) if proc.wait_exit(FAULT_EXIT_WAIT).await => {
                tracing::info!(node = id, "node stopped before answering its fsync-failure fault");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Flips one byte in the middle of the newest non-empty segment of `topic`-`partition` on
    /// this node. Only while the node is stopped: a running broker would overwrite or cache it.
    pub fn corrupt_segment(&self, id: i32, topic: &str, partition: i32) -> Result<Corruption> {
        let (proc, data_dir) =
            self.with_node(id, |n| (n.proc.as_ref().map(|p| p.pid), n.data_dir.clone()))?;
        if let Some(pid) = proc {
            return Err(LabError::NodeState {
                id,
                detail: format!("stop it before corrupting its disk (it runs as pid {pid})"),
            });
        }
        segments::corrupt_newest_segment(&data_dir, topic, partition)
    }
}

/// Node `id`'s directory, data directory and config file, with its addresses from [`links`].
fn lay_out_node(
    config: &SupervisorConfig,
    run_dir: &Path,
    fabric: &Fabric,
    all: &BTreeMap<i32, NodePorts>,
    id: i32,
) -> Result<Node> {
    let dir = run_dir.join(format!("node-{id}"));
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).map_err(LabError::io(format!("creating {}", data_dir.display())))?;
    let ports = &all[&id];
    let (advertised, peers) = links(config.direct_links, fabric, all, id);
    let config_file = dir.join("node.toml");
    let broker_config = config::node_config(config, id, &data_dir, ports, advertised, &peers)?;
    crate::launcher::write_broker_config(&config_file, &broker_config)?;
    let pid_file = dir.join("broker.pid");
    Ok(Node {
        id,
        ports: *ports,
        advertised,
        data_dir,
        config_file,
        pid_file,
        proc: None,
        state: NodeState::Stopped,
        starts: 0,
        last_exit: None,
    })
}

/// What node `id` advertises to clients, and where it reaches its peers: the fabric's proxies,
/// so every link can be faulted, or with `direct` the nodes' own listeners.
fn links(
    direct: bool,
    fabric: &Fabric,
    all: &BTreeMap<i32, NodePorts>,
    id: i32,
) -> (SocketAddr, Vec<PeerAddrs>) {
    let peers = all.iter().filter(|(&p, _)| p != id);
    if direct {
        let peers = peers.map(|(&p, ports)| PeerAddrs { id: p, raft: ports.raft, kafka: ports.kafka });
        return (all[&id].kafka, peers.collect());
    }
    let client = |n: i32| fabric.client_proxy(n).expect("the fabric has a client proxy per node");
    let peers = peers.map(|(&p, _)| PeerAddrs {
        id: p,
        raft: fabric.raft_proxy(id, p).expect("the fabric has a proxy per node pair"),
        kafka: client(p),
    });
    (client(id), peers.collect())
}

/// Samples the running nodes' resources (whichever run at each tick) into `events`.
fn start_sampling(nodes: &Nodes, events: UnboundedSender<SupervisorEvent>) -> resources::Sampler {
    let sampled = Arc::clone(nodes);
    let targets = move || {
        lock(&sampled)
            .values()
            .filter_map(|n| {
                let pid = n.proc.as_ref()?.pid;
                Some(resources::Target { node: n.id, pid, data_dir: n.data_dir.clone(), http: n.ports.http })
            })
            .collect()
    };
    resources::Sampler::start(targets, events)
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(s) = &self.sampler {
            s.cancel();
        }
        let procs: Vec<Proc> = lock(&self.nodes).values().filter_map(|n| n.proc.clone()).collect();
        for p in procs {
            p.expected.store(true, std::sync::atomic::Ordering::SeqCst);
            tracing::info!(pid = p.pid, "lab dropped: killing its broker");
            p.child.kill();
        }
    }
}
