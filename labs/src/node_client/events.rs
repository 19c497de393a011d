//! Following a node's `GET /events` server-sent event stream, reconnecting while it is down.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Reconnect pace while a node is down or restarting: quick enough to catch a restart's first
/// events, slow enough not to spin.
const RECONNECT_EVERY: Duration = Duration::from_millis(200);

/// Calls `on_event` with every JSON event the node streams, until `cancel` fires. Reconnects
/// when the node goes away; `on_gap` is told when the stream was lost (events may be missing).
pub async fn follow(
    addr: SocketAddr,
    cancel: CancellationToken,
    mut on_event: impl FnMut(serde_json::Value) + Send,
    mut on_gap: impl FnMut(String) + Send,
) {
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = stream_once(addr, &mut on_event) => r,
        };
        if let Err(reason) = result {
            on_gap(reason);
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT_EVERY) => {}
        }
    }
}

async fn stream_once(
    addr: SocketAddr,
    on_event: &mut (impl FnMut(serde_json::Value) + Send),
) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let req = format!("GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n");
    stream.write_all(req.as_bytes()).await.map_err(|e| format!("send: {e}"))?;
    let mut lines = BufReader::new(stream).lines();
    let mut in_body = false;
    let mut event_name = String::new();
    while let Some(line) = lines.next_line().await.map_err(|e| format!("read: {e}"))? {
        if !in_body {
            in_body = line.is_empty();
            continue;
        }
        // Chunked transfer encoding puts hex chunk sizes on their own lines: skip them.
        if let Some(name) = line.strip_prefix("event:") {
            event_name = name.trim().to_string();
        } else if let Some(data) = line.strip_prefix("data:") {
            if event_name == "telemetry" {
                if let Ok(v) = serde_json::from_str(data.trim()) {
                    on_event(v);
                }
            } else if event_name == "lagged" {
                return Err(format!("the node dropped {} events for this slow reader", data.trim()));
            }
        }
    }
    Err(format!("stream from {addr} ended"))
}

/// Maps one node telemetry event onto the timeline: (timestamp, node id, kind). Types the lab
/// draws get their own kinds; the rest is kept verbatim. An event this lab cannot read as the
/// node's [`broker::telemetry::Event`] (a newer node's) is kept verbatim too.
pub fn to_timeline(v: serde_json::Value) -> (u64, i32, crate::timeline::EventKind) {
    use broker::telemetry::{Event, EventKind as Node};

    use crate::timeline::EventKind;
    let Ok(event) = <Event as serde::Deserialize>::deserialize(&v) else {
        let ts = v["ts_ns"].as_u64().unwrap_or_else(crate::history::now_ns);
        let node = v["node_id"].as_i64().unwrap_or(-1) as i32;
        return (ts, node, EventKind::Telemetry { data: v });
    };
    let kind = match event.kind {
        Node::Raft(g) => EventKind::Raft {
            group: g.group,
            term: g.term,
            role: g.role,
            leader: g.leader,
            last_log_index: g.last_log_index,
            applied_index: g.applied_index,
            voted_for: g.voted_for,
        },
        Node::Election { group, term, phase, leader } => EventKind::Election { group, term, phase, leader },
        Node::PartitionOffsets { topic, partition, offsets } => EventKind::Offsets {
            topic,
            partition,
            log_end_offset: offsets.log_end_offset,
            flushed_offset: offsets.flushed_offset,
            high_watermark: offsets.high_watermark,
        },
        _ => EventKind::Telemetry { data: v },
    };
    (event.ts_ns, event.node_id, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::EventKind;
    use broker::telemetry::wire::Role;

    #[test]
    fn raft_and_offsets_events_map_to_their_kinds() {
        let raft = serde_json::json!({"seq":1,"ts_ns":5,"node_id":2,"type":"raft","group":"t-0","term":7,
            "role":"Leader","leader":2,"last_log_index":9,"applied_index":9,"voted_for":2,"vote_committed":true,
            "matched":{"1":9,"2":9,"3":null},"voters":[1,2,3]});
        let (ts, node, kind) = to_timeline(raft);
        assert_eq!((ts, node), (5, 2));
        assert!(
            matches!(kind, EventKind::Raft { term: 7, leader: Some(2), role: Role::Leader, .. }),
            "{kind:?}"
        );
        let off = serde_json::json!({"seq":2,"ts_ns":6,"node_id":1,"type":"partition_offsets","topic":"t","partition":0,
            "offsets":{"log_start_offset":0,"log_end_offset":10,"flushed_offset":8,"high_watermark":8,"appended_at_ns":5,"flushed_at_ns":4}});
        assert!(matches!(
            to_timeline(off).2,
            EventKind::Offsets { log_end_offset: 10, flushed_offset: 8, .. }
        ));
        let other = serde_json::json!({"seq":3,"ts_ns":7,"node_id":1,"type":"warning","message":"x"});
        assert!(matches!(to_timeline(other).2, EventKind::Telemetry { .. }));
        // A newer node's event this lab cannot read is kept as it came, with its time and node.
        let newer =
            serde_json::json!({"seq":4,"ts_ns":8,"node_id":3,"type":"raft","group":"t-0","role":"Observer"});
        let (ts, node, kind) = to_timeline(newer);
        assert_eq!((ts, node), (8, 3));
        assert!(matches!(kind, EventKind::Telemetry { .. }));
    }
}
