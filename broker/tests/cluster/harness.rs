//! Starts, kills, stops and restarts the three `clusterlab-broker` processes of a cluster.
//! `observe.rs` reads their `/state` and `/digest` and waits for cluster-level conditions.
//!
//! Every process is owned by a `Proc` (`tests/node/process.rs`, shared with the single-node
//! harness) and killed by PID when dropped (also when a test panics).
//! Nothing sleeps to synchronise: start-up waits for the ready line, stops poll the exit status,
//! cluster conditions poll `/state` with a deadline, and every wait names what it waited for.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use labs::fabric::NodeTarget;

use crate::links::Links;
pub use crate::process::tail_lines;
use crate::process::{broker_command, Proc};

pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Elections, catch-up and convergence on a loaded 2-core machine.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);

/// A node of the cluster: fixed ports and data dir, and its process when running.
pub struct Node {
    pub id: i32,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    pub data_dir: PathBuf,
    /// Where this node dials each peer's Raft listener (the listener itself, or a link proxy).
    pub peer_raft: BTreeMap<i32, SocketAddr>,
    pub proc: Option<Proc>,
    /// stderr of the previous process of this node (kept for failure messages).
    pub last_stderr: String,
}

impl Node {
    fn command(&self, peers: &[(i32, SocketAddr)]) -> Command {
        let mut cmd = broker_command();
        cmd.arg("--node-id")
            .arg(self.id.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--kafka-listen")
            .arg(self.kafka.to_string())
            .arg("--http-listen")
            .arg(self.http.to_string())
            .arg("--raft-listen")
            .arg(self.raft.to_string())
            .args([
                "--election-timeout-min-ms",
                "300",
                "--election-timeout-max-ms",
                "600",
                "--heartbeat-interval-ms",
                "100",
            ])
            .args(["--replication-factor", "3", "--default-partitions", "3"]);
        for (id, kafka) in peers {
            cmd.arg("--peer").arg(format!("{id}={},{kafka}", self.peer_raft[id]));
        }
        cmd
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().map(|p| p.is_running()).unwrap_or(false)
    }

    pub fn stderr(&self) -> String {
        self.proc.as_ref().map(|p| p.stderr()).unwrap_or_else(|| self.last_stderr.clone())
    }
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub links: Option<Links>,
    _dirs: Vec<tempfile::TempDir>,
}

fn free_ports(n: usize) -> Result<(Vec<TcpListener>, Vec<u16>)> {
    let mut ls = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0")?;
        ports.push(l.local_addr()?.port());
        ls.push(l);
    }
    Ok((ls, ports))
}

impl Cluster {
    /// Starts `n` nodes with direct Raft links and waits for a controller leader known by all.
    pub fn start(n: usize) -> Result<Cluster> {
        Self::start_opts(n, false)
    }

    /// Like `start`, but every directed Raft link i->j goes through the lab's fabric (`links.rs`).
    pub fn start_with_links(n: usize) -> Result<Cluster> {
        Self::start_opts(n, true)
    }

    fn start_opts(n: usize, with_links: bool) -> Result<Cluster> {
        let mut last = None;
        for attempt in 0..3 {
            let (mut c, reserved) = Self::configure(n, with_links)?;
            drop(reserved); // free the reserved ports just before the brokers bind them
            let ids: Vec<i32> = c.ids();
            match c.start_nodes(&ids) {
                Ok(()) => {
                    c.wait_controller(CLUSTER_TIMEOUT)?;
                    return Ok(c);
                }
                Err(e) if format!("{e:#}").contains("in use") => {
                    eprintln!("cluster start attempt {attempt}: a reserved port was taken, retrying: {e:#}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap())
    }

    /// Allocates ports, dirs (and proxies) without starting anything. The returned listeners hold
    /// the ports until dropped.
    pub fn configure(n: usize, with_links: bool) -> Result<(Cluster, Vec<TcpListener>)> {
        let (reserved, ports) = free_ports(3 * n)?;
        let addr = |p: u16| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], p)) };
        let mut dirs = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir =
                tempfile::Builder::new().prefix(&format!("clusterlab-cluster-n{}-", i + 1)).tempdir()?;
            nodes.push(Node {
                id: i as i32 + 1,
                kafka: addr(ports[3 * i]),
                http: addr(ports[3 * i + 1]),
                raft: addr(ports[3 * i + 2]),
                data_dir: dir.path().to_path_buf(),
                peer_raft: BTreeMap::new(),
                proc: None,
                last_stderr: String::new(),
            });
            dirs.push(dir);
        }
        let raft: BTreeMap<i32, SocketAddr> = nodes.iter().map(|n| (n.id, n.raft)).collect();
        let links = if with_links {
            let targets: Vec<NodeTarget> =
                nodes.iter().map(|n| NodeTarget { id: n.id, raft: n.raft, kafka: n.kafka }).collect();
            Some(Links::start(&targets)?)
        } else {
            None
        };
        for node in &mut nodes {
            for (&j, &r) in &raft {
                if j != node.id {
                    let target = match &links {
                        Some(l) => l.addr(node.id, j)?,
                        None => r,
                    };
                    node.peer_raft.insert(j, target);
                }
            }
        }
        Ok((Cluster { nodes, links, _dirs: dirs }, reserved))
    }

    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: i32) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn spawn(&mut self, id: i32) -> Result<Proc> {
        let peers: Vec<(i32, SocketAddr)> =
            self.nodes.iter().filter(|n| n.id != id).map(|n| (n.id, n.kafka)).collect();
        let node = self.node_mut(id);
        if node.is_running() {
            bail!("node {id} is already running");
        }
        if let Some(old) = node.proc.take() {
            node.last_stderr = old.stderr();
        }
        Proc::spawn(node.command(&peers), &format!("node {id}"))
    }

    fn await_ready(&mut self, id: i32, mut proc: Proc) -> Result<()> {
        let ready = proc.await_ready(READY_TIMEOUT)?;
        if ready.node_id != id {
            bail!("node {id} ready line names another node: {ready}");
        }
        self.node_mut(id).proc = Some(proc);
        Ok(())
    }

    /// Spawns the given nodes together, then waits for each one's ready line.
    pub fn start_nodes(&mut self, ids: &[i32]) -> Result<()> {
        let mut starting = Vec::new();
        for &id in ids {
            starting.push((id, self.spawn(id)?));
        }
        for (id, s) in starting {
            self.await_ready(id, s)?;
        }
        Ok(())
    }

    /// SIGKILL: a crash with no chance to flush or hand over leadership.
    pub fn kill(&mut self, id: i32) -> Result<()> {
        let node = self.node_mut(id);
        let proc = node.proc.as_mut().ok_or_else(|| anyhow!("kill: node {id} is not running"))?;
        proc.signal(libc::SIGKILL)?;
        proc.wait_exit(EXIT_TIMEOUT)?;
        Ok(())
    }

    /// SIGTERM and wait for the graceful exit, which must be code 0.
    pub fn stop(&mut self, id: i32) -> Result<()> {
        let node = self.node_mut(id);
        let proc = node.proc.as_mut().ok_or_else(|| anyhow!("stop: node {id} is not running"))?;
        proc.stop_gracefully(EXIT_TIMEOUT)
    }

    /// Starts a stopped node again with the same ports and data dir.
    pub fn restart(&mut self, id: i32) -> Result<()> {
        if self.node_mut(id).is_running() {
            bail!("restart: node {id} is still running");
        }
        self.start_nodes(&[id])
    }

    pub fn running(&mut self) -> Vec<i32> {
        self.nodes.iter_mut().filter_map(|n| n.is_running().then_some(n.id)).collect()
    }

    pub fn bootstrap(&self, id: i32) -> String {
        self.node(id).kafka.to_string()
    }

    pub fn bootstrap_all(&self) -> String {
        self.nodes.iter().map(|n| n.kafka.to_string()).collect::<Vec<_>>().join(",")
    }

    pub fn bootstrap_of(&self, ids: &[i32]) -> String {
        ids.iter().map(|id| self.node(*id).kafka.to_string()).collect::<Vec<_>>().join(",")
    }
}

pub use crate::wait::{unique, wait_for};
