//! One client connection.
//!
//! Requests are *started* in arrival order on the reading side — so a producer's pipelined batches
//! reach the log in the order it sent them — while their completions (waiting for an fsync, a
//! long-poll fetch, a group rebalance) run concurrently. Responses leave in request order, as the
//! Kafka protocol requires. A frame we cannot decode closes this connection with a logged reason
//! and nothing else: other connections keep being served.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{FuturesOrdered, StreamExt};
use futures::FutureExt;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::BufReader;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::api::{self, Reply, RequestContext};
use crate::budget::stall::{
    read_body_unless_stalled, write_unless_stalled, Written, MIN_BYTES_PER_SEC, STALL_LIMIT,
};
use crate::budget::{AnswerBytes, ConnectionBudget};
use crate::error::{BrokerError, Result};
use crate::protocol::frame::read_frame_len;
use crate::state::NodeState;

/// Requests read from one connection and not yet answered, at most: beyond that the client's
/// requests wait in the kernel's socket buffers, where TCP slows it, instead of in our memory.
/// As high as the Raft transport's bound: the scale bench's producer keeps up to ~2,000 small
/// requests in flight per connection at 1,000 partitions (10,000 messages, ~1.6 per request,
/// three brokers), and a bound of 128 cut its rate by a third, 1,024 by about 15 %
/// (docs/benchmarks.md, session 34). Memory stays bounded by the byte budget below.
const MAX_STARTED: usize = 8192;
/// ... and at most this many bytes of their frames (a larger frame is admitted alone), within
/// the node's `max_request_bytes_in_progress` shared by all connections.
const MAX_STARTED_BYTES: usize = 64 << 20;
/// Started requests waiting for the writer to take them.
const QUEUED: usize = 64;
/// Complete answers are gathered into one write up to about this many bytes, so that a run of
/// large fetch answers is not copied into one buffer all at once.
const COALESCE_RESPONSE_BYTES: usize = 1 << 20;
/// A response waiting for its turn: the correlation data needed to frame it.
struct Pending {
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
}

/// A request's answer (none for `acks=0` produce), and the budget its bytes hold until written.
type Answered = (Pending, Option<ResponseKind>, Option<AnswerBytes>);
type StartedRequest = futures::future::BoxFuture<'static, Answered>;
type InFlight = FuturesOrdered<StartedRequest>;

/// Serves one connection until the client closes it, a frame is malformed, or the node shuts
/// down (then it reads for `drain_idle` more, so that fire-and-forget `acks=0` produce requests
/// already on the wire are not dropped, and answers everything it has read).
pub async fn serve(stream: TcpStream, peer: SocketAddr, node: Arc<NodeState>, shutdown: CancellationToken) {
    let node_id = node.config.node_id;
    match serve_inner(stream, peer, &node, shutdown).await {
        Ok(()) => tracing::debug!(node_id, %peer, "connection closed"),
        Err(e) => {
            tracing::warn!(node_id, %peer, reason = %e, "closing connection");
            node.telemetry.warn(format!("closed connection from {peer}: {e}"));
        }
    }
}

async fn serve_inner(
    stream: TcpStream,
    peer: SocketAddr,
    node: &Arc<NodeState>,
    shutdown: CancellationToken,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let limits = ReadLimits {
        max_frame: node.config.max_frame_bytes,
        drain_idle: Duration::from_millis(node.config.drain_idle_ms),
        max_idle: Duration::from_millis(node.config.connections_max_idle_ms),
    };
    // Reading and writing are two loops joined in this task: a frame's read is not cancel-safe
    // (a half-read frame would be lost), so the reader is never raced against the writer.
    let (started_tx, started_rx) = mpsc::channel::<StartedRequest>(QUEUED);
    // How many of this connection's requests have been answered, in order (see `runs_in_turn`).
    let (answered_tx, answered_rx) = watch::channel(0u64);
    let budget =
        ConnectionBudget::new(MAX_STARTED, MAX_STARTED_BYTES).within(Arc::clone(&node.kafka_request_bytes));
    let write_failed = CancellationToken::new();
    let stall_limit = STALL_LIMIT.min(limits.max_idle);

    let reader_stop = write_failed.clone();
    // `move`: the reader owns the sender, so when it ends the writer sees the channel close,
    // finishes what was started, and ends too.
    let reader = async move {
        let mut reader = BufReader::new(read_half);
        let mut seq = 0u64;
        let mut drain = Drain::default();
        loop {
            let next_frame = read_frame_len(&mut reader, limits.max_frame);
            let len = tokio::select! {
                len = within_limits(next_frame, Some(limits.max_idle), peer, &limits, &shutdown, &mut drain) => len?,
                _ = reader_stop.cancelled() => return Ok(()),
            };
            let Some(len) = len else { return Ok(()) };
            // Admitted before its body is read, as Kafka's memory pool does: starting is what
            // takes work, and the body is what takes memory. Admitted after it, a client
            // announcing 100 MiB frames on many connections and holding back each last byte made
            // the node hold them all uncounted. A writer that gave up (the client stalled or
            // left) ends a wait for room too.
            let admitted = tokio::select! {
                admitted = budget.admit(len) => admitted,
                _ = reader_stop.cancelled() => return Ok(()),
            };
            // One tuple, so the gauges are uncounted before the budget is returned (fields drop in
            // order), also when the connection goes away first: they never show more than it holds.
            let held = (
                InProgress::start(&node.kafka_requests_in_progress, 1),
                InProgress::start(&node.kafka_request_bytes_in_progress, len),
                admitted,
            );
            let body = async { read_body_unless_stalled(&mut reader, len, stall_limit).await.map(Some) };
            let frame = tokio::select! {
                frame = within_limits(body, None, peer, &limits, &shutdown, &mut drain) => frame?,
                _ = reader_stop.cancelled() => return Ok(()),
            };
            let Some(frame) = frame else { return Ok(()) };
            node.kafka_requests_total.fetch_add(1, Ordering::Relaxed);
            let turn = Turn { seq, answered: answered_rx.clone() };
            seq += 1;
            let started = start_request(frame, peer, node, turn)?;
            let started: StartedRequest = Box::pin(async move {
                let answered = started.await;
                drop(held);
                answered
            });
            if started_tx.send(started).await.is_err() {
                return Ok(()); // the writer is gone
            }
        }
    };
    let writer = write_responses(write_half, started_rx, answered_tx, peer, stall_limit, write_failed);
    let (read_result, write_result) = tokio::join!(reader, writer);
    read_result.and(write_result)
}

/// Completes the started requests concurrently and writes their responses in request order,
/// until the reader has ended and every started request is answered. Cancels `write_failed`
/// when the client goes away mid-answer, or takes no byte of an answer for `stall_limit` (then
/// fails, so the connection is closed with a warning), so that the reader stops too.
async fn write_responses(
    mut write_half: OwnedWriteHalf,
    mut started_rx: mpsc::Receiver<StartedRequest>,
    answered_tx: watch::Sender<u64>,
    peer: SocketAddr,
    stall_limit: Duration,
    write_failed: CancellationToken,
) -> Result<()> {
    let mut in_flight: InFlight = FuturesOrdered::new();
    let mut open = true;
    let mut answered = 0u64;
    loop {
        tokio::select! {
            started = started_rx.recv(), if open => match started {
                Some(f) => in_flight.push_back(f),
                None => open = false,
            },
            Some((pending, response, held)) = in_flight.next() => {
                answered += 1;
                let mut out = BytesMut::new();
                // The answers' budget is returned once `out`, their copy, has been written.
                let mut holding: Vec<AnswerBytes> = held.into_iter().collect();
                if let Some(response) = response {
                    encode_response_frame(&mut out, &pending, &response)?;
                }
                // Answers already complete go out in the same write. Under a produce spread over
                // many partitions the commits of pipelined requests land together, and each write
                // was a syscall here and a segment for the client to read.
                while out.len() < COALESCE_RESPONSE_BYTES {
                    let Some(Some((pending, response, held))) = in_flight.next().now_or_never() else { break };
                    answered += 1;
                    holding.extend(held);
                    if let Some(response) = response {
                        encode_response_frame(&mut out, &pending, &response)?;
                    }
                }
                if out.is_empty() {
                    answered_tx.send_replace(answered);
                    continue;
                }
                match write_unless_stalled(&mut write_half, &out, stall_limit).await {
                    Written::All => {
                        drop((holding, out));
                        answered_tx.send_replace(answered);
                    }
                    Written::Closed(e) => {
                        // The client went away mid-answer: an ordinary close, not its fault.
                        tracing::debug!(%peer, error = %e, "client closed before its response was written");
                        write_failed.cancel();
                        return Ok(());
                    }
                    Written::Stalled => {
                        // Returning drops the requests in progress, and with them their budget.
                        write_failed.cancel();
                        return Err(BrokerError::ClientStalled {
                            limit: stall_limit,
                            min_bytes_per_sec: MIN_BYTES_PER_SEC,
                        });
                    }
                }
            }
            else => return Ok(()),
        }
    }
}

/// Counts one request (or its bytes) in a node's gauge from when it is read until its answer
/// exists, or until the connection that read it is gone.
struct InProgress(Arc<AtomicUsize>, usize);

impl InProgress {
    fn start(gauge: &Arc<AtomicUsize>, n: usize) -> InProgress {
        gauge.fetch_add(n, Ordering::Relaxed);
        InProgress(Arc::clone(gauge), n)
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

/// How long and how much the reading side waits for, from the node's config.
#[derive(Clone, Copy)]
struct ReadLimits {
    max_frame: u32,
    /// Once shutdown has begun: how long a connection goes on reading new requests.
    drain_idle: Duration,
    /// `connections_max_idle_ms`.
    max_idle: Duration,
}

/// When a connection stops reading once shutdown has begun: `drain_idle` after it first saw the
/// shutdown. What a client sent before the SIGTERM reaches us within that; what it sends later is
/// not read, so not answered, and it sends that again to the partition's next leader (a Kafka
/// client retries an unanswered request on a closed connection). The drain used to end only once
/// the client had been quiet for `drain_idle`; under a steady load it never was, and every node
/// drained until `DRAIN_LIMIT`.
#[derive(Default)]
struct Drain {
    reads_end: Option<tokio::time::Instant>,
}

/// Finishes `read` (a frame's length, or with `idle` `None` the body of a frame already begun)
/// within the connection's limits. `None`: the client closed; or it sent nothing for `idle`
/// (`connections_max_idle_ms` while waiting for a frame; a body has its stall limit instead) and
/// is let go, as Kafka's `connections.max.idle.ms` does, since otherwise idle sockets pile up; or
/// shutdown has begun and the drain's reading time is over (see [`Drain`]). A body begun in time
/// gets at least `drain_idle` more, so a request already on the wire is not cut in half.
async fn within_limits<T>(
    read: impl std::future::Future<Output = Result<Option<T>>>,
    idle: Option<Duration>,
    peer: SocketAddr,
    limits: &ReadLimits,
    shutdown: &CancellationToken,
    drain: &mut Drain,
) -> Result<Option<T>> {
    tokio::pin!(read);
    if !shutdown.is_cancelled() {
        let idle_out = async {
            match idle {
                Some(idle) => tokio::time::sleep(idle).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            read = &mut read => return read,
            _ = idle_out => {
                tracing::info!(
                    %peer,
                    limit_ms = limits.max_idle.as_millis() as u64,
                    "closing a connection idle past connections_max_idle_ms"
                );
                return Ok(None);
            }
            _ = shutdown.cancelled() => {}
        }
    }
    // Shutdown: the same read goes on (nothing half-read is lost) until the drain's time is up.
    let now = tokio::time::Instant::now();
    let reads_end = *drain.reads_end.get_or_insert(now + limits.drain_idle);
    let until = match idle {
        Some(_) => reads_end,
        None => reads_end.max(now + limits.drain_idle),
    };
    match tokio::time::timeout_at(until, &mut read).await {
        Ok(read) => read,
        Err(_) => Ok(None),
    }
}

/// Decodes one request and starts it. Runs on the reading side, so the order-sensitive part of a
/// handler (appending to the log) happens in arrival order.
fn start_request(
    mut frame: Bytes,
    peer: SocketAddr,
    node: &Arc<NodeState>,
    turn: Turn,
) -> Result<StartedRequest> {
    if frame.len() < 8 {
        return Err(BrokerError::Frame(format!(
            "request of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key =
        ApiKey::try_from(raw_key).map_err(|_| BrokerError::Frame(format!("unknown API key {raw_key}")))?;
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(api_version))
        .map_err(|e| BrokerError::Frame(format!("{api_key:?} v{api_version} header: {e}")))?;
    let pending = Pending { api_key, api_version, correlation_id: header.correlation_id };

    let Some(spec) = node.registry.get(api_key) else {
        // An error the client can read where the API's response has a place for one; the
        // trial encode covers versions that lack it.
        let response = api::unsupported::answer(api_key, api_version, &mut frame)
            .filter(|r| encode_response_frame(&mut BytesMut::new(), &pending, r).is_ok())
            .ok_or_else(|| BrokerError::Frame(format!("{api_key:?} is not served by this broker")))?;
        node.telemetry.warn(format!("{peer} asked for {api_key:?}, which this broker does not serve"));
        return Ok(started(pending, Reply::Now(response)));
    };
    if !spec.supports(api_version) {
        if api_key == ApiKey::ApiVersions {
            // Kafka answers an ApiVersions request it cannot parse with a v0 answer listing what
            // it supports, so the client can retry with a version we both know.
            let response = api::api_versions::unsupported(&node.registry);
            let pending = Pending { api_version: 0, ..pending };
            return Ok(started(pending, Reply::Now(response)));
        }
        return Err(BrokerError::Frame(format!(
            "{api_key:?} v{api_version} is outside the advertised range v{}..=v{}",
            spec.min, spec.max
        )));
    }
    let request = RequestKind::decode(api_key, &mut frame, api_version)
        .map_err(|e| BrokerError::Frame(format!("{api_key:?} v{api_version} body: {e}")))?;
    let ctx = RequestContext {
        api_version,
        client_id: header.client_id.as_ref().map(|s| s.to_string()).unwrap_or_default(),
        client_host: peer.ip().to_string(),
    };
    if !runs_in_turn(api_key) {
        return Ok(started(pending, api::dispatch(node, ctx, request)));
    }
    let node = Arc::clone(node);
    Ok(Box::pin(async move {
        let Turn { seq, mut answered } = turn;
        if answered.wait_for(|n| *n >= seq).await.is_err() {
            return (pending, None, None); // the writer is gone: no one would take the answer
        }
        started(pending, api::dispatch(&node, ctx, request)).await
    }))
}

/// Whether a request runs only once every earlier request of its connection has been answered,
/// as Kafka runs every request. All but Produce and Fetch do: their answers can grow with the
/// cluster (Metadata for every topic, group and config listings) while the request stays tiny,
/// and answers completed behind a slow one wait in memory for their turn to be written. One
/// connection sending a 30 s long-poll fetch and then 4,000 Metadata requests for 10,000
/// partitions, reading nothing, made a node resident at 4.5 GB and growing. Produce keeps its
/// pipelining (its answers are small and many partitions need it); a fetch answer holds its
/// bytes of the node budget (`api::fetch`).
fn runs_in_turn(api_key: ApiKey) -> bool {
    !matches!(api_key, ApiKey::Produce | ApiKey::Fetch)
}

/// A request's place on its connection, and how many requests there have been answered.
struct Turn {
    seq: u64,
    answered: watch::Receiver<u64>,
}

/// The future that answers a dispatched request.
fn started(pending: Pending, reply: Reply) -> StartedRequest {
    match reply {
        Reply::Now(response) => Box::pin(async move { (pending, Some(response), None) }),
        Reply::Later(future) => Box::pin(async move { (pending, Some(future.await), None) }),
        Reply::LaterHolding(future) => Box::pin(async move {
            let (response, held) = future.await;
            (pending, Some(response), held)
        }),
        Reply::NoResponse => Box::pin(async move { (pending, None, None) }),
    }
}

/// Appends the response to `out` as one frame: its length, then header and body. On an error
/// `out` is left as it was.
fn encode_response_frame(out: &mut BytesMut, pending: &Pending, response: &ResponseKind) -> Result<()> {
    let start = out.len();
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(pending.correlation_id);
    let encoded = header
        .encode(out, pending.api_key.response_header_version(pending.api_version))
        .map_err(|e| BrokerError::Frame(format!("encoding {:?} response header: {e}", pending.api_key)))
        .and_then(|()| {
            response.encode(out, pending.api_version).map_err(|e| {
                BrokerError::Frame(format!(
                    "encoding {:?} v{} response: {e}",
                    pending.api_key, pending.api_version
                ))
            })
        });
    if let Err(e) = encoded {
        out.truncate(start);
        return Err(e);
    }
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::ApiVersionsResponse;

    use super::*;
    use crate::protocol::frame::read_frame;

    fn api_versions(correlation_id: i32) -> Pending {
        Pending { api_key: ApiKey::ApiVersions, api_version: 3, correlation_id }
    }

    /// Several answers framed into one write read back as separate frames, in order, each
    /// with its own correlation id.
    #[tokio::test]
    async fn answers_framed_together_read_back_one_by_one() {
        let response = ResponseKind::ApiVersions(ApiVersionsResponse::default());
        let mut out = BytesMut::new();
        for id in [7, 8, 9] {
            encode_response_frame(&mut out, &api_versions(id), &response).unwrap();
        }
        let mut reader: &[u8] = &out;
        for id in [7, 8, 9] {
            let mut frame = read_frame(&mut reader, 1 << 20).await.unwrap().expect("a frame");
            let header = ResponseHeader::decode(&mut frame, 0).unwrap();
            assert_eq!(header.correlation_id, id);
        }
        assert!(read_frame(&mut reader, 1 << 20).await.unwrap().is_none(), "nothing after the three frames");
    }

    /// An answer the version cannot carry is an error and leaves what was framed before intact.
    #[test]
    fn a_failed_encode_leaves_the_buffer_as_it_was() {
        let mut out = BytesMut::new();
        let ok = ResponseKind::ApiVersions(ApiVersionsResponse::default());
        encode_response_frame(&mut out, &api_versions(1), &ok).unwrap();
        let before = out.clone();
        // There is no Produce v1000: the encode fails after the length prefix went in.
        let wrong = ResponseKind::Produce(Default::default());
        let pending = Pending { api_key: ApiKey::Produce, api_version: 1000, correlation_id: 2 };
        assert!(encode_response_frame(&mut out, &pending, &wrong).is_err());
        assert_eq!(out, before);
    }
}
