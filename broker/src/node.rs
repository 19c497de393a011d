//! A running node: binds its listeners, opens storage, serves, and stops gracefully.
//!
//! Graceful stop (SIGTERM): stop accepting; let every connection drain (finish in-flight requests
//! and read what clients already sent, so `acks=0` data on the wire is not dropped); fsync every
//! partition; release the data-dir lock. This is the fix for the seed report's lost messages.
//! A cluster node first hands its leaderships off, and closes its Raft transport only after its
//! groups have stopped: they still replicate (and commit what the draining connections wait on)
//! until then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::acls::Acls;
use crate::api::{Registry, REGISTERED};
use crate::broker_configs::DynamicConfigs;
use crate::budget::ByteBudget;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::error::{BrokerError, Result};
use crate::groups::{CoordinatorConfig, GroupCoordinator};
use crate::log::{LogStore, RecoveryReport};
use crate::producers::Producers;
use crate::state::{NodeState, Replicated, SingleNode, Topology};
use crate::telemetry::wire::LifecyclePhase;
use crate::telemetry::{EventKind, Telemetry};
use crate::topics::Topics;

const OFFSETS_FILE: &str = "offsets.json";
/// Upper bound on the drain. Consumers long-polling a stopping node never go idle (each fetch
/// is answered at once during the drain and the next one follows), so the drain is a short
/// grace period for bytes already on the wire, not a wait for silence.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// After everything is flushed, how long open telemetry connections may delay the exit.
const SERVERS_LIMIT: Duration = Duration::from_secs(1);
/// Accept errors (out of file descriptors) back off instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A started node.
pub struct Node {
    state: Arc<NodeState>,
    connections: TaskTracker,
    /// Cancelled when the drain limit has passed: the connections still open are dropped then,
    /// before the cluster stops and the store closes under them.
    close_connections: CancellationToken,
    servers: TaskTracker,
}

impl Node {
    /// Binds, recovers storage and starts serving. Fails with a message naming the port, the data
    /// dir or the corrupt file when it cannot.
    pub async fn start(config: Config) -> Result<Node> {
        config.validate("configuration")?;
        let listeners = Listeners::bind(&config).await?;
        let (store, recovery) = open_store(&config)?;
        let topics = Topics::load(Arc::clone(&store))?;
        let acls = Acls::load(Arc::clone(&store))?;
        let dynamic_configs = DynamicConfigs::load(Arc::clone(&store))?;
        let producers = Producers::load(Arc::clone(&store))?;
        let groups = local_coordinator(&config, &store)?;
        let telemetry = Telemetry::new(config.node_id);
        let shutdown = CancellationToken::new();
        let cluster = start_cluster(&config, listeners.kafka_addr, &store, &telemetry, &shutdown).await?;
        // The one place that decides how this node runs; everything else asks `topology`.
        let topology: Box<dyn Topology> = match &cluster {
            Some(c) => Box::new(Replicated(Arc::clone(c))),
            None => Box::new(SingleNode),
        };
        let state = Arc::new(NodeState {
            registry: Registry::new(REGISTERED)?,
            topology,
            kafka_addr: listeners.kafka_addr,
            http_addr: listeners.http_addr,
            store,
            topics,
            acls,
            dynamic_configs,
            producers,
            groups: std::sync::RwLock::new((Arc::clone(&groups), None)),
            cluster,
            telemetry,
            recovery,
            started_at_ns: crate::telemetry::now_ns(),
            shutdown,
            stopped: CancellationToken::new(),
            tasks: TaskTracker::new(),
            kafka_requests_in_progress: Default::default(),
            kafka_request_bytes_in_progress: Default::default(),
            kafka_answer_bytes_in_progress: Default::default(),
            kafka_requests_total: Default::default(),
            kafka_request_bytes: Arc::new(ByteBudget::new(config.max_request_bytes_in_progress)),
            config,
        });
        start_background(&state, groups);
        Ok(serve(state, listeners.kafka, listeners.http))
    }

    pub fn state(&self) -> &Arc<NodeState> {
        &self.state
    }

    pub fn kafka_addr(&self) -> SocketAddr {
        self.state.kafka_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.state.http_addr
    }

    /// Graceful stop; see the module doc.
    pub async fn shutdown(self) -> Result<()> {
        let state = &self.state;
        let node_id = state.config.node_id;
        tracing::info!(node_id, "draining connections");
        if let Some(cluster) = &state.cluster {
            // Rolling restarts must not surface errors: followers take over before we go.
            state.telemetry.emit(EventKind::Lifecycle { phase: LifecyclePhase::HandingOff });
            cluster.hand_off_leadership().await;
        }
        state.telemetry.emit(EventKind::Lifecycle { phase: LifecyclePhase::Draining });
        state.shutdown.cancel();
        self.connections.close();
        if tokio::time::timeout(DRAIN_LIMIT, self.connections.wait()).await.is_err() {
            tracing::warn!(
                node_id,
                limit_s = DRAIN_LIMIT.as_secs(),
                "connections still open after the drain limit; closing them"
            );
            self.close_connections.cancel();
            // Each task returns at its next poll once cancelled: this wait is short.
            self.connections.wait().await;
        }
        if let Some(cluster) = &state.cluster {
            cluster.stop().await;
        }
        // fsync blocks: keep it off the async workers.
        let store = Arc::clone(&state.store);
        tokio::task::spawn_blocking(move || store.flush_all().and_then(|()| store.close())).await.map_err(
            |e| BrokerError::io("join flush task", state.config.data_dir.clone(), std::io::Error::other(e)),
        )??;
        let partitions = state.store.partitions();
        tracing::info!(node_id, partitions = partitions.len(), "every partition flushed; data dir released");
        state.telemetry.emit(EventKind::Lifecycle { phase: LifecyclePhase::Flushed });
        state.telemetry.emit(EventKind::Lifecycle { phase: LifecyclePhase::Stopped });
        state.tasks.close();
        state.tasks.wait().await;
        state.stopped.cancel();
        self.servers.close();
        // Viewers still connected to the HTTP endpoint must not hold the exit up.
        if tokio::time::timeout(SERVERS_LIMIT, self.servers.wait()).await.is_err() {
            tracing::warn!(node_id, "telemetry endpoint still had open connections; exiting anyway");
        }
        Ok(())
    }
}

async fn bind(listener: &'static str, addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            BrokerError::PortInUse { listener, addr, port: addr.port() }
        } else {
            BrokerError::io(format!("bind {listener} listener"), addr.to_string(), e)
        }
    })
}

/// The node's two client-facing listeners, bound, with the addresses they got (port 0 picks one).
struct Listeners {
    kafka: TcpListener,
    http: TcpListener,
    kafka_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl Listeners {
    async fn bind(config: &Config) -> Result<Listeners> {
        let kafka = bind("kafka", config.kafka_listen).await?;
        let http = bind("http", config.http_listen).await?;
        let kafka_addr =
            kafka.local_addr().map_err(|e| BrokerError::io("local_addr", "kafka listener", e))?;
        let http_addr = http.local_addr().map_err(|e| BrokerError::io("local_addr", "http listener", e))?;
        Ok(Listeners { kafka, http, kafka_addr, http_addr })
    }
}

/// Joins the cluster when the config names one (its transport and controller group; peers may
/// still be down); `None` for a single node.
async fn start_cluster(
    config: &Config,
    kafka_addr: SocketAddr,
    store: &Arc<LogStore>,
    telemetry: &Arc<Telemetry>,
    shutdown: &CancellationToken,
) -> Result<Option<Arc<Cluster>>> {
    let Some(c) = &config.cluster else { return Ok(None) };
    let advertised = config.advertised_kafka.unwrap_or(kafka_addr);
    let cluster =
        Cluster::start(config, c, advertised, Arc::clone(store), Arc::clone(telemetry), shutdown.clone());
    Ok(Some(cluster.await?))
}

/// What runs beside serving from the start: recovery findings reported, every partition watched
/// for telemetry, and the group coordinator installed (or, in a cluster, following the
/// controller).
fn start_background(state: &Arc<NodeState>, groups: Arc<GroupCoordinator>) {
    report_recovery(state);
    for log in state.store.partitions() {
        state.telemetry.watch_partition(&log, state.shutdown.clone(), &state.tasks);
    }
    match &state.cluster {
        // The coordinator runs where the controller leader is, from the replicated offsets.
        Some(_) => crate::coordination::follow_controller(state),
        None => {
            crate::coordination::install(state, groups, None);
        }
    }
}

/// Opens the data dir, recovering every partition (corruption is logged here and reported to
/// telemetry by `report_recovery`).
fn open_store(config: &Config) -> Result<(Arc<LogStore>, RecoveryReport)> {
    let (store, recovery) = LogStore::open(&config.data_dir, config.fsync, config.segment_bytes)?;
    for p in &recovery.partitions {
        if let Some(c) = &p.corruption {
            tracing::error!(
                topic = %p.topic,
                partition = p.partition,
                file = %c.file.display(),
                position = c.position,
                reason = %c.reason,
                "corrupt segment found at start-up"
            );
        }
    }
    if config.cluster.is_some() {
        // Replicated: what is committed is known only once the groups apply entries (every
        // group's start says so again for partitions created later).
        for log in store.partitions() {
            if log.raft_entries_take_offsets()? {
                return Err(BrokerError::IncompatibleDataDir {
                    dir: config.data_dir.clone(),
                    reason: format!(
                        "the log of {}-{} was written by an older broker, whose Raft entries took Kafka \
                         offsets; this one numbers records without them, so a replica catching up \
                         would disagree with its peers. Start the cluster on a fresh data dir \
                         (`clusterlab up` makes one per run) or keep the older broker for this one",
                        log.topic(),
                        log.partition()
                    ),
                });
            }
            log.start_replicated();
        }
    }
    Ok((store, recovery))
}

/// The group coordinator over this node's offsets file: the single node's for its lifetime; in a
/// cluster, the initial one until `coordination::follow_controller` installs one per term.
fn local_coordinator(config: &Config, store: &Arc<LogStore>) -> Result<Arc<GroupCoordinator>> {
    let persist_store = Arc::clone(store);
    GroupCoordinator::new(
        CoordinatorConfig::from_config(config),
        store.read_meta(OFFSETS_FILE)?,
        Arc::new(move |bytes: &[u8]| persist_store.write_meta(OFFSETS_FILE, bytes)),
    )
}

/// Starts accepting Kafka connections and serving HTTP: the node is up.
fn serve(state: Arc<NodeState>, kafka_listener: TcpListener, http_listener: TcpListener) -> Node {
    let connections = TaskTracker::new();
    let close_connections = CancellationToken::new();
    let servers = TaskTracker::new();
    let owner = Connections { tracker: connections.clone(), close: close_connections.clone() };
    servers.spawn(accept_loop(kafka_listener, Arc::clone(&state), owner));
    // The HTTP endpoint outlives the drain so the lab can watch the node flush; it stops
    // when the tracker's tasks are cancelled at the very end.
    servers.spawn(crate::endpoint::serve(http_listener, Arc::clone(&state), state.stopped.clone()));
    state.telemetry.emit(EventKind::Lifecycle { phase: LifecyclePhase::Started });
    let (kafka_addr, http_addr) = (state.kafka_addr, state.http_addr);
    tracing::info!(
        node_id = state.config.node_id,
        %kafka_addr,
        %http_addr,
        fsync = %state.config.fsync,
        "node serving"
    );
    Node { state, connections, close_connections, servers }
}

/// Who owns the client connections: the node, which waits for them on shutdown and closes those
/// still open at the drain limit.
struct Connections {
    tracker: TaskTracker,
    close: CancellationToken,
}

async fn accept_loop(listener: TcpListener, state: Arc<NodeState>, connections: Connections) {
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return, // dropping the listener stops accepting
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if connections.tracker.len() >= state.config.max_connections => {
                    // Each connection may hold a frame of up to max_frame_bytes: the count bounds memory.
                    tracing::warn!(
                        %peer,
                        limit = state.config.max_connections,
                        "refusing a connection: max_connections reached"
                    );
                    state.telemetry.warn(format!(
                        "refused a connection from {peer}: max_connections ({}) reached",
                        state.config.max_connections
                    ));
                    drop(stream);
                }
                Ok((stream, peer)) => {
                    let served = crate::protocol::connection::serve(
                        stream,
                        peer,
                        Arc::clone(&state),
                        state.shutdown.clone(),
                    );
                    let close = connections.close.clone();
                    connections.tracker.spawn(async move {
                        tokio::select! {
                            _ = served => {}
                            _ = close.cancelled() => tracing::debug!(%peer, "connection closed at the drain limit"),
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(node_id = state.config.node_id, error = %e, "accept failed; backing off");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

fn report_recovery(state: &NodeState) {
    for p in &state.recovery.partitions {
        if p.torn_tail_bytes > 0 {
            state.telemetry.warn(format!(
                "{}-{}: truncated a torn tail of {} bytes at start-up",
                p.topic, p.partition, p.torn_tail_bytes
            ));
        }
        if let Some(c) = &p.corruption {
            state.telemetry.warn(format!(
                "{}-{}: corrupt entry in {} at byte {}: {} (copy kept at {})",
                p.topic,
                p.partition,
                c.file.display(),
                c.position,
                c.reason,
                c.quarantined_to.display()
            ));
        }
    }
    if let Some(cut) = &state.recovery.last_power_cut {
        let lost: i64 = cut.partitions.iter().map(|p| p.lost_records).sum();
        tracing::warn!(node_id = state.config.node_id, lost_records = lost, "recovered from a power cut");
        state.telemetry.warn(format!("recovered from a power cut that lost {lost} unflushed records"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClusterConfig, FsyncPolicy};
    use crate::log::batch_builder::control_batch;

    /// A data dir from before decision 46 (a Raft group's first membership entry took offset 0)
    /// is refused by a cluster node with the partition named, not continued with other offsets.
    #[tokio::test]
    async fn a_cluster_node_refuses_a_data_dir_whose_raft_entries_took_offsets() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Always, 1 << 20).unwrap();
            let p = s.create_partition("old", 0).unwrap();
            p.append(&[control_batch(0x7e01, b"{}", -1), control_batch(0x7e00, b"", -1)], 1).unwrap();
            s.close().unwrap();
        }
        let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            kafka_listen: any_port,
            http_listen: any_port,
            cluster: Some(ClusterConfig {
                raft_listen: any_port,
                replication_factor: 1,
                ..Default::default()
            }),
            ..Default::default()
        };
        let err = Node::start(config).await.err().expect("the old data dir must be refused");
        assert!(matches!(err, BrokerError::IncompatibleDataDir { .. }), "{err}");
        assert!(err.to_string().contains("old-0") && err.to_string().contains("fresh data dir"), "{err}");
    }
}
