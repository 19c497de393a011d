//! The in-memory timeline of a run: every event, in append order, shared by all recorders.
//!
//! Recorders (node telemetry readers, the workload, the fault injector) call `append` from many
//! threads; exports take a `snapshot`; live viewers poll `since` or `subscribe` to a broadcast.
//! The store itself never drops an event below its memory limit; the broadcast is best-effort
//! (a slow viewer sees `RecvError::Lagged` and can catch up with `since`).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::event::{EventKind, Source, TimelineEvent};

/// Events per storage chunk. Chunks are never reallocated once full, so a run with millions of
/// events never copies the whole log while holding the lock (a single `Vec` would, on growth).
const CHUNK: usize = 64 * 1024;

/// Default cap on stored events (a few million events is a few hundred MB at most).
pub const DEFAULT_MAX_EVENTS: usize = 5_000_000;

/// How many events the broadcast ring keeps for slow viewers before they lag.
const BROADCAST_CAPACITY: usize = 16 * 1024;

/// The run's timeline. Share it as `Arc<Timeline>`; every method takes `&self`.
#[derive(Debug)]
pub struct Timeline {
    inner: Mutex<Inner>,
    tx: broadcast::Sender<Arc<TimelineEvent>>,
    max_events: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// Full chunks of `CHUNK` events, then one partly filled chunk, in seq order.
    chunks: Vec<Vec<TimelineEvent>>,
    len: usize,
    next_seq: u64,
    /// Bulk events (telemetry, logs, resources, offsets) not stored because the cap was reached.
    dropped: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::with_max_events(DEFAULT_MAX_EVENTS)
    }
}

impl Timeline {
    pub fn new() -> Timeline {
        Timeline::default()
    }

    /// A timeline that stores at most `max_events` bulk events. Past the cap, only bulk kinds
    /// (telemetry, logs, resources, offsets) are dropped and counted; faults, Raft state,
    /// elections, client ops, steps, narration, checks and verdicts are always kept, because
    /// the checker and the reports depend on them being complete.
    pub fn with_max_events(max_events: usize) -> Timeline {
        let (tx, _) = broadcast::channel(BROADCAST_CAPACITY);
        Timeline { inner: Mutex::new(Inner::default()), tx, max_events }
    }

    /// A timeline holding previously exported events (e.g. from `read_jsonl`) for replay.
    /// Events are ordered by their seq; new appends continue after the highest one.
    pub fn from_events(mut events: Vec<TimelineEvent>) -> Timeline {
        events.sort_by_key(|e| e.seq);
        let t = Timeline::with_max_events(DEFAULT_MAX_EVENTS.max(events.len()));
        {
            let mut inner = t.lock();
            inner.next_seq = events.last().map_or(0, |e| e.seq + 1);
            for e in events {
                inner.push(e);
            }
        }
        t
    }

    /// Record one event and return its seq. Seqs are strictly increasing in append order;
    /// `ts_ns` is kept as given, so timestamps from different processes may be out of order.
    pub fn append(&self, source: Source, ts_ns: u64, kind: EventKind) -> u64 {
        let mut inner = self.lock();
        let seq = inner.next_seq;
        inner.next_seq += 1;
        let event = TimelineEvent { seq, ts_ns, source, kind };
        // Send under the lock so viewers receive events in seq order; skip the Arc when nobody
        // listens (the common case in batch runs).
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(event.clone()));
        }
        if inner.len >= self.max_events && is_bulk(&event.kind) {
            inner.dropped += 1;
        } else {
            inner.push(event);
        }
        seq
    }

    /// The seq the next appended event will get.
    pub fn next_seq(&self) -> u64 {
        self.lock().next_seq
    }

    /// All stored events, in append (seq) order.
    pub fn snapshot(&self) -> Vec<TimelineEvent> {
        let inner = self.lock();
        let mut out = Vec::with_capacity(inner.len);
        for c in &inner.chunks {
            out.extend_from_slice(c);
        }
        out
    }

    /// Stored events with seq strictly greater than `seq` (pass the last seq a viewer has seen;
    /// pass `None` for everything).
    pub fn since(&self, seq: Option<u64>) -> Vec<TimelineEvent> {
        let Some(seq) = seq else { return self.snapshot() };
        let inner = self.lock();
        // Chunks are in seq order: find the first chunk whose last event is past `seq`.
        let first = inner.chunks.partition_point(|c| c.last().is_some_and(|e| e.seq <= seq));
        let mut out = Vec::new();
        for (i, c) in inner.chunks[first..].iter().enumerate() {
            if i == 0 {
                let start = c.partition_point(|e| e.seq <= seq);
                out.extend_from_slice(&c[start..]);
            } else {
                out.extend_from_slice(c);
            }
        }
        out
    }

    /// All stored events in time order (ties and equal timestamps keep seq order).
    pub fn sorted_by_time(&self) -> Vec<TimelineEvent> {
        let mut v = self.snapshot();
        sort_by_time(&mut v);
        v
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bulk events not stored because the memory cap was reached.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Live feed of new events (including any later dropped from storage). Best-effort: a
    /// receiver more than `BROADCAST_CAPACITY` events behind gets `Lagged` and should resync
    /// with `since`.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<TimelineEvent>> {
        self.tx.subscribe()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic in another recorder must not make the whole timeline unreadable: the data
        // is append-only, so it is consistent even if a holder panicked.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn push(&mut self, event: TimelineEvent) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < CHUNK => c.push(event),
            _ => {
                let mut c = Vec::with_capacity(CHUNK);
                c.push(event);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }
}

/// Kinds that may be dropped under memory pressure: high-volume and not needed by checkers.
/// Resource samples are kept: a few per second for the whole lab, and a soak's report of each
/// node's memory over the run needs its end (dropped, a 30-minute soak's summary covered only its
/// first 973 s).
fn is_bulk(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Telemetry { .. }
            | EventKind::RaftTrace { .. }
            | EventKind::Log { .. }
            | EventKind::Offsets { .. }
    )
}

/// Sort events by timestamp, keeping seq order for equal timestamps (what time-ordered exports
/// need when clocks of several processes interleave).
pub fn sort_by_time(events: &mut [TimelineEvent]) {
    events.sort_by_key(|e| (e.ts_ns, e.seq));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn log(i: u64) -> EventKind {
        EventKind::Log { stream: "stdout".into(), line: format!("line {i}") }
    }

    #[test]
    fn four_threads_append_a_million_events_without_loss() {
        let t = Arc::new(Timeline::new());
        let handles: Vec<_> = (0..4u32)
            .map(|th| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    (0..250_000u64).map(|i| t.append(Source::Client(th), i, log(i))).collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 1_000_000);
        let all = t.snapshot();
        assert_eq!((t.len(), all.len(), t.dropped()), (1_000_000, 1_000_000, 0));
        assert!(all.windows(2).all(|w| w[0].seq + 1 == w[1].seq), "snapshot in seq order, no gaps");
        // Every thread's events are all there, in its own order.
        for th in 0..4 {
            let mine: Vec<u64> =
                all.iter().filter(|e| e.source == Source::Client(th)).map(|e| e.ts_ns).collect();
            assert_eq!(mine, (0..250_000).collect::<Vec<u64>>());
        }
    }

    #[test]
    fn since_sorted_and_subscribe() {
        let t = Timeline::new();
        let mut rx = t.subscribe();
        for (i, ts) in [30u64, 10, 20, 10].into_iter().enumerate() {
            assert_eq!(t.append(Source::Lab, ts, log(i as u64)), i as u64);
        }
        let order: Vec<u64> = t.sorted_by_time().iter().map(|e| e.seq).collect();
        assert_eq!(order, [1, 3, 2, 0], "time order, ties in seq order");
        assert_eq!(t.since(Some(1)).iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(t.since(None).len(), 4);
        assert!(t.since(Some(3)).is_empty());
        for i in 0..4 {
            assert_eq!(rx.try_recv().unwrap().seq, i);
        }
    }

    #[test]
    fn since_across_chunks() {
        let t = Timeline::new();
        for i in 0..(CHUNK as u64 * 2 + 10) {
            t.append(Source::Lab, i, log(i));
        }
        let tail = t.since(Some(CHUNK as u64 - 3));
        assert_eq!(tail.len(), CHUNK + 12);
        assert_eq!(tail[0].seq, CHUNK as u64 - 2);
    }

    #[test]
    fn cap_drops_only_bulk_events() {
        let t = Timeline::with_max_events(5);
        for i in 0..10 {
            t.append(Source::Node(1), i, log(i));
        }
        t.append(Source::Lab, 11, EventKind::Narration { text: "kept".into() });
        let sample =
            EventKind::Resources { cpu_percent: 1.0, memory_bytes: 1, disk_bytes: 1, node_memory: None };
        t.append(Source::Node(1), 12, sample);
        assert_eq!((t.len(), t.dropped()), (7, 5), "narration and resource samples are kept past the cap");
        let replay = Timeline::from_events(t.snapshot());
        assert_eq!(replay.snapshot(), t.snapshot());
        assert_eq!(replay.append(Source::Lab, 13, log(13)), 12);
    }
}
