//! The accepting side: reads requests from peers, hands them to the right group, writes replies.
//!
//! Requests on one connection are handled concurrently (a slow snapshot install must not hold up
//! heartbeats of other groups) but at most [`MAX_IN_FLIGHT_PER_CONNECTION`] at once: past that we
//! stop reading, and TCP flow control pushes back on the sender. Replies go through one writer
//! task per connection so frames never interleave.
//!
//! Anyone who can reach the Raft port is a "peer", so what a connection can make this node hold
//! is bounded as for Kafka clients (`protocol::connection`): at most [`MAX_PEER_CONNECTIONS`]
//! connections, every frame above [`UNADMITTED_FRAME_LEN`] admitted to the connection's and the
//! node's byte budgets before its body is read, and a body that stalls closes its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::io::BufReader;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::{self, Body, Envelope, RaftReply, RaftRequest};
use crate::budget::stall::{read_body_unless_stalled, STALL_LIMIT};
use crate::budget::{ByteBudget, ConnectionBudget};
use crate::raft::typ::{GroupId, NodeId};

/// Requests of one connection being handled at the same time. A node with thousands of groups
/// has one AppendEntries per group and follower in flight, each waiting for the follower's fsync;
/// at 256 the reader stopped at 1,000 partitions and the heartbeats behind the appends arrived
/// too late (peers were suspected dead under load).
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 8192;
/// Request bytes of one connection being handled at the same time: what a peer can make this
/// node hold in memory. Past either bound the reader waits and TCP pushes back on the sender.
pub const MAX_IN_FLIGHT_BYTES_PER_CONNECTION: usize = 256 * 1024 * 1024;

/// Request bytes of all peer connections being read or handled at the same time: two peers' full
/// share. Without a node-wide bound, 20 connections announcing 60 MB frames and holding back each
/// last byte made a node resident at 1.19 GB, and nothing bounded the number of connections.
pub const MAX_IN_FLIGHT_BYTES_PER_NODE: usize = 2 * MAX_IN_FLIGHT_BYTES_PER_CONNECTION;
/// Peer connections served at once; one more is closed at accept with a warning. A real peer
/// keeps one connection to this node (a new one after a failure replaces it).
pub const MAX_PEER_CONNECTIONS: usize = 64;
/// Frames up to this long are read before they are admitted, so that a heartbeat is decoded and
/// answered without waiting for room behind a storm of appends (a node's liveness must not look
/// dead because of its load). One such frame per connection at a time, on at most
/// [`MAX_PEER_CONNECTIONS`] connections.
const UNADMITTED_FRAME_LEN: usize = 4096;

/// Dispatches an incoming request to the Raft group it names.
///
/// The broker implements this over its groups' `Raft` handles; a group this node does not host
/// answers [`RaftReply::NoSuchGroup`].
pub trait GroupRouter: Send + Sync + 'static {
    fn handle(&self, group: GroupId, request: RaftRequest) -> BoxFuture<'static, RaftReply>;
}

/// What every connection task of one server needs.
#[derive(Clone)]
pub(super) struct ServerContext {
    pub node_id: NodeId,
    pub router: Arc<dyn GroupRouter>,
    pub heard: Arc<std::sync::OnceLock<super::HeardFn>>,
    pub tasks: TaskTracker,
    pub cancel: CancellationToken,
    /// [`MAX_IN_FLIGHT_BYTES_PER_NODE`], shared by every peer connection.
    pub node_bytes: Arc<ByteBudget>,
    /// One permit per peer connection served ([`MAX_PEER_CONNECTIONS`]).
    pub connections: Arc<Semaphore>,
}

/// Accepts peer connections until the transport is cancelled.
pub(super) async fn accept_loop(listener: TcpListener, ctx: ServerContext) {
    let local = listener.local_addr().ok();
    tracing::info!(node_id = ctx.node_id, addr = ?local, "raft transport listening");
    loop {
        let accepted = tokio::select! {
            _ = ctx.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Ok(served) = Arc::clone(&ctx.connections).try_acquire_owned() else {
                    tracing::warn!(
                        node_id = ctx.node_id,
                        %peer,
                        limit = MAX_PEER_CONNECTIONS,
                        "raft peer connection refused: the node serves this many already"
                    );
                    continue;
                };
                let conn_ctx = ctx.clone();
                ctx.tasks.spawn(async move {
                    serve_connection(stream, peer, conn_ctx).await;
                    drop(served);
                });
            }
            Err(e) => {
                // Usually fd exhaustion; pausing gives in-flight work a chance to release some
                // instead of spinning on the same error.
                tracing::warn!(node_id = ctx.node_id, error = %e, "raft transport accept failed");
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        }
    }
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, ctx: ServerContext) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    // Cancelling this stops the writer and the in-flight handlers of this connection only.
    let conn_cancel = ctx.cancel.child_token();
    let (replies, frames) = mpsc::channel::<Bytes>(MAX_IN_FLIGHT_PER_CONNECTION);

    let writer_cancel = conn_cancel.clone();
    let node_id = ctx.node_id;
    ctx.tasks.spawn(async move {
        tokio::select! {
            _ = writer_cancel.cancelled() => {}
            r = wire::write_frames(frames, write_half) => if let Err(e) = r {
                tracing::warn!(node_id, %peer, error = %e, "raft reply write failed; closing connection");
            },
        }
        writer_cancel.cancel();
    });

    tracing::debug!(node_id, %peer, "raft peer connection accepted");
    let outcome = tokio::select! {
        _ = conn_cancel.cancelled() => Ok(()),
        r = read_requests(BufReader::new(read_half), peer, &ctx, &conn_cancel, replies) => r,
    };
    match outcome {
        Ok(()) => tracing::debug!(node_id, %peer, "raft peer connection closed"),
        Err(reason) => tracing::warn!(node_id, %peer, %reason, "closing raft peer connection"),
    }
    conn_cancel.cancel();
}

/// Reads requests and spawns a handler for each; returns `Err(reason)` on a protocol violation.
async fn read_requests(
    mut reader: BufReader<OwnedReadHalf>,
    peer: SocketAddr,
    ctx: &ServerContext,
    conn_cancel: &CancellationToken,
    replies: mpsc::Sender<Bytes>,
) -> Result<(), String> {
    let budget = ConnectionBudget::new(MAX_IN_FLIGHT_PER_CONNECTION, MAX_IN_FLIGHT_BYTES_PER_CONNECTION)
        .within(Arc::clone(&ctx.node_bytes));
    let replier = Replier {
        node_id: ctx.node_id,
        peer,
        router: ctx.router.clone(),
        replies,
        cancel: conn_cancel.clone(),
    };
    loop {
        let len = match wire::read_frame_len(&mut reader).await {
            Ok(Some(len)) => len,
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("bad frame: {e}")),
        };
        // Admitted before its body is read, unless it is small (see UNADMITTED_FRAME_LEN).
        let early = if len > UNADMITTED_FRAME_LEN { Some(budget.admit(len).await) } else { None };
        let frame =
            read_body_unless_stalled(&mut reader, len, STALL_LIMIT).await.map_err(|e| e.to_string())?;
        let incoming = decode_request(&frame, ctx)?;
        drop(frame);
        if matches!(incoming.request, RaftRequest::Heartbeat { .. } | RaftRequest::Elect { .. }) {
            // Answered here, without waiting for an in-flight slot: a node's liveness must not
            // queue behind a storm of appends, or the storm itself would look like a dead node;
            // nor may a stopping peer's hand-off (answering only queues commands, see router.rs).
            replier.answer_now(incoming).await;
            continue;
        }
        let admitted = match early {
            Some(admitted) => admitted,
            None => budget.admit(len).await,
        };
        let replier = replier.clone();
        ctx.tasks.spawn(async move {
            let _admitted = admitted;
            replier.answer(incoming).await;
        });
    }
}

/// A request read from a peer.
struct Incoming {
    id: u64,
    group: GroupId,
    request: RaftRequest,
}

/// The request in a frame. Any frame is a sign of life of its sender; a reply where a request
/// belongs is a protocol violation.
fn decode_request(frame: &[u8], ctx: &ServerContext) -> Result<Incoming, String> {
    let Envelope { id, from, group, body } = wire::decode_body(frame).map_err(|e| e.to_string())?;
    if let Some(heard) = ctx.heard.get() {
        heard(from);
    }
    let Body::Request(request) = body else {
        return Err(format!("peer sent a reply (id {id}) on our incoming connection"));
    };
    Ok(Incoming { id, group, request })
}

/// The reply side of one connection: hands a request to its group and queues the answer for
/// the connection's writer.
#[derive(Clone)]
struct Replier {
    node_id: NodeId,
    peer: SocketAddr,
    router: Arc<dyn GroupRouter>,
    replies: mpsc::Sender<Bytes>,
    /// The connection's: cancelled, its requests are no longer worth answering.
    cancel: CancellationToken,
}

impl Replier {
    /// Answers on the reading side, before the next request is read.
    async fn answer_now(&self, incoming: Incoming) {
        let Incoming { id, group, request, .. } = incoming;
        let reply = self.router.handle(group.clone(), request).await;
        let reply = Envelope { id, from: self.node_id, group, body: Body::Reply(reply) };
        if let Ok(frame) = wire::encode_frame(&reply) {
            let _ = self.replies.send(frame).await;
        }
    }

    /// Answers in a task of its own, unless the connection closes first.
    async fn answer(&self, incoming: Incoming) {
        let (node_id, peer) = (self.node_id, self.peer);
        let Incoming { id, group, request, .. } = incoming;
        tracing::trace!(node_id, %peer, %group, id, rpc = request.kind(), "raft request received");
        let reply = tokio::select! {
            // The requester can no longer get the reply; stop working on it.
            _ = self.cancel.cancelled() => return,
            reply = self.router.handle(group.clone(), request) => reply,
        };
        match wire::encode_frame(&Envelope {
            id,
            from: node_id,
            group: group.clone(),
            body: Body::Reply(reply),
        }) {
            Ok(frame) => {
                let _ = self.replies.send(frame).await;
            }
            // The requester times out; the connection itself is still sound.
            Err(e) => tracing::warn!(node_id, %peer, %group, id, error = %e, "raft reply not sent"),
        }
    }
}
