//! What a lab is made of, where its files go, and each node's TOML config file.
//!
//! Nodes are started with `--config FILE` (not a long flag list) so that a user can rerun any
//! node by hand with exactly what the lab used.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
    /// Peers and clients reach each node at its own listeners, with no fabric proxy between
    /// (the lab: `false`, every link goes through the fabric so it can be faulted). The benches
    /// set it so that throughput and latency are the brokers' own, not measured through a proxy;
    /// such a lab's fabric has no proxies, and every link fault on it fails.
    pub direct_links: bool,
    /// Sample each node's CPU, memory and disk every second (`Resources` events) for the lab's
    /// views. The benches turn it off: they read `/proc` themselves, and a sampler's `/proc`
    /// reads, directory walks and `GET /memory` calls would run inside their measurements.
    pub sample_resources: bool,
    /// Also append each start's stderr to `node-<id>/broker-start-<n>.log`, a new file per
    /// start so a restart keeps the log of the killed run. The lab has every line as a `Log`
    /// event; the benches drop those events and keep these files for a post-mortem instead.
    pub log_files: bool,
    /// The brokers' `RUST_LOG` when the environment sets none (a user's `RUST_LOG` wins).
    pub broker_rust_log: String,
    /// The brokers create unknown topics on Metadata/Produce, as Kafka's default (the lab's
    /// workloads rely on it). The benches create every topic themselves with its replication
    /// factor and turn this off, so that no stray request (a fuzzed frame) adds Raft groups.
    pub auto_create_topics: bool,
    /// How long a node gets after SIGTERM (it drains clients and flushes) before SIGKILL. The
    /// benches allow longer than the lab: a node of a 10 000-partition cluster may need it, and
    /// their graceful-stop figure must be a time, not a kill.
    pub stop_timeout: Duration,
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
            direct_links: false,
            sample_resources: true,
            log_files: false,
            // During faults openraft logs every failed RPC (hundreds per second); the lab gets
            // the same facts as structured raft/election events.
            broker_rust_log: "info,openraft=off".into(),
            auto_create_topics: true,
            stop_timeout: Duration::from_secs(10),
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

/// One peer as this node must reach it: through the fabric, or directly with `direct_links`.
pub(crate) struct PeerAddrs {
    pub id: i32,
    pub raft: SocketAddr,
    pub kafka: SocketAddr,
}

/// The node's broker config: ports, data dir, this lab's settings, and its peers as given (the
/// fabric's proxies, or their own listeners with `direct_links`; written by
/// `launcher::write_broker_config`).
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
        // What clients are told: the fabric's client proxy, or the listener itself when direct.
        advertised_kafka: Some(advertised),
        http_listen: ports.http,
        fsync,
        auto_create_topics: cfg.auto_create_topics,
        default_partitions: cfg.default_partitions,
        cluster,
        ..Config::default()
    })
}
