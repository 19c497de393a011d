//! `clusterlab-broker`: one broker node.
//!
//! Prints one JSON line `{"event":"ready",...}` on stdout once it serves (supervisors and tests
//! wait for it instead of sleeping), drains and flushes on SIGTERM/SIGINT, and exits 0.
//! Start-up failures print one line naming what was wrong and exit 2; a failed fsync stops the
//! node at once with exit 74.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use broker::config::ClusterConfig;
use broker::telemetry::wire::{ReadyEvent, ReadyLine};
use broker::{Config, FsyncPolicy, Node};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};

/// jemalloc returns freed pages to the system about a second after the free, from a background
/// thread; glibc's malloc kept them, and a soak's RSS climbed to 5x the heap in use (decision 44).
/// `GET /memory` reads jemalloc's counters (`broker::telemetry::memory`).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this symbol (its prefixed `malloc_conf`) for its settings before `main`.
#[export_name = "_rjem_malloc_conf"]
static ALLOCATOR_CONF: Option<&'static std::ffi::c_char> =
    // SAFETY: a pointer to the first byte of a 'static, NUL-terminated string.
    Some(unsafe { &*broker::telemetry::memory::ALLOCATOR_CONF.as_ptr() });

#[derive(Parser, Debug)]
#[command(name = "clusterlab-broker", about = "A Kafka-compatible, durable broker node of Cluster Lab")]
struct Args {
    /// TOML config file; flags override its values.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    node_id: Option<i32>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Kafka listener, e.g. 127.0.0.1:9092 (port 0 picks a free one; see the ready line).
    #[arg(long)]
    kafka_listen: Option<SocketAddr>,
    /// Address advertised to clients in Metadata (defaults to the Kafka listener).
    #[arg(long)]
    advertised_kafka: Option<SocketAddr>,
    /// Telemetry/control HTTP listener, e.g. 127.0.0.1:9644.
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// always | interval:<ms> | never
    #[arg(long)]
    fsync: Option<FsyncPolicy>,
    /// Create unknown topics on Metadata requests (true/false).
    #[arg(long)]
    auto_create_topics: Option<bool>,
    #[arg(long)]
    default_partitions: Option<i32>,
    /// Client connections served at once (more are closed at accept).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Bytes of Kafka request frames in progress over all connections (more wait to be read).
    #[arg(long)]
    max_request_bytes_in_progress: Option<usize>,
    /// Most record bytes in one Fetch answer, whatever the client asks (Kafka's fetch.max.bytes).
    #[arg(long)]
    fetch_max_bytes: Option<usize>,
    /// Close a client connection that sends nothing for this long.
    #[arg(long)]
    connections_max_idle_ms: Option<u64>,
    /// Cluster mode: this node's Raft listener (all groups share one port).
    #[arg(long)]
    raft_listen: Option<SocketAddr>,
    /// Cluster mode: another node as ID=RAFT_ADDR,KAFKA_ADDR; repeat per peer.
    #[arg(long = "peer")]
    peers: Vec<broker::config::PeerConfig>,
    #[arg(long)]
    replication_factor: Option<i16>,
    #[arg(long)]
    election_timeout_min_ms: Option<u64>,
    #[arg(long)]
    election_timeout_max_ms: Option<u64>,
    #[arg(long)]
    heartbeat_interval_ms: Option<u64>,
}

impl Args {
    /// The config file's settings (or the defaults), with the flags given overriding them.
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        self.override_node(&mut c);
        let wants_cluster = self.raft_listen.is_some() || !self.peers.is_empty() || c.cluster.is_some();
        if wants_cluster {
            let mut cluster = c.cluster.take().unwrap_or_default();
            self.override_cluster(&mut cluster);
            // The default factor of 3 does not fit a smaller cluster: cap it to the nodes there are.
            cluster.replication_factor = cluster.replication_factor.min(cluster.peers.len() as i16 + 1);
            c.cluster = Some(cluster);
        }
        c.validate("flags")?;
        Ok(c)
    }

    fn override_node(&self, c: &mut Config) {
        if let Some(v) = self.node_id {
            c.node_id = v;
        }
        if let Some(v) = &self.data_dir {
            c.data_dir = v.clone();
        }
        if let Some(v) = self.kafka_listen {
            c.kafka_listen = v;
        }
        if let Some(v) = self.advertised_kafka {
            c.advertised_kafka = Some(v);
        }
        if let Some(v) = self.http_listen {
            c.http_listen = v;
        }
        if let Some(v) = self.fsync {
            c.fsync = v;
        }
        if let Some(v) = self.auto_create_topics {
            c.auto_create_topics = v;
        }
        if let Some(v) = self.default_partitions {
            c.default_partitions = v;
        }
        if let Some(v) = self.max_connections {
            c.max_connections = v;
        }
        if let Some(v) = self.max_request_bytes_in_progress {
            c.max_request_bytes_in_progress = v;
        }
        if let Some(v) = self.fetch_max_bytes {
            c.fetch_max_bytes = v;
        }
        if let Some(v) = self.connections_max_idle_ms {
            c.connections_max_idle_ms = v;
        }
    }

    fn override_cluster(self, cluster: &mut ClusterConfig) {
        if let Some(v) = self.raft_listen {
            cluster.raft_listen = v;
        }
        if !self.peers.is_empty() {
            cluster.peers = self.peers;
        }
        if let Some(v) = self.replication_factor {
            cluster.replication_factor = v;
        }
        if let Some(v) = self.election_timeout_min_ms {
            cluster.election_timeout_min_ms = v;
        }
        if let Some(v) = self.election_timeout_max_ms {
            cluster.election_timeout_max_ms = v;
        }
        if let Some(v) = self.heartbeat_interval_ms {
            cluster.heartbeat_interval_ms = v;
        }
    }
}

/// Exit status after a failed fsync (sysexits' EX_IOERR), told apart from start-up errors (2).
const EXIT_STORAGE_FAILED: i32 = 74;

fn main() {
    tracing_subscriber::fmt()
        // openraft narrates every vote at info level; its warnings and errors are what matter here.
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: the lab captures these lines onto its timeline.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    raise_open_files_limit();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(Args::parse())) {
        eprintln!("clusterlab-broker: {e:#}");
        std::process::exit(2);
    }
}

/// Every partition holds a descriptor per segment: a node with 10,000 partitions needs more than
/// the usual soft limit of 1,024. Raise the soft limit to the hard one, as Kafka's operators are
/// told to do by hand.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open files limit; many partitions may not open")
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let node = Node::start(config).await?;
    let ready = ReadyLine {
        event: ReadyEvent::Ready,
        http: node.http_addr(),
        kafka: node.kafka_addr(),
        node_id: node.state().config.node_id,
        pid: std::process::id(),
        raft: node.state().config.cluster.as_ref().map(|c| c.raft_listen),
    };
    println!("{ready}");
    tokio::select! {
        _ = sigterm.recv() => tracing::info!("SIGTERM: stopping gracefully"),
        _ = sigint.recv() => tracing::info!("SIGINT: stopping gracefully"),
        reason = node.state().store.failed() => {
            // No graceful stop: it would fsync again. Kafka also halts a broker whose only log
            // dir failed; the replicas on the other nodes take over (decision 32).
            tracing::error!(%reason, "fsync failed: stopping this broker without a graceful flush");
            eprintln!("clusterlab-broker: fsync failed ({reason}); stopped, exit {EXIT_STORAGE_FAILED}");
            std::process::exit(EXIT_STORAGE_FAILED);
        }
    }
    node.shutdown().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}
