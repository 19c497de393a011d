//! The loopback HTTP endpoint of a node (JSON; SSE for the stream; Prometheus text).
//!
//! | route                   | what                                                            |
//! |-------------------------|-----------------------------------------------------------------|
//! | `GET /health`           | `ok` once the node serves                                       |
//! | `GET /state`            | snapshot: config, partitions with offsets, groups, recovery     |
//! | `GET /state?raft=summary&partitions=summary` | the same, summarised (see below)  |
//! | `GET /raft/summary`     | Raft counts only (leaders per node, leaderless groups, terms)  |
//! | `GET /raft/groups?topic=&offset=&limit=` | Raft group states, a page at a time        |
//! | `GET /partitions?topic=&offset=&limit=`  | local partitions' offsets, a page at a time |
//! | `GET /raft/trace?since=&limit=` | RPC-level Raft events from seq `since`, the watched group's replica |
//! | `POST /raft/trace/watch` `{"group": "t-0" \| null}` | the group recorded in full detail |
//! | `GET /events`           | server-sent events, one JSON `Event` each                       |
//! | `GET /metrics`          | Prometheus text                                                 |
//! | `GET /memory`           | heap in use, resident and held free (jemalloc), log index bytes |
//! | `GET /digest`           | per partition: CRC-32C of the log up to the high watermark      |
//! | `POST /faults/power-cut`| truncate every file to its last fsync, answer the report, abort |
//! | `POST /faults/slow-fsync` `{"delay_ms": N}` | add N ms before every fsync (0 clears) |
//! | `POST /faults/fsync-fail` | every fsync fails with EIO from now on: the node stops (exit 74) |
//!
//! `GET /state?raft=summary&partitions=summary` answers the same snapshot without the per-group
//! and per-partition lists and the metadata.

mod metrics;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::state::NodeState;
use crate::telemetry::EventKind;

/// How long the power-cut answer gets to leave the socket before the process aborts. The files
/// are already cut and appends are blocked, so nothing can be written in this window.
const POWER_CUT_ABORT_DELAY: Duration = Duration::from_millis(100);

pub fn router(node: Arc<NodeState>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/state", get(state))
        .route("/raft/summary", get(raft_summary))
        .route("/raft/groups", get(raft_groups))
        .route("/raft/trace", get(raft_trace))
        .route("/raft/trace/watch", post(raft_trace_watch))
        .route("/partitions", get(partitions))
        .route("/events", get(events))
        .route("/metrics", get(metrics))
        .route(
            "/memory",
            get(|State(node): State<Arc<NodeState>>| async move {
                Json(crate::telemetry::memory::report(&node.store))
            }),
        )
        .route("/digest", get(digest))
        .route("/faults/power-cut", post(power_cut))
        .route("/faults/slow-fsync", post(slow_fsync))
        .route("/faults/fsync-fail", post(fsync_fail))
        .with_state(node)
}

/// Serves until `shutdown` fires.
pub async fn serve(listener: tokio::net::TcpListener, node: Arc<NodeState>, shutdown: CancellationToken) {
    let app = router(node);
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await {
        tracing::error!(error = %e, "telemetry endpoint stopped");
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StateQuery {
    /// `summary`: leave the per-group Raft list out.
    raft: Option<String>,
    /// `summary`: leave the per-partition offsets out.
    partitions: Option<String>,
}

/// `None` or `all`: the list; `summary`: counts only.
fn wants_list(v: Option<&str>) -> Option<bool> {
    match v {
        None | Some("all") => Some(true),
        Some("summary") => Some(false),
        Some(_) => None,
    }
}

async fn state(
    State(node): State<Arc<NodeState>>,
    query: Result<Query<StateQuery>, QueryRejection>,
) -> Response {
    let bad = "expected ?raft=summary|all&partitions=summary|all";
    match query {
        Ok(Query(q)) => match (wants_list(q.raft.as_deref()), wants_list(q.partitions.as_deref())) {
            (Some(groups), Some(partitions)) => Json(node.snapshot(groups, partitions)).into_response(),
            _ => (StatusCode::BAD_REQUEST, bad).into_response(),
        },
        Err(e) => (StatusCode::BAD_REQUEST, format!("{bad}: {e}")).into_response(),
    }
}

async fn raft_summary(State(node): State<Arc<NodeState>>) -> Response {
    match &node.cluster {
        Some(c) => Json(c.summary()).into_response(),
        None => (StatusCode::NOT_FOUND, "not in cluster mode: no Raft groups").into_response(),
    }
}

async fn raft_groups(
    State(node): State<Arc<NodeState>>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Some(cluster) = &node.cluster else {
        return (StatusCode::NOT_FOUND, "not in cluster mode: no Raft groups").into_response();
    };
    match query {
        Ok(Query(q)) => {
            let limit = q.limit.unwrap_or(crate::cluster::summary::MAX_PAGE);
            Json(cluster.group_page(q.topic.as_deref(), q.offset, limit)).into_response()
        }
        Err(e) => {
            (StatusCode::BAD_REQUEST, format!("expected ?topic=T&offset=N&limit=M: {e}")).into_response()
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceQuery {
    #[serde(default)]
    since: u64,
    limit: Option<usize>,
}

async fn raft_trace(
    State(node): State<Arc<NodeState>>,
    query: Result<Query<TraceQuery>, QueryRejection>,
) -> Response {
    let Some(cluster) = &node.cluster else {
        return (StatusCode::NOT_FOUND, "not in cluster mode: no Raft groups").into_response();
    };
    match query {
        Ok(Query(q)) => {
            let limit = q.limit.unwrap_or(crate::raft::trace::MAX_POLL);
            Json(cluster.trace_page(q.since, limit)).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, format!("expected ?since=SEQ&limit=N: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    group: Option<String>,
}

async fn raft_trace_watch(
    State(node): State<Arc<NodeState>>,
    body: Result<Json<WatchBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Some(cluster) = &node.cluster else {
        return (StatusCode::NOT_FOUND, "not in cluster mode: no Raft groups").into_response();
    };
    let Json(WatchBody { group }) = match body {
        Ok(b) => b,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("expected {{\"group\": \"<name>\" | null}}: {e}"))
                .into_response()
        }
    };
    match cluster.watch_group(group.as_deref()) {
        Ok(watched) => Json(crate::telemetry::wire::TraceWatch { watched }).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

/// `/raft/groups` and `/partitions` take the same paging query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    topic: Option<String>,
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

async fn partitions(
    State(node): State<Arc<NodeState>>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    match query {
        Ok(Query(q)) => {
            let limit =
                q.limit.unwrap_or(crate::cluster::summary::MAX_PAGE).min(crate::cluster::summary::MAX_PAGE);
            Json(node.partition_page(q.topic.as_deref(), q.offset, limit)).into_response()
        }
        Err(e) => {
            (StatusCode::BAD_REQUEST, format!("expected ?topic=T&offset=N&limit=M: {e}")).into_response()
        }
    }
}

/// One local partition's entry of `GET /digest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartitionDigest {
    pub topic: String,
    pub partition: i32,
    pub high_watermark: i64,
    pub digest: crate::log::ReplicaDigest,
}

/// Per local partition: a digest of the log up to the high watermark, so replicas can be
/// compared byte for byte (`GET /digest`).
async fn digest(State(node): State<Arc<NodeState>>) -> Response {
    let mut out = Vec::new();
    for log in node.store.partitions() {
        if log.topic().starts_with("__") {
            continue;
        }
        let hw = log.offsets().high_watermark;
        match log.digest(hw) {
            Ok(digest) => out.push(PartitionDigest {
                topic: log.topic().to_string(),
                partition: log.partition(),
                high_watermark: hw,
                digest,
            }),
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("digest of {}-{}: {e}", log.topic(), log.partition()),
                )
                    .into_response()
            }
        }
    }
    Json(out).into_response()
}

async fn metrics(State(node): State<Arc<NodeState>>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], metrics::render(&node))
}

async fn events(State(node): State<Arc<NodeState>>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = BroadcastStream::new(node.telemetry.subscribe()).map(|item| {
        Ok(match item {
            Ok(event) => SseEvent::default()
                .event("telemetry")
                .data(serde_json::to_string(&event).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))),
            // A slow viewer lost events: tell it how many instead of silently skipping.
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                SseEvent::default().event("lagged").data(n.to_string())
            }
        })
    });
    // End the stream when the node has stopped: graceful HTTP shutdown waits for open
    // connections, and a live event stream would otherwise hold the process up forever.
    let stream = futures::StreamExt::take_until(stream, node.stopped.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn power_cut(State(node): State<Arc<NodeState>>) -> Response {
    let store = Arc::clone(&node.store);
    let cut = tokio::task::spawn_blocking(move || store.power_cut()).await;
    match cut.map_err(|e| crate::BrokerError::Internal(format!("power cut task: {e}"))).and_then(|r| r) {
        Ok(report) => {
            tracing::warn!(
                node_id = node.config.node_id,
                "power cut: files truncated to their last fsync; aborting"
            );
            node.telemetry.emit(EventKind::PowerCut { report: report.clone() });
            // Detached: it ends the process.
            tokio::spawn(async {
                tokio::time::sleep(POWER_CUT_ABORT_DELAY).await;
                std::process::abort();
            });
            Json(report).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("power cut failed: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlowFsync {
    delay_ms: u64,
}

/// Longest fsync delay accepted: a lab fault, not a way to hang a node forever.
const MAX_FSYNC_DELAY_MS: u64 = 60_000;

/// The disk starts failing every fsync. The next flush round fails, and the node stops without
/// a graceful flush (`LogStore::failed`); only a restart brings it back, as with a real disk
/// error after the disk was replaced. On a node with nothing to flush it waits for the next write.
async fn fsync_fail(State(node): State<Arc<NodeState>>) -> Response {
    node.store.set_fsync_failing(true);
    node.telemetry.emit(EventKind::Fault { fault: "fsync_fail".into(), detail: serde_json::json!({}) });
    tracing::warn!(node_id = node.config.node_id, "fsync failure fault set: every fsync fails with EIO");
    Json(serde_json::json!({ "fsync_failing": true })).into_response()
}

async fn slow_fsync(
    State(node): State<Arc<NodeState>>,
    body: Result<Json<SlowFsync>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(SlowFsync { delay_ms }) = match body {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"delay_ms\": <0..={MAX_FSYNC_DELAY_MS}>}}: {e}"),
            )
                .into_response()
        }
    };
    if delay_ms > MAX_FSYNC_DELAY_MS {
        return (
            StatusCode::BAD_REQUEST,
            format!("delay_ms {delay_ms} is above the limit {MAX_FSYNC_DELAY_MS}"),
        )
            .into_response();
    }
    node.store.set_fsync_delay(Duration::from_millis(delay_ms));
    node.telemetry.emit(EventKind::Fault {
        fault: "slow_fsync".into(),
        detail: serde_json::json!({ "delay_ms": delay_ms }),
    });
    tracing::warn!(node_id = node.config.node_id, delay_ms, "slow fsync fault set");
    Json(serde_json::json!({ "delay_ms": delay_ms })).into_response()
}
