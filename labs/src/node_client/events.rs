//! Following a node's `GET /events` server-sent event stream, reconnecting while it is down.
//!
//! Each `telemetry` event is read into the type the node writes it from
//! ([`broker::telemetry::Event`], decision 37), so no caller looks a key up in raw JSON.

use std::net::SocketAddr;
use std::time::Duration;

use broker::telemetry::Event;
use tokio_util::sync::CancellationToken;

use super::sse::{SseEvent, SseParser};

/// Reconnect pace while a node is down or restarting: quick enough to catch a restart's first
/// events, slow enough not to spin.
const RECONNECT_EVERY: Duration = Duration::from_millis(200);

/// One `telemetry` event from a node.
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// Read into the type the node wrote it from.
    Typed(Event),
    /// JSON this lab cannot read as an [`Event`]: a newer node's, or the `{"error": ...}` a node
    /// sends for an event it failed to serialize. Kept as it came, so the timeline still shows it.
    Unread(serde_json::Value),
}

/// Calls `on_event` with every telemetry event the node streams, until `cancel` fires.
/// Reconnects when the node goes away; `on_gap` is told when the stream was lost (events may
/// be missing).
pub async fn follow(
    addr: SocketAddr,
    cancel: CancellationToken,
    mut on_event: impl FnMut(NodeEvent) + Send,
    mut on_gap: impl FnMut(String) + Send,
) {
    let mut reader = Reader::new(addr);
    loop {
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = reader.stream_once(&mut on_event) => r,
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

/// One node's stream, with a count of the unreadable events met on it across reconnects.
struct Reader {
    addr: SocketAddr,
    /// `telemetry` data that was not JSON at all: skipped.
    not_json: u64,
    /// JSON that was not an [`Event`]: passed on as [`NodeEvent::Unread`].
    not_event: u64,
}

impl Reader {
    fn new(addr: SocketAddr) -> Reader {
        Reader { addr, not_json: 0, not_event: 0 }
    }

    /// One connection, until it fails or the node ends it. Always an `Err` (a gap): the node
    /// streams only what happens while a reader is connected.
    async fn stream_once(&mut self, on_event: &mut (impl FnMut(NodeEvent) + Send)) -> Result<(), String> {
        let addr = self.addr;
        // The shared client has no overall timeout, which a stream that never ends needs.
        let mut response = super::CLIENT
            .get(format!("http://{addr}/events"))
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("GET /events on {addr} answered {}", response.status()));
        }
        // reqwest has already undone the chunked transfer encoding: chunks are body bytes,
        // cut wherever the network cut them, which the parser copes with.
        let mut parser = SseParser::default();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("read: {e}"))? {
            for event in parser.feed(&chunk) {
                self.deliver(event, on_event)?;
            }
        }
        Err(format!("stream from {addr} ended"))
    }

    /// Hands one SSE event on. `lagged` (the node dropped events for this slow reader) ends the
    /// connection as a lost one does, so the caller hears of the gap through `on_gap`.
    fn deliver(&mut self, event: SseEvent, on_event: &mut impl FnMut(NodeEvent)) -> Result<(), String> {
        match event.name.as_str() {
            "telemetry" => {
                if let Some(event) = self.read(&event.data) {
                    on_event(event);
                }
                Ok(())
            }
            "lagged" => Err(format!("the node dropped {} events for this slow reader", event.data.trim())),
            // The node sends no other name; a newer node's others mean nothing to this lab.
            _ => Ok(()),
        }
    }

    /// A `telemetry` event's data as the node's [`Event`]. JSON that is not one is kept as it
    /// came; what is not JSON at all is skipped: one bad event must not end the stream.
    fn read(&mut self, data: &str) -> Option<NodeEvent> {
        let not_event = match serde_json::from_str(data) {
            Ok(event) => return Some(NodeEvent::Typed(event)),
            Err(e) => e,
        };
        let addr = self.addr;
        match serde_json::from_str(data) {
            Ok(value) => {
                self.not_event += 1;
                if worth_logging(self.not_event) {
                    tracing::warn!(%addr, count = self.not_event, error = %not_event,
                        "telemetry event this lab cannot read; kept as it came");
                }
                Some(NodeEvent::Unread(value))
            }
            Err(error) => {
                self.not_json += 1;
                if worth_logging(self.not_json) {
                    tracing::warn!(%addr, count = self.not_json, %error, "telemetry event is not JSON; skipped");
                }
                None
            }
        }
    }
}

/// Logs the 1st, 2nd, 4th, 8th… of a kind only: a node sending nothing else must not flood the
/// log, and the count still shows how many there were.
fn worth_logging(count: u64) -> bool {
    count.is_power_of_two()
}

/// Maps one node telemetry event onto the timeline: (timestamp, node id, kind). Types the lab
/// draws get their own kinds; the rest is kept verbatim, as is an event this lab could not read
/// (its time and node taken from the JSON if there, else now and -1).
pub fn to_timeline(event: NodeEvent) -> (u64, i32, crate::timeline::EventKind) {
    use broker::telemetry::EventKind as Node;

    use crate::timeline::EventKind;
    let event = match event {
        NodeEvent::Typed(event) => event,
        NodeEvent::Unread(v) => {
            let ts = v["ts_ns"].as_u64().unwrap_or_else(crate::history::now_ns);
            let node = v["node_id"].as_i64().unwrap_or(-1) as i32;
            return (ts, node, EventKind::Telemetry { data: v });
        }
    };
    let (ts, node) = (event.ts_ns, event.node_id);
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
        other => EventKind::Telemetry { data: verbatim(&Event { kind: other, ..event }) },
    };
    (ts, node, kind)
}

/// The event as the node wrote it: `Event` writes back exactly what it read (the round trip in
/// `typed.rs` checks that against real nodes), so the timeline keeps the JSON it kept before.
fn verbatim(event: &Event) -> serde_json::Value {
    // Writing to a `Value` fails only on a map key that cannot be a string: say so, not panic.
    serde_json::to_value(event).unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use broker::telemetry::wire::Role;

    use super::*;
    use crate::timeline::EventKind;

    fn reader() -> Reader {
        Reader::new(SocketAddr::from(([127, 0, 0, 1], 9)))
    }

    /// `raw` as the follower reads it off the stream, then onto the timeline.
    fn timeline_of(raw: &serde_json::Value) -> (u64, i32, EventKind) {
        to_timeline(reader().read(&raw.to_string()).expect("JSON is never skipped"))
    }

    #[test]
    fn raft_and_offsets_events_map_to_their_kinds() {
        let raft = serde_json::json!({"seq":1,"ts_ns":5,"node_id":2,"type":"raft","group":"t-0","term":7,
            "role":"Leader","leader":2,"last_log_index":9,"applied_index":9,"voted_for":2,"vote_committed":true,
            "matched":{"1":9,"2":9,"3":null},"voters":[1,2,3]});
        let (ts, node, kind) = timeline_of(&raft);
        assert_eq!((ts, node), (5, 2));
        assert!(
            matches!(kind, EventKind::Raft { term: 7, leader: Some(2), role: Role::Leader, .. }),
            "{kind:?}"
        );
        let off = serde_json::json!({"seq":2,"ts_ns":6,"node_id":1,"type":"partition_offsets","topic":"t","partition":0,
            "offsets":{"log_start_offset":0,"log_end_offset":10,"flushed_offset":8,"high_watermark":8,
                       "appended_at_ns":5,"flushed_at_ns":4}});
        assert!(matches!(
            timeline_of(&off).2,
            EventKind::Offsets { log_end_offset: 10, flushed_offset: 8, .. }
        ));
        // Any other type is kept as the node wrote it.
        let other = serde_json::json!({"seq":3,"ts_ns":7,"node_id":1,"type":"warning","message":"x"});
        assert!(matches!(timeline_of(&other), (7, 1, EventKind::Telemetry { data }) if data == other));
        // A newer node's event this lab cannot read is kept as it came, with its time and node.
        let newer =
            serde_json::json!({"seq":4,"ts_ns":8,"node_id":3,"type":"raft","group":"t-0","role":"Observer"});
        assert!(matches!(reader().read(&newer.to_string()), Some(NodeEvent::Unread(_))));
        assert!(matches!(timeline_of(&newer), (8, 3, EventKind::Telemetry { data }) if data == newer));
    }

    #[test]
    fn data_that_is_not_json_is_skipped_and_counted() {
        let mut reader = reader();
        assert!(reader.read("{\"seq\":").is_none());
        assert!(reader.read("not json").is_none());
        assert!(matches!(reader.read("{\"error\":\"x\"}"), Some(NodeEvent::Unread(_))));
        assert_eq!((reader.not_json, reader.not_event), (2, 1));
    }

    #[test]
    fn lagged_ends_the_connection_with_the_count_and_other_names_are_ignored() {
        let mut seen = Vec::new();
        let mut on_event = |e: NodeEvent| seen.push(e);
        let mut reader = reader();
        let sse = |name: &str, data: &str| SseEvent { name: name.into(), data: data.into() };
        assert_eq!(reader.deliver(sse("other", "{}"), &mut on_event), Ok(()));
        assert_eq!(reader.deliver(sse("telemetry", "garbage"), &mut on_event), Ok(()));
        assert_eq!(
            reader.deliver(sse("lagged", "12"), &mut on_event),
            Err("the node dropped 12 events for this slow reader".to_string())
        );
        assert!(seen.is_empty(), "{seen:?}");
    }

    /// What an axum `/events` like the broker's sends on each connection (0, 1, …): the events
    /// listed, then nothing more while the connection stays open.
    async fn serve_events(script: Vec<Vec<(&'static str, String)>>) -> SocketAddr {
        use axum::response::sse::{Event as SseOut, KeepAlive, Sse};
        let connections = Arc::new(AtomicUsize::new(0));
        let route = move || {
            let n = connections.fetch_add(1, Ordering::SeqCst);
            let events = script.get(n).cloned().unwrap_or_default();
            let events = events.into_iter().map(|(name, data)| {
                Ok::<_, std::convert::Infallible>(SseOut::default().event(name).data(data))
            });
            let stream = futures::StreamExt::chain(futures::stream::iter(events), futures::stream::pending());
            async move { Sse::new(stream).keep_alive(KeepAlive::default()) }
        };
        let app = axum::Router::new().route("/events", axum::routing::get(route));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    fn warning(seq: u64, message: &str) -> String {
        let kind = broker::telemetry::EventKind::Warning { message: message.into() };
        serde_json::to_string(&Event { seq, ts_ns: 10 + seq, node_id: 2, kind }).unwrap()
    }

    /// Over real HTTP: typed events arrive, a bad one does not stop the stream, `lagged` is a gap
    /// and the follower reconnects for the events after it.
    #[tokio::test]
    async fn follow_reads_events_through_a_bad_one_and_reconnects_after_lagged() {
        let addr = serve_events(vec![
            vec![
                ("telemetry", warning(0, "first")),
                ("telemetry", "not json".into()),
                ("telemetry", "{\"error\":\"x\"}".into()),
                ("lagged", "5".into()),
                ("telemetry", warning(1, "after lagged, never read")),
            ],
            vec![("telemetry", warning(2, "reconnected"))],
        ])
        .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let gaps = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancellationToken::new();
        let gaps_seen = Arc::clone(&gaps);
        let follower = tokio::spawn(follow(
            addr,
            cancel.clone(),
            move |e| drop(tx.send(e)),
            move |reason| gaps_seen.lock().unwrap().push(reason),
        ));
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            seen.push(next.expect("events within 10 s").expect("the follower runs until cancelled"));
        }
        cancel.cancel();
        follower.await.unwrap();
        let described: Vec<String> = seen
            .iter()
            .map(|e| match e {
                NodeEvent::Typed(Event {
                    seq,
                    kind: broker::telemetry::EventKind::Warning { message },
                    ..
                }) => {
                    format!("{seq} {message}")
                }
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(described, ["0 first", "Unread(Object {\"error\": String(\"x\")})", "2 reconnected"]);
        assert_eq!(*gaps.lock().unwrap(), ["the node dropped 5 events for this slow reader"]);
    }
}
