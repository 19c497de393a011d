//! Raft transport: one multiplexed TCP connection per peer (per direction) carrying the RPCs of
//! every Raft group, each message tagged with its group.
//!
//! - `wire`    — frame format and the request/reply enums.
//! - `client`  — per-peer lazily dialed connection, pending map, reconnect backoff.
//! - `server`  — accept loop, per-connection request dispatch through a [`GroupRouter`].
//! - `network` — openraft's `RaftNetworkFactory`/`RaftNetwork` on top of [`Transport::request`].
//!
//! Start-up never waits for a peer: nothing is dialed until the first request to it.

mod client;
mod network;
mod server;
pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use network::{GroupNetwork, GroupNetworkFactory};
pub use server::{GroupRouter, MAX_IN_FLIGHT_PER_CONNECTION};
pub use wire::{
    encode_frame, Body, Envelope, LeadEntry, LeaderAnswer, LeadsVersion, RaftReply, RaftRequest,
    MAX_FRAME_LEN,
};

use crate::error::BrokerError;
use crate::raft::trace::RaftTrace;
use crate::raft::typ::{GroupId, NodeId};
use client::PeerLink;

/// Called with a peer's node id whenever a frame from it arrives.
pub type HeardFn = Arc<dyn Fn(NodeId) + Send + Sync>;

/// This node's end of every peer connection, both dialing and accepting.
pub struct Transport {
    node_id: NodeId,
    links: BTreeMap<NodeId, Arc<PeerLink>>,
    /// Told about every frame received from a peer (set once by the cluster's liveness).
    heard: Arc<OnceLock<HeardFn>>,
    /// RPC-level telemetry of every group's messages (`raft/trace.rs`).
    trace: Arc<RaftTrace>,
    /// Cancelled by [`Transport::close`] only, not by the node's shutdown: while a stopping node
    /// drains its Kafka connections and stops its groups, those groups still replicate, and
    /// openraft retries a failed append at once, so a transport closed under them spun every
    /// replication stream (at 10,000 partitions, millions of errors and a 13 s stop).
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Telemetry snapshot of one peer link (the dialing direction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PeerStatus {
    pub id: NodeId,
    pub addr: SocketAddr,
    pub connected: bool,
    pub requests_sent: u64,
    pub replies_received: u64,
    /// Successful dials after the first one.
    pub reconnects: u64,
    pub last_error: Option<String>,
    /// Wall-clock time of the latest successful dial, nanoseconds since the Unix epoch.
    pub last_connected_ns: Option<u64>,
}

impl Transport {
    /// Creates the transport; does no I/O, so absent peers cannot delay start-up.
    /// `peers` may include `node_id` itself; it is never dialed by openraft.
    pub fn new(node_id: NodeId, peers: BTreeMap<NodeId, SocketAddr>) -> Arc<Transport> {
        let heard: Arc<OnceLock<HeardFn>> = Arc::default();
        let links = peers
            .into_iter()
            .map(|(peer, addr)| (peer, Arc::new(PeerLink::new(node_id, peer, addr, Arc::clone(&heard)))))
            .collect();
        Arc::new(Transport {
            node_id,
            links,
            heard,
            trace: Arc::new(RaftTrace::new(node_id)),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// The node's RPC-level Raft telemetry: the transport records what it sends, others what
    /// they decide.
    pub fn trace(&self) -> &Arc<RaftTrace> {
        &self.trace
    }

    /// Calls `f(peer)` for every frame received from a peer, requests and replies alike. Set
    /// once; later calls are ignored.
    pub fn on_heard(&self, f: HeardFn) {
        let _ = self.heard.set(f);
    }

    /// Sends one request to `peer` for `group` and waits at most `timeout` for its reply.
    ///
    /// Errors: `PeerUnreachable` (unknown peer, dial failed or backing off, connection lost),
    /// `RpcTimeout`, `Frame` (message too large to send), `ShuttingDown`.
    pub async fn request(
        &self,
        peer: NodeId,
        group: GroupId,
        req: RaftRequest,
        timeout: Duration,
    ) -> Result<RaftReply, BrokerError> {
        let Some(link) = self.links.get(&peer) else {
            return Err(BrokerError::PeerUnreachable {
                peer,
                addr: "unknown".to_string(),
                reason: format!("node {peer} is not in the transport's peer list"),
            });
        };
        link.request(group, req, timeout, &self.tasks, &self.cancel).await
    }

    /// The configured address of `peer`, for error messages.
    pub fn peer_addr(&self, peer: NodeId) -> String {
        self.links.get(&peer).map_or_else(|| "unknown".to_string(), |l| l.status().addr.to_string())
    }

    /// The openraft network factory of one group; all groups share this transport's connections.
    pub fn network_factory(self: &Arc<Self>, group: GroupId) -> GroupNetworkFactory {
        GroupNetworkFactory { transport: self.clone(), group }
    }

    /// Starts accepting peer connections on `listener` in the background (returns at once);
    /// requests go to `router`. Stops on shutdown or [`Transport::close`].
    pub fn serve(self: Arc<Self>, listener: TcpListener, router: Arc<dyn GroupRouter>) {
        let ctx = server::ServerContext {
            node_id: self.node_id,
            router,
            heard: Arc::clone(&self.heard),
            tasks: self.tasks.clone(),
            cancel: self.cancel.clone(),
            node_bytes: Arc::new(crate::budget::ByteBudget::new(server::MAX_IN_FLIGHT_BYTES_PER_NODE)),
            connections: Arc::new(tokio::sync::Semaphore::new(server::MAX_PEER_CONNECTIONS)),
        };
        self.tasks.spawn(server::accept_loop(listener, ctx));
    }

    /// Whether this node's connection to `peer` is up right now (see `PeerLink::is_connected`).
    pub fn connected(&self, peer: NodeId) -> bool {
        self.links.get(&peer).is_some_and(|l| l.is_connected())
    }

    pub fn peer_status(&self) -> Vec<PeerStatus> {
        self.links.values().map(|link| link.status()).collect()
    }

    /// Stops every connection and listener and waits for their tasks to end.
    /// Pending requests fail with `PeerUnreachable`; later ones with `ShuttingDown`.
    pub async fn close(&self) {
        self.cancel.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
