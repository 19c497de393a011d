//! Message-sequence (Lamport) diagrams of the watched Raft group for the HTML report: one per
//! election the nodes recorded, from just before the campaign. One lane per node (time flows
//! down), an arrow per message from its sending to its arrival time, lost ones ending in a
//! cross, campaigns and truncations on their lane. The UI draws the same picture live
//! (`ui/src/state/sequence_svg.ts`); this one is for a run that is over.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use broker::raft::trace::{Outcome, TraceEvent, TraceKind};
use broker::telemetry::wire::GroupId;

use super::esc;
use crate::timeline::event::{EventKind, TimelineEvent};

/// Diagram window: from this long before a campaign...
const BEFORE_NS: u64 = 100_000_000;
/// ...to this long after it (an election on loopback takes well under this).
const AFTER_NS: u64 = 700_000_000;
const LANE_GAP: u64 = 200;
const LEFT: u64 = 120;
const TOP: u64 = 50;
const HEIGHT: u64 = 520;

/// One message between two nodes, as its sender recorded it.
struct Message {
    kind: &'static str,
    from: i32,
    to: i32,
    sent: u64,
    arrive: u64,
    lost: bool,
    label: String,
    colour: &'static str,
}

/// A decision drawn on its node's lane.
struct Mark {
    ts: u64,
    node: i32,
    text: String,
}

#[derive(Default)]
struct Recorded {
    group: Option<GroupId>,
    nodes: BTreeSet<i32>,
    messages: Vec<Message>,
    marks: Vec<Mark>,
    /// Campaign decisions: (ts, node).
    campaigns: Vec<(u64, i32)>,
}

fn recorded(events: &[TimelineEvent]) -> Recorded {
    let mut r = Recorded::default();
    for e in events {
        let EventKind::RaftTrace { group, nodes } = &e.kind else { continue };
        if group.is_some() {
            r.group = group.clone();
        }
        for n in nodes {
            r.nodes.insert(n.node);
            for v in &n.events {
                if v.group.is_some() && v.group != *group {
                    continue;
                }
                absorb(&mut r, n.node, v);
            }
        }
    }
    r.campaigns.sort_unstable();
    r
}

fn absorb(r: &mut Recorded, node: i32, v: &TraceEvent) {
    let ts = v.ts_ns;
    let rtt_us = match &v.kind {
        TraceKind::Vote { rtt_us, .. }
        | TraceKind::Append { rtt_us, .. }
        | TraceKind::LeaderQuery { rtt_us, .. } => *rtt_us,
        _ => 0,
    };
    let half = rtt_us * 1000 / 2;
    let lost = matches!(
        v.kind.outcome(),
        Some(Outcome::Unreachable { .. } | Outcome::Timeout | Outcome::Error { .. })
    );
    let (kind, label, colour, reply) = match &v.kind {
        TraceKind::Vote { term, outcome, .. } => {
            let reply =
                if *outcome == Outcome::Ok { ("✓ granted", "#2a8a2a") } else { ("✗ refused", "#c0392b") };
            ("vote", format!("vote t{term}"), "#b7791f", Some(reply))
        }
        TraceKind::Append { entries, .. } => {
            let label = entries.map(|(a, b)| format!("entries {a}–{b}")).unwrap_or_default();
            ("append", label, "#2b6cb0", Some(("", "#63a4e0")))
        }
        TraceKind::LeaderQuery { .. } => ("prevote", "leader?".to_string(), "#805ad5", Some(("", "#805ad5"))),
        TraceKind::Campaign { candidate, .. } => {
            let candidate = *candidate as i32;
            r.campaigns.push((ts, node));
            let text = if candidate == node { "campaign".to_string() } else { format!("asks n{candidate}") };
            r.marks.push(Mark { ts, node, text });
            return;
        }
        TraceKind::Truncate { from, discarded, .. } => {
            let text = format!("truncated {discarded} from index {from}");
            r.marks.push(Mark { ts, node, text });
            return;
        }
        // Node heartbeats and commits would drown the election in a report.
        TraceKind::NodeHeartbeat { .. } | TraceKind::Commit { .. } => return,
    };
    let Some(to) = v.kind.to().map(|t| t as i32) else { return };
    r.nodes.insert(to);
    r.messages.push(Message { kind, from: node, to, sent: ts, arrive: ts + half, lost, label, colour });
    if let (false, Some((label, colour))) = (lost, reply) {
        let label = label.to_string();
        r.messages.push(Message {
            kind: "reply",
            from: to,
            to: node,
            sent: ts + half,
            arrive: ts + 2 * half,
            lost: false,
            label,
            colour,
        });
    }
}

/// Up to `max` diagrams, one per election (campaigns closer than a window are one election),
/// each with a caption.
pub fn election_diagrams(events: &[TimelineEvent], max: usize) -> Vec<(String, String)> {
    let r = recorded(events);
    let mut out = Vec::new();
    let mut covered_until = 0;
    for &(ts, node) in &r.campaigns {
        if ts < covered_until || out.len() >= max {
            continue;
        }
        let from = ts.saturating_sub(BEFORE_NS);
        let to = ts + AFTER_NS;
        covered_until = to;
        let caption = format!(
            "{}: n{node} campaigns; {} ms from 100 ms before",
            r.group.as_ref().map_or_else(|| "?".to_string(), ToString::to_string),
            (to - from) / 1_000_000
        );
        out.push((caption, svg(&r, from, to)));
    }
    out
}

/// One diagram of the window `from..=to`: time grid, lanes, messages, marks.
fn svg(r: &Recorded, from: u64, to: u64) -> String {
    let f = Frame { nodes: r.nodes.iter().copied().collect(), from, to };
    let width = f.width();
    let height = TOP + HEIGHT + 30;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"sequence\" viewBox=\"0 0 {width} {height}\" \
         width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    time_grid(&mut s, &f);
    lanes(&mut s, &f);
    for m in r.messages.iter().filter(|m| m.arrive > from && m.sent <= to) {
        message(&mut s, &f, m);
    }
    for mark in r.marks.iter().filter(|k| k.ts > from && k.ts <= to) {
        let (x, y) = (f.lane(mark.node), f.y(mark.ts));
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"#b7791f\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            x - 5,
            y - 5.0,
            x - 9,
            y + 4.0,
            esc(&mark.text)
        );
    }
    s.push_str("</svg>");
    s
}

/// Where things go in one diagram: a lane per node, time flowing down from `from` to `to`.
struct Frame {
    nodes: Vec<i32>,
    from: u64,
    to: u64,
}

impl Frame {
    fn lane(&self, n: i32) -> u64 {
        LEFT + LANE_GAP * self.nodes.iter().position(|x| *x == n).unwrap_or(0) as u64
    }

    fn y(&self, ts: u64) -> f64 {
        let span = (self.to - self.from).max(1) as f64;
        TOP as f64 + (ts.clamp(self.from, self.to) - self.from) as f64 / span * HEIGHT as f64
    }

    fn width(&self) -> u64 {
        LEFT * 2 + LANE_GAP * (self.nodes.len().max(2) as u64 - 1)
    }
}

/// Eight horizontal lines, labelled in ms since the window's start.
fn time_grid(s: &mut String, f: &Frame) {
    for step in 0..=7u64 {
        let ts = f.from + (f.to - f.from) * step / 7;
        let _ = write!(
            s,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{:.1}\" fill=\"#888\" text-anchor=\"end\">+{} ms</text>",
            LEFT - 60,
            f.width() - 20,
            LEFT - 64,
            f.y(ts) + 4.0,
            (ts - f.from) / 1_000_000,
            y = f.y(ts)
        );
    }
}

/// Each node's vertical lane with its name on top.
fn lanes(s: &mut String, f: &Frame) {
    for &n in &f.nodes {
        let x = f.lane(n);
        let _ = write!(
            s,
            "<line class=\"lane\" data-node=\"{n}\" x1=\"{x}\" x2=\"{x}\" y1=\"{TOP}\" y2=\"{}\" \
             stroke=\"#555\" stroke-width=\"2\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" font-size=\"14\" \
             font-weight=\"bold\">n{n}</text>",
            TOP + HEIGHT,
            TOP - 14
        );
    }
}

/// An arrow from sender to receiver; a lost one stops halfway at a cross.
fn message(s: &mut String, f: &Frame, m: &Message) {
    let (x1, x2, y1, y2) = (f.lane(m.from) as f64, f.lane(m.to) as f64, f.y(m.sent), f.y(m.arrive));
    let (ex, ey) = if m.lost { ((x1 + x2) / 2.0, (y1 + y2) / 2.0) } else { (x2, y2) };
    let dash = if m.lost { " stroke-dasharray=\"4 3\"" } else { "" };
    let _ = write!(
        s,
        "<g class=\"msg {}\"><line x1=\"{x1}\" y1=\"{y1:.1}\" x2=\"{ex}\" y2=\"{ey:.1}\" \
         stroke=\"{}\" stroke-width=\"1.6\"{dash}/>",
        m.kind, m.colour
    );
    if m.lost {
        let _ = write!(
            s,
            "<text x=\"{ex}\" y=\"{:.1}\" fill=\"#c0392b\" text-anchor=\"middle\" font-size=\"14\">✗</text>",
            ey + 5.0
        );
    } else {
        // Where it arrived: a dot (the lane's side tells the direction).
        let _ = write!(s, "<circle cx=\"{ex}\" cy=\"{ey:.1}\" r=\"2.5\" fill=\"{}\"/>", m.colour);
    }
    if !m.label.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
            x1 + (x2 - x1) * 0.25,
            y1 + (y2 - y1) * 0.25 - 4.0,
            m.colour,
            esc(&m.label)
        );
    }
    s.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::event::NodeTrace;
    use crate::timeline::Source;

    fn batch(ts: u64, node: i32, events: Vec<TraceEvent>) -> TimelineEvent {
        TimelineEvent {
            seq: ts,
            ts_ns: ts,
            source: Source::Lab,
            kind: EventKind::RaftTrace {
                group: Some("lab-0".parse().unwrap()),
                nodes: vec![NodeTrace { node, events, replica: None, missed: 0, suspect_after_ms: 300 }],
            },
        }
    }

    const LAB0: Option<&str> = Some("lab-0");

    fn ev(ts_ns: u64, group: Option<&str>, kind: TraceKind) -> TraceEvent {
        TraceEvent { seq: 0, ts_ns, group: group.map(|g| g.parse().unwrap()), kind }
    }

    fn vote(to: u64, term: u64, outcome: Outcome, rtt_us: u64) -> TraceKind {
        TraceKind::Vote { to, term, last_log: None, outcome, rtt_us }
    }

    fn append(to: u64, term: u64, entries: (u64, u64), rtt_us: u64) -> TraceKind {
        let (prev, terms, leader_commit) = (None, vec![(term, entries.1 - entries.0 + 1)], None);
        TraceKind::Append {
            to,
            term,
            prev,
            entries: Some(entries),
            terms,
            leader_commit,
            outcome: Outcome::Ok,
            rtt_us,
        }
    }

    fn campaign(candidate: u64, reason: &str) -> TraceKind {
        TraceKind::Campaign { reason: reason.into(), wait_ms: 0, candidate }
    }

    #[test]
    fn one_diagram_per_election_with_a_lane_per_node_and_the_lost_request_crossed() {
        const MS: u64 = 1_000_000;
        let t0 = 1_000_000 * MS;
        let events = vec![
            batch(
                t0,
                1,
                vec![ev(t0, None, TraceKind::NodeHeartbeat { to: 2, outcome: Outcome::Ok, rtt_us: 100 })],
            ),
            batch(
                t0 + 500 * MS,
                2,
                vec![
                    ev(t0 + 400 * MS, LAB0, campaign(2, "no leader known")),
                    ev(t0 + 401 * MS, LAB0, vote(1, 5, Outcome::Timeout, 225_000)),
                    ev(t0 + 401 * MS, LAB0, vote(3, 5, Outcome::Ok, 2_000)),
                    ev(t0 + 410 * MS, LAB0, append(3, 5, (10, 10), 900)),
                    ev(t0 + 402 * MS, Some("other-0"), vote(3, 9, Outcome::Ok, 100)),
                ],
            ),
            // A second campaign inside the same window is the same election.
            batch(t0 + 600 * MS, 3, vec![ev(t0 + 450 * MS, LAB0, campaign(3, "x"))]),
        ];
        let diagrams = election_diagrams(&events, 3);
        assert_eq!(diagrams.len(), 1);
        let (caption, svg) = &diagrams[0];
        assert!(caption.starts_with("lab-0: n2 campaigns"), "{caption}");
        assert_eq!(svg.matches("class=\"lane\"").count(), 3);
        assert_eq!(svg.matches("class=\"msg vote\"").count(), 2, "the other group's vote is not drawn");
        assert_eq!(
            svg.matches("class=\"msg reply\"").count(),
            2,
            "a granted vote and an append ack; the lost request has none"
        );
        assert!(svg.contains("✗") && svg.contains("✓ granted") && svg.contains("entries 10–10"));
        assert!(!svg.contains("node_heartbeat"));
        assert!(election_diagrams(&events[..1], 3).is_empty(), "no campaign, no diagram");
    }
}
