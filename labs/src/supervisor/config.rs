//! What a lab is made of, where its files go, and each node's TOML config file.
//!
//! Nodes are started with `--config FILE` (not a long flag list) so that a user can rerun any
//! node by hand with exactly what the lab used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use broker::config::{ClusterConfig, Config, PeerConfig};

use crate::error::{LabError, Result};

/// How to build the lab's cluster.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub nodes: usize,
    /// Where node dirs go; `None` = `<user data dir>/clusterlab/runs/<run-id>`.
    pub data_root: Option<PathBuf>,
    pub broker_bin: PathBuf,
    /// `always` | `interval:<ms>` | `never`.
    pub fsync: String,
    /// Raft election timeout range (min, max) in ms.
    pub election_timeout_ms: (u64, u64),
    pub heartbeat_ms: u64,
    pub replication_factor: i16,
    pub default_partitions: i32,
    /// Appended after `--config FILE`; flags override the file.
    pub extra_args: Vec<String>,
}

impl SupervisorConfig {
    /// A three-node cluster with the broker's own defaults.
    pub fn new(broker_bin: PathBuf) -> SupervisorConfig {
        let d = crate::settings::ClusterSettings::default();
        SupervisorConfig {
            nodes: d.nodes,
            data_root: None,
            broker_bin,
            fsync: d.fsync,
            election_timeout_ms: (d.election_timeout_min_ms, d.election_timeout_max_ms),
            heartbeat_ms: d.heartbeat_ms,
            replication_factor: d.replication_factor,
            default_partitions: d.partitions,
            extra_args: Vec::new(),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |detail: String| Err(LabError::InvalidArgument { what: "lab configuration", detail });
        if self.nodes == 0 || self.nodes > 9 {
            return bad(format!("nodes = {} must be 1..=9", self.nodes));
        }
        if !self.broker_bin.is_file() {
            return Err(LabError::BinaryNotFound {
                what: "clusterlab-broker",
                path: self.broker_bin.clone(),
                hint: "build it with cargo build -p broker".into(),
            });
        }
        let (lo, hi) = self.election_timeout_ms;
        if lo == 0 || lo >= hi || self.heartbeat_ms == 0 || self.heartbeat_ms >= lo {
            return bad(format!(
                "need 0 < heartbeat ({}) < election timeout min ({lo}) < max ({hi})",
                self.heartbeat_ms
            ));
        }
        Ok(())
    }
}

/// A fresh run directory under the user's data dir. The id is time-ordered so `ls` sorts runs.
pub(crate) fn default_run_dir() -> PathBuf {
    let base = crate::paths::data_dir();
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    base.join("runs").join(format!("run-{secs}-{}", std::process::id()))
}

/// The listeners of one node (all direct, not the proxies).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodePorts {
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
}

/// One peer as this node must reach it: through the fabric.
pub(crate) struct PeerAddrs {
    pub id: i32,
    pub raft: SocketAddr,
    pub kafka: SocketAddr,
}

/// The node's broker config: ports, data dir, this lab's settings, and its peers as the fabric's
/// proxies (written by `launcher::write_broker_config`).
pub(crate) fn node_config(
    cfg: &SupervisorConfig,
    id: i32,
    data_dir: &Path,
    ports: &NodePorts,
    advertised: SocketAddr,
    peers: &[PeerAddrs],
) -> Result<Config> {
    let fsync = cfg.fsync.parse().map_err(|detail| LabError::InvalidArgument { what: "fsync", detail })?;
    let cluster = (cfg.nodes > 1).then(|| ClusterConfig {
        raft_listen: ports.raft,
        peers: peers.iter().map(|p| PeerConfig { id: p.id, raft: p.raft, kafka: p.kafka }).collect(),
        // The broker refuses a factor above the node count; cap it like its flag parsing does.
        replication_factor: cfg.replication_factor.clamp(1, cfg.nodes as i16),
        election_timeout_min_ms: cfg.election_timeout_ms.0,
        election_timeout_max_ms: cfg.election_timeout_ms.1,
        heartbeat_interval_ms: cfg.heartbeat_ms,
        ..ClusterConfig::default()
    });
    Ok(Config {
        node_id: id,
        data_dir: data_dir.to_path_buf(),
        kafka_listen: ports.kafka,
        // The lab's client proxy for this node: clients go through the link fabric.
        advertised_kafka: Some(advertised),
        http_listen: ports.http,
        fsync,
        default_partitions: cfg.default_partitions,
        cluster,
        ..Config::default()
    })
}
