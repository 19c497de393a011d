//! What a lab is made of, where its files go, and each node's TOML config file.
//!
//! Nodes are started with `--config FILE` (not a long flag list) so that a user can rerun any
//! node by hand with exactly what the lab used.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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

/// A TOML string literal, escaped by the toml crate (paths may hold quotes and backslashes).
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The node's config file text, keys as in `broker/src/config.rs`.
pub(crate) fn node_toml(
    cfg: &SupervisorConfig,
    id: i32,
    data_dir: &Path,
    ports: &NodePorts,
    advertised: SocketAddr,
    peers: &[PeerAddrs],
) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# Written by the Cluster Lab supervisor; rerun with: clusterlab-broker --config <this file>"
    );
    let _ = writeln!(t, "node_id = {id}");
    let _ = writeln!(t, "data_dir = {}", quote(&data_dir.to_string_lossy()));
    let _ = writeln!(t, "kafka_listen = \"{}\"", ports.kafka);
    let _ = writeln!(t, "# The lab's client proxy for this node: clients go through the link fabric.");
    let _ = writeln!(t, "advertised_kafka = \"{advertised}\"");
    let _ = writeln!(t, "http_listen = \"{}\"", ports.http);
    let _ = writeln!(t, "fsync = {}", quote(&cfg.fsync));
    let _ = writeln!(t, "default_partitions = {}", cfg.default_partitions);
    if cfg.nodes > 1 {
        // The broker refuses a factor above the node count; cap it like its flag parsing does.
        let rf = cfg.replication_factor.clamp(1, cfg.nodes as i16);
        let _ = writeln!(t, "\n[cluster]");
        let _ = writeln!(t, "raft_listen = \"{}\"", ports.raft);
        let _ = writeln!(t, "replication_factor = {rf}");
        let _ = writeln!(t, "election_timeout_min_ms = {}", cfg.election_timeout_ms.0);
        let _ = writeln!(t, "election_timeout_max_ms = {}", cfg.election_timeout_ms.1);
        let _ = writeln!(t, "heartbeat_interval_ms = {}", cfg.heartbeat_ms);
        for p in peers {
            let _ = writeln!(
                t,
                "\n[[cluster.peers]]\nid = {}\nraft = \"{}\"\nkafka = \"{}\"",
                p.id, p.raft, p.kafka
            );
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_with_quotes_and_backslashes_read_back_as_written() {
        for path in
            [r#"a\b"c"#, "with 'single' quotes", "tab\there", "new\nline", r"back\slash", "ünïcode/dir"]
        {
            let parsed: toml::Table = toml::from_str(&format!("data_dir = {}", quote(path))).unwrap();
            assert_eq!(parsed["data_dir"].as_str(), Some(path), "{path}");
        }
    }
}
