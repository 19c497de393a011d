//! Node configuration: one TOML file per node, every field overridable by a flag.
//!
//! Every port is explicit. The seed report's cluster failed because node ports were derived from
//! each other and collided; here nothing is derived, and a taken port fails start-up by name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};

/// When appended data is forced to disk with fsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// fsync before a write is acknowledged (concurrent writers share one fsync: group commit).
    Always,
    /// fsync dirty partitions every interval; acknowledged writes inside the window may be lost.
    Interval(Duration),
    /// Never fsync while running (only on graceful stop); the page cache decides.
    Never,
}

impl FromStr for FsyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            _ => {
                let ms = s.strip_prefix("interval:").ok_or_else(|| {
                    format!("fsync policy '{s}' is not one of: always, interval:<ms>, never")
                })?;
                let ms: u64 = ms.parse().map_err(|_| {
                    format!("fsync policy '{s}': '{ms}' is not a whole number of milliseconds")
                })?;
                if ms == 0 {
                    return Err(format!("fsync policy '{s}': the interval must be at least 1 ms"));
                }
                Ok(FsyncPolicy::Interval(Duration::from_millis(ms)))
            }
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => write!(f, "always"),
            FsyncPolicy::Interval(d) => write!(f, "interval:{}", d.as_millis()),
            FsyncPolicy::Never => write!(f, "never"),
        }
    }
}

impl Serialize for FsyncPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FsyncPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Kafka's default for `socket.request.max.bytes`: frames above this close the connection.
const DEFAULT_MAX_FRAME_BYTES: u32 = 100 * 1024 * 1024;
/// Segments roll at 64 MiB: small enough that recovery scans stay quick in a lab.
const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Four connections' worth of the per-connection 64 MiB and above two frames of the largest size
/// (100 MiB): one busy client is not slowed by the node's bound, while a thousand connections
/// hold 256 MiB of frames, not 64 GiB.
const DEFAULT_MAX_REQUEST_BYTES_IN_PROGRESS: usize = 256 * 1024 * 1024;
/// Kafka's default for the broker's `fetch.max.bytes` (55 MiB).
const DEFAULT_FETCH_MAX_BYTES: usize = 57_671_680;
/// Kafka's lower bound for `fetch.max.bytes`.
const MIN_FETCH_MAX_BYTES: usize = 1024;

/// The whole configuration of one node. Unknown keys are rejected so a typo never goes unnoticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Kafka broker id of this node.
    pub node_id: i32,
    /// Where segments, topic metadata and committed offsets live. Locked while the node runs.
    pub data_dir: PathBuf,
    /// Kafka listener (loopback by default).
    pub kafka_listen: SocketAddr,
    /// Address given to clients in Metadata; defaults to `kafka_listen`. The lab sets its proxy here.
    pub advertised_kafka: Option<SocketAddr>,
    /// Telemetry and fault-control HTTP listener.
    pub http_listen: SocketAddr,
    /// fsync policy: `always`, `interval:<ms>` or `never`.
    pub fsync: FsyncPolicy,
    /// Create unknown topics on Metadata/Produce, as Kafka's `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// Partition count for auto-created topics.
    pub default_partitions: i32,
    /// Segment size at which a partition log rolls to a new file.
    pub segment_bytes: u64,
    /// Largest request frame accepted; larger frames close the connection (Kafka's
    /// `socket.request.max.bytes`).
    pub max_frame_bytes: u32,
    /// Client connections served at once; one more is closed at accept with a warning.
    pub max_connections: usize,
    /// Bytes of Kafka request frames read and not yet answered, over all client connections
    /// (as Kafka's `queued.max.request.bytes`); past it connections wait before reading more. A
    /// larger frame is admitted alone.
    pub max_request_bytes_in_progress: usize,
    /// Most record bytes one Fetch answer carries, whatever the request asks (Kafka's broker
    /// `fetch.max.bytes`); the first partition with data still gets one whole batch.
    pub fetch_max_bytes: usize,
    /// A client connection that sends nothing for this long is closed (Kafka's
    /// `connections.max.idle.ms`).
    pub connections_max_idle_ms: u64,
    /// How long a new group waits for more members before its first rebalance completes
    /// (Kafka's `group.initial.rebalance.delay.ms`).
    pub group_initial_rebalance_delay_ms: u64,
    /// On SIGTERM, how long each connection goes on reading what its client sends (what was sent
    /// before the signal); everything read is then answered before the connection closes.
    pub drain_idle_ms: u64,
    /// Replication with the other nodes; absent = a single node without Raft.
    pub cluster: Option<ClusterConfig>,
}

/// One other node of the cluster. Addresses are explicit so the lab can put proxies in between.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub id: i32,
    /// Where this node reaches the peer's Raft listener.
    pub raft: SocketAddr,
    /// The peer's Kafka address as clients should use it (listed in Metadata).
    pub kafka: SocketAddr,
}

impl FromStr for PeerConfig {
    type Err = String;

    /// `ID=RAFT_ADDR,KAFKA_ADDR`, e.g. `2=127.0.0.1:19093,127.0.0.1:19092`.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let usage =
            || format!("peer '{s}' is not ID=RAFT_ADDR,KAFKA_ADDR (e.g. 2=127.0.0.1:19093,127.0.0.1:19092)");
        let (id, addrs) = s.split_once('=').ok_or_else(usage)?;
        let (raft, kafka) = addrs.split_once(',').ok_or_else(usage)?;
        Ok(PeerConfig {
            id: id.trim().parse().map_err(|_| usage())?,
            raft: raft.trim().parse().map_err(|_| usage())?,
            kafka: kafka.trim().parse().map_err(|_| usage())?,
        })
    }
}

/// Raft knobs a teacher wants to turn, and who the peers are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's Raft listener (all groups share it).
    pub raft_listen: SocketAddr,
    /// The other nodes.
    pub peers: Vec<PeerConfig>,
    /// Replicas per partition (at most the number of nodes).
    pub replication_factor: i16,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    pub heartbeat_interval_ms: u64,
    /// Pre-vote is not implemented by openraft 0.9; `true` is refused with that reason.
    pub pre_vote: bool,
}

impl ClusterConfig {
    /// The cluster settings of node `node_id`; `Err` says what cannot work.
    fn check(&self, node_id: i32) -> std::result::Result<(), String> {
        if self.pre_vote {
            return Err("cluster.pre_vote = true: openraft 0.9 has no pre-vote; set it to false".into());
        }
        if self.election_timeout_min_ms == 0 || self.election_timeout_min_ms >= self.election_timeout_max_ms {
            return Err(format!(
                "cluster election timeout range {}..{} ms must be non-empty and start above 0",
                self.election_timeout_min_ms, self.election_timeout_max_ms
            ));
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms >= self.election_timeout_min_ms {
            return Err(format!(
                "cluster.heartbeat_interval_ms = {} must be above 0 and below election_timeout_min_ms = {}",
                self.heartbeat_interval_ms, self.election_timeout_min_ms
            ));
        }
        let mut ids: Vec<i32> = self.peers.iter().map(|p| p.id).collect();
        ids.push(node_id);
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(format!("node ids must be unique across node_id and cluster.peers, got {ids:?}"));
        }
        if ids.iter().any(|&id| id < 0) {
            return Err(format!("node ids must be >= 0, got {ids:?}"));
        }
        if self.replication_factor < 1 || self.replication_factor as usize > ids.len() {
            return Err(format!(
                "cluster.replication_factor = {} must be 1..={} (the number of nodes)",
                self.replication_factor,
                ids.len()
            ));
        }
        Ok(())
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            raft_listen: "127.0.0.1:9093".parse().expect("valid literal"),
            peers: Vec::new(),
            replication_factor: 3,
            // Fast failover on loopback. openraft 0.9 adds its leader lease (= the max timeout)
            // before a follower campaigns, so 150-300 ms means a new election 0.45-0.6 s after
            // the leader's last heartbeat; heartbeats every 50 ms leave room for two misses.
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            heartbeat_interval_ms: 50,
            pre_vote: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            kafka_listen: "127.0.0.1:9092".parse().expect("valid literal"),
            advertised_kafka: None,
            http_listen: "127.0.0.1:9644".parse().expect("valid literal"),
            fsync: FsyncPolicy::Always,
            auto_create_topics: true,
            default_partitions: 3,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_connections: 1000,
            max_request_bytes_in_progress: DEFAULT_MAX_REQUEST_BYTES_IN_PROGRESS,
            fetch_max_bytes: DEFAULT_FETCH_MAX_BYTES,
            connections_max_idle_ms: 600_000,
            group_initial_rebalance_delay_ms: 300,
            drain_idle_ms: 300,
            cluster: None,
        }
    }
}

impl Config {
    /// Reads a TOML file; errors name the file, line and the key that was wrong.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| BrokerError::io("read config", path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses TOML text; `source_name` names it in error messages.
    pub fn from_toml(text: &str, source_name: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| BrokerError::Config {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        config.validate(source_name)?;
        Ok(config)
    }

    /// The TOML text `from_toml` reads back as this config: how launchers hand a node its
    /// settings (one file, every key named as here, instead of flags spelled in each launcher).
    pub fn to_toml(&self) -> String {
        // Serializing plain data (numbers, strings, addresses, nested tables) cannot fail.
        toml::to_string(self).expect("a Config serializes to TOML")
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self, source_name: &str) -> Result<()> {
        let checked = match (self.check_node(), &self.cluster) {
            (Err(problem), _) => Err(problem),
            (Ok(()), Some(c)) => c.check(self.node_id),
            (Ok(()), None) => Ok(()),
        };
        checked.map_err(|message| BrokerError::Config { source_name: source_name.to_string(), message })
    }

    /// The node's own settings; `Err` says what cannot work.
    fn check_node(&self) -> std::result::Result<(), String> {
        if self.default_partitions < 1 {
            return Err(format!("default_partitions = {} must be at least 1", self.default_partitions));
        }
        if self.segment_bytes < 4096 {
            return Err(format!("segment_bytes = {} must be at least 4096", self.segment_bytes));
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".to_string());
        }
        if self.max_request_bytes_in_progress == 0 {
            // Zero would admit no request at all: the node would read nothing.
            return Err("max_request_bytes_in_progress must be at least 1".to_string());
        }
        if self.fetch_max_bytes < MIN_FETCH_MAX_BYTES {
            return Err(format!(
                "fetch_max_bytes = {} must be at least {MIN_FETCH_MAX_BYTES}",
                self.fetch_max_bytes
            ));
        }
        if self.connections_max_idle_ms < 100 {
            return Err(format!(
                "connections_max_idle_ms = {} must be at least 100",
                self.connections_max_idle_ms
            ));
        }
        if self.max_frame_bytes < 1024 {
            return Err(format!("max_frame_bytes = {} must be at least 1024", self.max_frame_bytes));
        }
        if self.kafka_listen.port() != 0 && self.kafka_listen == self.http_listen {
            return Err(format!("kafka_listen and http_listen are both {}", self.kafka_listen));
        }
        Ok(())
    }

    /// The address clients are told to connect to.
    pub fn advertised(&self) -> SocketAddr {
        self.advertised_kafka.unwrap_or(self.kafka_listen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_written_as_toml_reads_back_the_same() {
        let peer = |id: i32, port: u16| PeerConfig {
            id,
            raft: format!("127.0.0.1:{port}").parse().unwrap(),
            kafka: format!("127.0.0.1:{}", port + 1).parse().unwrap(),
        };
        let config = Config {
            node_id: 2,
            data_dir: PathBuf::from("/tmp/a \"quoted\" dir/ünï"),
            advertised_kafka: Some("127.0.0.1:4000".parse().unwrap()),
            fsync: FsyncPolicy::Interval(std::time::Duration::from_millis(25)),
            cluster: Some(ClusterConfig {
                peers: vec![peer(1, 5000), peer(3, 5002)],
                replication_factor: 3,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = config.to_toml();
        let back = Config::from_toml(&text, "test").unwrap();
        assert_eq!(format!("{back:?}"), format!("{config:?}"), "{text}");
    }

    #[test]
    fn fsync_policies_parse_and_print_back() {
        for s in ["always", "never", "interval:25"] {
            let p: FsyncPolicy = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert!("interval:0".parse::<FsyncPolicy>().is_err());
        assert!("sometimes".parse::<FsyncPolicy>().unwrap_err().contains("always, interval:<ms>, never"));
    }

    #[test]
    fn a_typo_in_a_key_is_reported_with_its_line() {
        let err = Config::from_toml("node_id = 2\nfsynk = \"always\"\n", "node2.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("node2.toml") && msg.contains("fsynk") && msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn a_node_byte_budget_of_zero_is_refused_by_name() {
        let err = Config::from_toml("max_request_bytes_in_progress = 0\n", "n.toml").unwrap_err();
        assert!(err.to_string().contains("max_request_bytes_in_progress must be at least 1"), "{err}");
    }

    #[test]
    fn a_fetch_answer_cap_below_kafkas_minimum_is_refused_by_name() {
        let err = Config::from_toml("fetch_max_bytes = 1023\n", "n.toml").unwrap_err();
        assert!(err.to_string().contains("fetch_max_bytes = 1023 must be at least 1024"), "{err}");
        assert!(Config::from_toml("fetch_max_bytes = 1024\n", "n.toml").is_ok());
    }

    #[test]
    fn a_bad_fsync_value_names_the_choices() {
        let err = Config::from_toml("fsync = \"sometimes\"\n", "n.toml").unwrap_err();
        assert!(err.to_string().contains("always, interval:<ms>, never"), "{err}");
    }
}
