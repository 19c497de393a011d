//! Chrome trace JSON (`{"traceEvents":[...]}`), loadable by ui.perfetto.dev and chrome://tracing.
//!
//! Layout: pid 0 is the lab (faults, steps, narration, checks), each broker node is a process
//! (pid = node id) with one thread per Raft group carrying its leadership slices (one "X" slice
//! per term it led), and the clients are one more process with produce/consume rate counters.
//! Timestamps are microseconds since the first event.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde_json::{json, Value};

use crate::error::LabError;
use crate::history::{Op, OpKind, OpType};
use crate::timeline::event::{EventKind, Source, TimelineEvent};

use super::{io_err, leader_spans, origin_ns, raft_groups, time_ordered, LeaderSpan};

const LAB_PID: i64 = 0;
/// All clients share one trace process; far above any node id so they never collide.
const CLIENTS_PID: i64 = 100_000;
/// Lab threads.
const TID_FAULTS: i64 = 0;
const TID_STEPS: i64 = 1;
const TID_CHECKS: i64 = 2;
/// On a node, tid 0 carries process state and log lines; Raft group i is tid i + 1.
const TID_NODE: i64 = 0;

/// The trace pid of a node. Node ids are positive in practice; map others (e.g. -1, "unknown")
/// above the clients so they cannot land on the lab's pid 0.
fn node_pid(n: i32) -> i64 {
    if n > 0 {
        n as i64
    } else {
        CLIENTS_PID + 1 + n.unsigned_abs() as i64
    }
}

fn pid_of(s: &Source) -> i64 {
    match s {
        Source::Lab => LAB_PID,
        Source::Node(n) => node_pid(*n),
        Source::Client(_) => CLIENTS_PID,
    }
}

/// Write the trace for `events` (any order).
pub fn write_perfetto(events: &[TimelineEvent], out: &mut impl Write) -> Result<(), LabError> {
    let layout = Layout { t0: origin_ns(events), groups: raft_groups(events) };
    let mut w = TraceWriter { out, first: true };
    w.begin()?;
    let spans = leader_spans(events);
    name_tracks(&mut w, events, &layout, &spans)?;
    // Leadership: one complete slice per (group, term) on the leader's group thread.
    for s in &spans {
        let ts = layout.us(s.start_ns);
        w.event(json!({"name": format!("term {}", s.term), "cat": "raft", "ph": "X", "ts": ts,
            "dur": layout.us(s.end_ns) - ts, "pid": node_pid(s.node as i32), "tid": layout.tid_of_group(&s.group),
            "args": {"group": s.group, "term": s.term, "leader": s.node}}))?;
    }
    let mut rates = Rates::default();
    for e in time_ordered(events) {
        if let Some(ev) = trace_event(e, &layout, &mut rates) {
            w.event(ev)?;
        }
    }
    rates.write(&mut w)?;
    w.end()
}

/// Where events land on the trace's time axis and threads.
struct Layout {
    t0: u64,
    /// Sorted: Raft group i is thread i + 1 on every node.
    groups: Vec<String>,
}

impl Layout {
    /// Microseconds since the first event.
    fn us(&self, ts: u64) -> f64 {
        (ts.saturating_sub(self.t0)) as f64 / 1000.0
    }

    fn tid_of_group(&self, g: &str) -> i64 {
        self.groups.binary_search_by(|x| x.as_str().cmp(g)).map_or(TID_NODE, |i| i as i64 + 1)
    }
}

/// Name every process and thread that will appear, so the UI shows "node 2 / t-0" not pids.
fn name_tracks<W: Write>(
    w: &mut TraceWriter<'_, W>,
    events: &[TimelineEvent],
    layout: &Layout,
    spans: &[LeaderSpan],
) -> Result<(), LabError> {
    let mut nodes: BTreeSet<i32> =
        events.iter().filter_map(|e| if let Source::Node(n) = e.source { Some(n) } else { None }).collect();
    nodes.extend(spans.iter().map(|s| s.node as i32));
    w.meta("process_name", LAB_PID, None, "lab")?;
    for (tid, name) in [(TID_FAULTS, "faults"), (TID_STEPS, "steps & narration"), (TID_CHECKS, "checks")] {
        w.meta("thread_name", LAB_PID, Some(tid), name)?;
    }
    for n in &nodes {
        w.meta("process_name", node_pid(*n), None, &format!("node {n}"))?;
        w.meta("thread_name", node_pid(*n), Some(TID_NODE), "process & logs")?;
        for (i, g) in layout.groups.iter().enumerate() {
            w.meta("thread_name", node_pid(*n), Some(i as i64 + 1), &format!("raft {g}"))?;
        }
    }
    let clients: BTreeSet<u32> =
        events.iter().filter_map(|e| if let Source::Client(c) = e.source { Some(c) } else { None }).collect();
    if !clients.is_empty() {
        w.meta("process_name", CLIENTS_PID, None, "clients")?;
        for c in &clients {
            w.meta("thread_name", CLIENTS_PID, Some(*c as i64 + 1), &format!("client {c}"))?;
        }
    }
    Ok(())
}

/// The trace event of one timeline event, if it has one: an instant on its track, a counter
/// sample, or for a client op its count in `rates` (and an instant when it failed).
fn trace_event(e: &TimelineEvent, layout: &Layout, rates: &mut Rates) -> Option<Value> {
    let pid = pid_of(&e.source);
    let ts = layout.us(e.ts_ns);
    match mark(&e.kind, layout) {
        Mark::Instant { scope, tid, cat, args } => Some(json!({
            "name": e.label(),
            "cat": cat,
            "ph": "i",
            "s": scope,
            "ts": ts,
            "pid": pid,
            "tid": tid,
            "args": args
        })),
        Mark::Counter { name, args } => {
            Some(json!({"name": name, "ph": "C", "ts": ts, "pid": pid, "args": args}))
        }
        Mark::Op(op) => {
            rates.count(op, e.ts_ns.saturating_sub(layout.t0) / 1_000_000_000);
            failed_op(op, ts)
        }
        Mark::Nothing => None,
    }
}

/// Where one kind of timeline event shows in the trace.
enum Mark<'a> {
    /// An instant of scope `g` (global), `p` (process) or `t` (thread) on thread `tid`.
    Instant {
        scope: &'static str,
        tid: i64,
        cat: &'static str,
        args: Value,
    },
    /// A sample of the counter `name`.
    Counter {
        name: String,
        args: Value,
    },
    /// A client op: counted in the rates.
    Op(&'a Op),
    Nothing,
}

/// The trace's table of event kinds: which track, scope and category each one takes, and its
/// args.
fn mark<'a>(kind: &'a EventKind, layout: &Layout) -> Mark<'a> {
    let instant = |scope, tid, cat, args| Mark::Instant { scope, tid, cat, args };
    match kind {
        EventKind::Fault { fault, target, detail } => {
            instant("g", TID_FAULTS, "fault", json!({"fault": fault, "target": target, "detail": detail}))
        }
        EventKind::Election { group, term, phase, leader } => instant(
            "t",
            layout.tid_of_group(&group.to_string()),
            "election",
            json!({"group": group, "term": term, "phase": phase, "leader": leader}),
        ),
        EventKind::Process { state, pid: os_pid, detail } => {
            instant("p", TID_NODE, "process", json!({"state": state, "os_pid": os_pid, "detail": detail}))
        }
        EventKind::Log { stream, line } => {
            instant("t", TID_NODE, "log", json!({"stream": stream, "line": line}))
        }
        EventKind::Step { index, description } => {
            instant("g", TID_STEPS, "step", json!({"index": index, "description": description}))
        }
        EventKind::Narration { text } => instant("t", TID_STEPS, "narration", json!({"text": text})),
        EventKind::Check { anomaly, detail } => {
            instant("p", TID_CHECKS, "check", json!({"anomaly": anomaly, "detail": detail}))
        }
        EventKind::Verdict { ok, summary } => {
            instant("g", TID_CHECKS, "verdict", json!({"ok": ok, "summary": summary}))
        }
        EventKind::Resources { cpu_percent, memory_bytes, disk_bytes, .. } => Mark::Counter {
            name: "resources".into(),
            args: json!({"cpu %": cpu_percent, "memory MB": *memory_bytes as f64 / 1e6,
                "disk MB": *disk_bytes as f64 / 1e6}),
        },
        EventKind::Offsets { topic, partition, log_end_offset, high_watermark, .. } => Mark::Counter {
            name: format!("{topic}-{partition} offsets"),
            args: json!({"log end": log_end_offset, "high watermark": high_watermark}),
        },
        EventKind::Client { op } => Mark::Op(op),
        // Raft state is shown as leadership slices; opaque telemetry is left to JSON Lines.
        EventKind::Raft { .. } | EventKind::RaftTrace { .. } | EventKind::Telemetry { .. } => Mark::Nothing,
    }
}

/// Failed and indeterminate ops are rare and interesting: an instant for each one.
fn failed_op(op: &Op, ts: f64) -> Option<Value> {
    match op.op_type {
        OpType::Fail | OpType::Info => {
            Some(json!({"name": format!("{:?} {:?}", op.kind, op.op_type).to_lowercase(),
        "cat": "client", "ph": "i", "s": "t", "ts": ts, "pid": CLIENTS_PID, "tid": op.process as i64 + 1,
        "args": {"value": op.value, "error": op.error, "index": op.index}}))
        }
        _ => None,
    }
}

/// Per-second client rates, counted at completion time.
#[derive(Default)]
struct Rates {
    acked: BTreeMap<u64, u64>,
    polled: BTreeMap<u64, u64>,
}

impl Rates {
    fn count(&mut self, op: &Op, sec: u64) {
        match (op.kind, op.op_type) {
            (OpKind::Send, OpType::Ok) => *self.acked.entry(sec).or_default() += 1,
            (OpKind::Poll, OpType::Ok) => *self.polled.entry(sec).or_default() += 1,
            _ => {}
        }
    }

    /// One counter per rate, a sample every second from its first to one past its last, zeros
    /// included, so the counter drops to 0 during an outage.
    fn write<W: Write>(&self, w: &mut TraceWriter<'_, W>) -> Result<(), LabError> {
        for (name, counts) in
            [("produce rate (acked/s)", &self.acked), ("consume rate (polled/s)", &self.polled)]
        {
            let (Some(first), Some(last)) = (counts.keys().next(), counts.keys().last()) else { continue };
            for sec in *first..=*last + 1 {
                let n = counts.get(&sec).copied().unwrap_or(0);
                w.event(json!({
                    "name": name,
                    "ph": "C",
                    "ts": (sec * 1_000_000) as f64,
                    "pid": CLIENTS_PID,
                    "args": {"ops": n}
                }))?;
            }
        }
        Ok(())
    }
}

/// Streams the array so a million-event trace is never held as one `Value`.
struct TraceWriter<'a, W: Write> {
    out: &'a mut W,
    first: bool,
}

impl<W: Write> TraceWriter<'_, W> {
    fn begin(&mut self) -> Result<(), LabError> {
        self.out
            .write_all(b"{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n")
            .map_err(io_err("writing trace"))
    }

    fn event(&mut self, v: Value) -> Result<(), LabError> {
        if !self.first {
            self.out.write_all(b",\n").map_err(io_err("writing trace"))?;
        }
        self.first = false;
        serde_json::to_writer(&mut *self.out, &v)
            .map_err(|source| LabError::Json { what: "writing trace".into(), source })
    }

    fn meta(&mut self, kind: &str, pid: i64, tid: Option<i64>, name: &str) -> Result<(), LabError> {
        let mut v = json!({"name": kind, "ph": "M", "pid": pid, "args": {"name": name}});
        if let Some(tid) = tid {
            v["tid"] = json!(tid);
        }
        self.event(v)
    }

    fn end(&mut self) -> Result<(), LabError> {
        self.out.write_all(b"\n]}\n").map_err(io_err("writing trace"))
    }
}
