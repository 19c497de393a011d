//! The dialing side: one lazily opened, multiplexed connection to each peer.
//!
//! A [`PeerLink`] owns at most one live [`Connection`]. Requests from every group share it; each
//! gets a fresh id and a oneshot in the connection's pending map, and the reader task routes each
//! reply to its oneshot by id. When the connection dies, every pending request fails at once
//! (instead of each waiting out its TTL) and the next request dials again. Failed dials back off
//! exponentially so a dead peer is not hammered by the retries of many groups.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::{self, Body, Envelope, RaftReply, RaftRequest};
use super::{HeardFn, PeerStatus};
use crate::error::BrokerError;
use crate::raft::typ::{GroupId, NodeId};

/// First wait after a failed dial; doubles per failure up to [`MAX_BACKOFF`], reset on success.
const INITIAL_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Frames queued for the writer; a full queue makes senders wait (bounded by their TTL).
const OUTBOX_CAPACITY: usize = 1024;

/// Where a pending request's answer goes: the reply, or why the connection died.
type ReplySlot = oneshot::Sender<Result<RaftReply, String>>;

/// Everything this node knows about reaching one peer.
pub(super) struct PeerLink {
    node_id: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    heard: Arc<std::sync::OnceLock<HeardFn>>,
    dialer: tokio::sync::Mutex<Dialer>,
    next_id: AtomicU64,
    connected: AtomicBool,
    connects: AtomicU64,
    requests_sent: AtomicU64,
    replies_received: AtomicU64,
    last_connected_ns: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Dial state; behind an async mutex so concurrent requests wait for one dial instead of racing.
struct Dialer {
    conn: Option<Arc<Connection>>,
    backoff: Duration,
    retry_at: Option<Instant>,
}

/// One live TCP connection to the peer.
struct Connection {
    outbox: mpsc::Sender<bytes::Bytes>,
    /// `None` once the connection failed: registering then fails instead of waiting forever.
    pending: Mutex<Option<HashMap<u64, ReplySlot>>>,
    closed: CancellationToken,
}

impl PeerLink {
    pub(super) fn new(
        node_id: NodeId,
        peer: NodeId,
        addr: SocketAddr,
        heard: Arc<std::sync::OnceLock<HeardFn>>,
    ) -> Self {
        PeerLink {
            node_id,
            peer,
            addr,
            heard,
            dialer: tokio::sync::Mutex::new(Dialer { conn: None, backoff: INITIAL_BACKOFF, retry_at: None }),
            next_id: AtomicU64::new(1),
            connected: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            requests_sent: AtomicU64::new(0),
            replies_received: AtomicU64::new(0),
            last_connected_ns: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    /// Whether a connection to the peer is up: false from the moment it is lost (a killed peer's
    /// kernel closes it at once) until a dial succeeds again.
    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Sends `req` and waits for its reply; every wait (dial, queue, reply) ends by `ttl`.
    pub(super) async fn request(
        self: &Arc<Self>,
        group: GroupId,
        req: RaftRequest,
        ttl: Duration,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Result<RaftReply, BrokerError> {
        if cancel.is_cancelled() {
            return Err(BrokerError::ShuttingDown);
        }
        let deadline = Instant::now() + ttl;
        let rpc = req.kind();
        let timed_out =
            || BrokerError::RpcTimeout { peer: self.peer, group: group.clone(), rpc, timeout: ttl };

        let conn = match timeout_at(deadline, self.connection(tasks, cancel)).await {
            Ok(conn) => conn?,
            Err(_) => return Err(timed_out()),
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = wire::encode_frame(&Envelope {
            id,
            from: self.node_id,
            group: group.clone(),
            body: Body::Request(req),
        })?;
        let reply = conn.register(id).ok_or_else(|| self.unreachable("connection closed"))?;
        // Dropping the guard (timeout, or the caller giving up) forgets the id, so the map
        // does not grow with requests nobody waits for.
        let _forget = PendingGuard { conn: &conn, id };

        match timeout_at(deadline, conn.outbox.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(self.unreachable("connection closed")),
            Err(_) => return Err(timed_out()),
        }
        self.requests_sent.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(node_id = self.node_id, peer = self.peer, %group, id, rpc, "raft request sent");

        match timeout_at(deadline, reply).await {
            Ok(Ok(Ok(reply))) => {
                self.replies_received.fetch_add(1, Ordering::Relaxed);
                Ok(reply)
            }
            Ok(Ok(Err(reason))) => Err(self.unreachable(&reason)),
            Ok(Err(_)) => Err(self.unreachable("connection dropped")),
            Err(_) => Err(timed_out()),
        }
    }

    /// The live connection, dialing one if there is none and the backoff allows it.
    async fn connection(
        self: &Arc<Self>,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Result<Arc<Connection>, BrokerError> {
        let mut dialer = self.dialer.lock().await;
        if let Some(conn) = dialer.conn.as_ref().filter(|c| !c.closed.is_cancelled()) {
            return Ok(conn.clone());
        }
        let now = Instant::now();
        if let Some(retry_at) = dialer.retry_at.filter(|at| *at > now) {
            // Fail at once rather than wait: openraft has its own retry pacing for Unreachable.
            let last = self.last_error.lock().unwrap().clone().unwrap_or_default();
            return Err(self.unreachable(&format!("backing off {:?} after: {last}", retry_at - now)));
        }
        match TcpStream::connect(self.addr).await {
            Ok(stream) => {
                dialer.backoff = INITIAL_BACKOFF;
                dialer.retry_at = None;
                let conn = self.start_connection(stream, tasks, cancel);
                dialer.conn = Some(conn.clone());
                Ok(conn)
            }
            Err(e) => {
                let reason = format!("connect failed: {e}");
                tracing::debug!(node_id = self.node_id, peer = self.peer, addr = %self.addr,
                    backoff = ?dialer.backoff, %reason, "raft peer not reachable");
                dialer.retry_at = Some(now + dialer.backoff);
                dialer.backoff = (dialer.backoff * 2).min(MAX_BACKOFF);
                *self.last_error.lock().unwrap() = Some(reason.clone());
                Err(self.unreachable(&reason))
            }
        }
    }

    /// Spawns the writer and reader of a freshly dialed stream.
    fn start_connection(
        self: &Arc<Self>,
        stream: TcpStream,
        tasks: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Arc<Connection> {
        // Raft heartbeats and votes are small and latency-bound.
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = stream.into_split();
        let (outbox, frames) = mpsc::channel(OUTBOX_CAPACITY);
        let conn = Arc::new(Connection {
            outbox,
            pending: Mutex::new(Some(HashMap::new())),
            closed: cancel.child_token(),
        });
        if self.connects.fetch_add(1, Ordering::Relaxed) > 0 {
            tracing::info!(node_id = self.node_id, peer = self.peer, addr = %self.addr, "raft peer reconnected");
        } else {
            tracing::info!(node_id = self.node_id, peer = self.peer, addr = %self.addr, "raft peer connected");
        }
        self.connected.store(true, Ordering::Relaxed);
        self.last_connected_ns.store(unix_nanos(), Ordering::Relaxed);

        let (link, writer_conn) = (self.clone(), conn.clone());
        tasks.spawn(async move {
            let reason = tokio::select! {
                _ = writer_conn.closed.cancelled() => return,
                r = wire::write_frames(frames, write_half) => match r {
                    Ok(()) => "connection no longer used".to_string(),
                    Err(e) => format!("write failed: {e}"),
                },
            };
            writer_conn.fail(&link, &reason);
        });
        let (link, reader_conn) = (self.clone(), conn.clone());
        tasks.spawn(async move {
            let reason = tokio::select! {
                _ = reader_conn.closed.cancelled() => "transport shutting down".to_string(),
                reason = reader_conn.route_replies(BufReader::new(read_half), &link) => reason,
            };
            reader_conn.fail(&link, &reason);
        });
        conn
    }

    fn unreachable(&self, reason: &str) -> BrokerError {
        BrokerError::PeerUnreachable {
            peer: self.peer,
            addr: self.addr.to_string(),
            reason: reason.to_string(),
        }
    }

    pub(super) fn status(&self) -> PeerStatus {
        let connects = self.connects.load(Ordering::Relaxed);
        let last_connected_ns = self.last_connected_ns.load(Ordering::Relaxed);
        PeerStatus {
            id: self.peer,
            addr: self.addr,
            connected: self.connected.load(Ordering::Relaxed),
            requests_sent: self.requests_sent.load(Ordering::Relaxed),
            replies_received: self.replies_received.load(Ordering::Relaxed),
            reconnects: connects.saturating_sub(1),
            last_error: self.last_error.lock().unwrap().clone(),
            last_connected_ns: (last_connected_ns > 0).then_some(last_connected_ns),
        }
    }
}

impl Connection {
    fn register(&self, id: u64) -> Option<oneshot::Receiver<Result<RaftReply, String>>> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().as_mut()?.insert(id, tx);
        Some(rx)
    }

    /// Reads replies and hands each to its waiter until the stream ends; returns why it ended.
    async fn route_replies(
        &self,
        mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        link: &PeerLink,
    ) -> String {
        loop {
            let frame = match wire::read_frame(&mut reader).await {
                Ok(Some(frame)) => frame,
                Ok(None) => return "connection closed by peer".to_string(),
                Err(e) => return format!("read failed: {e}"),
            };
            let envelope = match wire::decode_body(&frame) {
                Ok(envelope) => envelope,
                Err(e) => return e.to_string(),
            };
            if let Some(heard) = link.heard.get() {
                heard(link.peer);
            }
            let Body::Reply(reply) = envelope.body else {
                return format!("peer sent a request (id {}) on our outgoing connection", envelope.id);
            };
            let slot = self.pending.lock().unwrap().as_mut().and_then(|p| p.remove(&envelope.id));
            // No slot: the requester timed out and left; the late reply is simply dropped.
            if let Some(slot) = slot {
                let _ = slot.send(Ok(reply));
            }
        }
    }

    /// Marks the connection dead and fails every pending request with `reason`; idempotent.
    fn fail(&self, link: &PeerLink, reason: &str) {
        let pending = self.pending.lock().unwrap().take();
        if let Some(pending) = pending {
            if !self.closed.is_cancelled() {
                tracing::warn!(node_id = link.node_id, peer = link.peer, addr = %link.addr,
                    pending = pending.len(), %reason, "raft peer connection lost");
                *link.last_error.lock().unwrap() = Some(reason.to_string());
            }
            link.connected.store(false, Ordering::Relaxed);
            for (_, slot) in pending {
                let _ = slot.send(Err(reason.to_string()));
            }
        }
        self.closed.cancel();
    }
}

struct PendingGuard<'a> {
    conn: &'a Connection,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(pending) = self.conn.pending.lock().unwrap().as_mut() {
            pending.remove(&self.id);
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
