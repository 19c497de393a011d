//! A realistic sample run for tests: 3 nodes, 3 Raft groups, a few terms, a leader kill, a
//! link cut and its heal, 2000 client ops (1000 sends invoked and completed), narration and a
//! verdict. Appended through the real store, with a few out-of-order timestamps as happen when
//! several processes report.

use broker::telemetry::wire::{ElectionPhase, Role};

use crate::checker::AnomalyKind;
use crate::history::{Op, OpKind, OpType};
use crate::timeline::event::{CheckName, EventKind, FaultName, ProcessPhase, Source};
use crate::timeline::store::Timeline;

/// Start of the sample run (an arbitrary wall-clock time in ns).
pub const T0: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn raft(t: &Timeline, ts: u64, node: i32, group: &str, term: u64, role: Role, leader: Option<u64>) {
    let kind = EventKind::Raft {
        group: group.parse().unwrap(),
        term,
        role,
        leader,
        last_log_index: Some(term * 10),
        applied_index: Some(term * 10),
        voted_for: leader,
    };
    t.append(Source::Node(node), ts, kind);
}

fn fault(t: &Timeline, ts: u64, f: FaultName, target: &str, detail: Option<&str>) {
    let kind = EventKind::Fault { fault: f, target: target.into(), detail: detail.map(Into::into) };
    t.append(Source::Lab, ts, kind);
}

fn election(
    t: &Timeline,
    ts: u64,
    node: i32,
    group: &str,
    term: u64,
    phase: ElectionPhase,
    leader: Option<u64>,
) {
    t.append(
        Source::Node(node),
        ts,
        EventKind::Election { group: group.parse().unwrap(), term, phase, leader },
    );
}

/// The run, appended in this order (the store numbers events in append order).
pub fn sample_timeline() -> Timeline {
    let t = Timeline::new();
    start_cluster(&t);
    kill_the_controller_leader(&t);
    cut_and_heal_a_link(&t);
    client_sends(&t);
    check_and_verdict(&t);
    t
}

fn lab(t: &Timeline, ts: u64, k: EventKind) {
    t.append(Source::Lab, ts, k);
}

/// Three nodes start and get ready; initial leaders: controller on 1, t-0 on 2, t-1 on 3.
fn start_cluster(t: &Timeline) {
    lab(t, T0, EventKind::Step { index: 1, description: "Start a 3-node cluster".into() });
    for n in 1..=3 {
        t.append(
            Source::Node(n),
            T0 + 50 * MS * n as u64,
            EventKind::Process { state: ProcessPhase::Started, pid: Some(4000 + n as u32), detail: None },
        );
        t.append(
            Source::Node(n),
            T0 + 400 * MS + n as u64,
            EventKind::Process { state: ProcessPhase::Ready, pid: Some(4000 + n as u32), detail: None },
        );
    }
    for (g, leader) in [("controller", 1), ("t-0", 2), ("t-1", 3)] {
        election(t, T0 + 600 * MS, leader, g, 1, ElectionPhase::Won, Some(leader as u64));
        for n in 1..=3 {
            let role = if n == leader { Role::Leader } else { Role::Follower };
            raft(t, T0 + 610 * MS + n as u64 * MS, n, g, 1, role, Some(leader as u64));
        }
    }
    lab(t, T0 + S, EventKind::Narration { text: "Producers start sending; every value is unique.".into() });
}

/// At 8 s node 1 is killed; node 2 wins term 2 of the controller; node 1 restarts as follower.
fn kill_the_controller_leader(t: &Timeline) {
    lab(
        t,
        T0 + 8 * S,
        EventKind::Step { index: 2, description: "Kill the controller leader (node 1)".into() },
    );
    fault(t, T0 + 8 * S, FaultName::Kill, "node-1", Some("SIGKILL"));
    t.append(
        Source::Node(1),
        T0 + 8 * S + 2 * MS,
        EventKind::Process { state: ProcessPhase::Died, pid: Some(4001), detail: Some("signal 9".into()) },
    );
    election(t, T0 + 8 * S + 900 * MS, 2, "controller", 2, ElectionPhase::Started, None);
    election(t, T0 + 9 * S + 100 * MS, 2, "controller", 2, ElectionPhase::Won, Some(2));
    raft(t, T0 + 9 * S + 101 * MS, 2, "controller", 2, Role::Leader, Some(2));
    lab(
        t,
        T0 + 9 * S + 200 * MS,
        EventKind::Narration { text: "Node 2 won term 2; produce latency spikes, then recovers.".into() },
    );
    t.append(
        Source::Node(1),
        T0 + 11 * S,
        EventKind::Process {
            state: ProcessPhase::Started,
            pid: Some(4101),
            detail: Some("restarted by the lab".into()),
        },
    );
    raft(t, T0 + 11 * S + 500 * MS, 1, "controller", 2, Role::Follower, Some(2));
}

/// At 13 s the 2<->3 link is cut (t-1 moves to node 2), healed at 16 s (t-1 back to node 3).
fn cut_and_heal_a_link(t: &Timeline) {
    lab(
        t,
        T0 + 13 * S,
        EventKind::Step { index: 3, description: "Cut the link between node 2 and node 3".into() },
    );
    fault(t, T0 + 13 * S, FaultName::CutLink, "node-2<->node-3", Some("both directions, \"drop\""));
    election(t, T0 + 14 * S, 2, "t-1", 2, ElectionPhase::Started, None);
    election(t, T0 + 14 * S + 300 * MS, 2, "t-1", 2, ElectionPhase::Won, Some(2));
    raft(t, T0 + 14 * S + 301 * MS, 2, "t-1", 2, Role::Leader, Some(2));
    fault(t, T0 + 16 * S, FaultName::Heal, "node-2<->node-3", None);
    election(t, T0 + 17 * S, 3, "t-1", 3, ElectionPhase::Won, Some(3));
    raft(t, T0 + 17 * S + MS, 3, "t-1", 3, Role::Leader, Some(3));
}

/// 1000 sends by 2 producers over 20 s; during the kill (8.0–9.1 s) acks stall and some end
/// indeterminate (info) or failed.
fn client_sends(t: &Timeline) {
    for i in 0..1000u64 {
        let invoke = T0 + 500 * MS + i * 19 * MS;
        let process = (i % 2) as u32;
        let value = format!("v-{i}");
        let (op_type, latency) = if (8 * S..9100 * MS).contains(&(invoke - T0)) {
            if i % 7 == 0 {
                (OpType::Info, 1500 * MS)
            } else if i % 11 == 0 {
                (OpType::Fail, 30 * MS)
            } else {
                (OpType::Ok, T0 + 9100 * MS + 20 * MS - invoke)
            }
        } else {
            (OpType::Ok, (2 + (i * 7919) % 9) * MS + if i % 97 == 0 { 40 * MS } else { 0 })
        };
        let inv = Op::new(process, OpType::Invoke, OpKind::Send, "t").value(value.clone()).time(invoke);
        t.append(Source::Client(process), invoke, EventKind::Client { op: Op { index: 2 * i, ..inv } });
        let mut done =
            Op::new(process, op_type, OpKind::Send, "t").value(value).time(invoke + latency).latency(latency);
        done.index = 2 * i + 1;
        done = match op_type {
            OpType::Ok => done.at((i % 2) as i32, (i / 2) as i64),
            OpType::Info => done.error("timed out, \"maybe\" written"),
            _ => done.error("NOT_LEADER_OR_FOLLOWER, retriable"),
        };
        // Completions are reported by the client thread slightly later: out-of-order ts.
        t.append(Source::Client(process), invoke + latency, EventKind::Client { op: done });
    }
}

/// The checker's one finding and a passing verdict at the end.
fn check_and_verdict(t: &Timeline) {
    lab(
        t,
        T0 + 20 * S,
        EventKind::Check {
            anomaly: CheckName::Live(AnomalyKind::Duplicate),
            detail: "v-421 read at offsets 210 and 214 (a retried send written twice)".into(),
        },
    );
    lab(
        t,
        T0 + 20 * S + MS,
        EventKind::Verdict {
            ok: true,
            summary: "no lost writes; 1 duplicated write, which this drill allows".into(),
        },
    );
}
