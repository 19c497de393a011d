//! Exports of a timeline: one file per format, plus what several formats derive alike
//! (fault spans, Raft leadership spans), so the trace, the charts and the report agree.
//!
//! - `jsonl` — JSON Lines (and re-import for replay).
//! - `perfetto` — Chrome trace JSON for ui.perfetto.dev / chrome://tracing.
//! - `edn` — Jepsen-style EDN history of the client ops.
//! - `csv` — one row per event.
//! - `charts` — PNG/SVG charts (plotters).
//! - `html` — a self-contained HTML report.
//! - `sequence` — message-sequence diagrams of the watched Raft group's elections (for the report).

pub mod charts;
pub mod csv;
pub mod edn;
pub mod html;
pub mod jsonl;
pub mod perfetto;
pub mod sequence;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use broker::telemetry::wire::{ElectionPhase, Role};

use crate::error::LabError;

use super::event::{EventKind, FaultName, ProcessPhase, Source, TimelineEvent};

pub use charts::{render_svgs, write_charts};
pub use csv::write_csv;
pub use edn::write_edn;
pub use html::write_html_report;
pub use jsonl::{read_jsonl, write_jsonl};
pub use perfetto::write_perfetto;

/// Run an exporter into a new file at `path` (buffered, flushed before returning).
pub fn write_to_path(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<(), LabError>,
) -> Result<(), LabError> {
    let what = || format!("writing {}", path.display());
    let file = File::create(path).map_err(|source| LabError::Io { what: what(), source })?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    write(&mut out)?;
    out.flush().map_err(|source| LabError::Io { what: what(), source })
}

/// Text for HTML or SVG element content and (quoted) attribute values.
pub(crate) fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(s)
}

pub(crate) fn io_err(what: &str) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |source| LabError::Io { what: what.to_string(), source }
}

/// The earliest timestamp (exports show time relative to it; events may be out of order).
pub fn origin_ns(events: &[TimelineEvent]) -> u64 {
    events.iter().map(|e| e.ts_ns).min().unwrap_or(0)
}

/// Stable text for a source: "lab", "node:2", "client:0".
pub fn source_text(s: &Source) -> String {
    match s {
        Source::Lab => "lab".into(),
        Source::Node(n) => format!("node:{n}"),
        Source::Client(c) => format!("client:{c}"),
    }
}

/// The serde tag of an event's kind ("fault", "raft", "client", ...).
pub fn type_name(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Fault { .. } => "fault",
        EventKind::Process { .. } => "process",
        EventKind::Raft { .. } => "raft",
        EventKind::Election { .. } => "election",
        EventKind::Offsets { .. } => "offsets",
        EventKind::RaftTrace { .. } => "raft_trace",
        EventKind::Telemetry { .. } => "telemetry",
        EventKind::Client { .. } => "client",
        EventKind::Resources { .. } => "resources",
        EventKind::Log { .. } => "log",
        EventKind::Step { .. } => "step",
        EventKind::Narration { .. } => "narration",
        EventKind::Check { .. } => "check",
        EventKind::Verdict { .. } => "verdict",
    }
}

/// A fault as shown on charts and in the report: a span from fault to heal, or an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpan {
    pub label: String,
    pub start_ns: u64,
    /// `None` for an instant fault (kill, restart); for a lasting fault, its heal time, or the
    /// end of the timeline if it was never healed (then `healed` is false).
    pub end_ns: Option<u64>,
    pub healed: bool,
}

/// Pair faults with their heals. A heal ends the open faults on the same target; a heal whose
/// target is empty, "all" or "*" ends every open fault. `events` may be in any order.
pub fn fault_spans(events: &[TimelineEvent]) -> Vec<FaultSpan> {
    let end = events.iter().map(|e| e.ts_ns).max().unwrap_or(0);
    let mut spans: Vec<FaultSpan> = Vec::new();
    let mut open: Vec<(usize, String)> = Vec::new(); // (index in spans, target)
    for e in time_ordered(events) {
        let EventKind::Fault { fault, target, .. } = &e.kind else { continue };
        // Heals end the open faults on their target; these faults happen at an instant.
        if matches!(fault, FaultName::Heal | FaultName::HealLink | FaultName::Resume) {
            let all = target.is_empty() || target == "all" || target == "*";
            open.retain(|(i, t)| {
                let hit = all || t == target;
                if hit {
                    spans[*i].end_ns = Some(e.ts_ns);
                    spans[*i].healed = true;
                }
                !hit
            });
        } else if matches!(fault, FaultName::Kill | FaultName::Restart | FaultName::Stop) {
            spans.push(FaultSpan { label: e.label(), start_ns: e.ts_ns, end_ns: None, healed: false });
        } else {
            open.push((spans.len(), target.clone()));
            spans.push(FaultSpan { label: e.label(), start_ns: e.ts_ns, end_ns: Some(end), healed: false });
        }
    }
    spans
}

/// One node's leadership of one Raft group in one term.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderSpan {
    pub group: String,
    pub node: i64,
    pub term: u64,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// Derive who led each group when, from Raft state reports, won elections and process deaths.
/// A span ends at the next change of leader or term, when its node reports another role or
/// dies, or at the end of the timeline. `events` may be in any order.
pub fn leader_spans(events: &[TimelineEvent]) -> Vec<LeaderSpan> {
    let mut l = Leadership { end: events.iter().map(|e| e.ts_ns).max().unwrap_or(0), ..Default::default() };
    for e in time_ordered(events) {
        match (&e.source, &e.kind) {
            (Source::Node(n), EventKind::Raft { group, term, role, leader, .. }) => {
                let n = *n as i64;
                let group = &group.to_string();
                if *role == Role::Leader {
                    l.switch(group, n, *term, e.ts_ns);
                } else if let Some(leader) = leader {
                    l.switch(group, *leader as i64, *term, e.ts_ns);
                } else if l.current.get(group).is_some_and(|c| c.node == n && c.term <= *term) {
                    // The leader itself reports it no longer leads.
                    l.close(group, e.ts_ns);
                }
            }
            (
                _,
                EventKind::Election {
                    group,
                    term,
                    phase: ElectionPhase::Won | ElectionPhase::LeaderKnown,
                    leader: Some(leader),
                },
            ) => {
                l.switch(&group.to_string(), *leader as i64, *term, e.ts_ns);
            }
            (
                Source::Node(n),
                EventKind::Process { state: ProcessPhase::Died | ProcessPhase::Exited, .. },
            ) => {
                let gone: Vec<String> =
                    l.current.iter().filter(|(_, c)| c.node == *n as i64).map(|(g, _)| g.clone()).collect();
                for g in gone {
                    l.close(&g, e.ts_ns);
                }
            }
            _ => {}
        }
    }
    let mut done = l.done;
    done.extend(l.current.into_values());
    done.sort_by(|a, b| (a.start_ns, &a.group).cmp(&(b.start_ns, &b.group)));
    done
}

#[derive(Default)]
struct Leadership {
    current: BTreeMap<String, LeaderSpan>,
    done: Vec<LeaderSpan>,
    end: u64,
}

impl Leadership {
    /// Open a span for (group, node, term) unless it is already the current one; never go back
    /// to an older term (late reports from a stale node must not undo a newer leader).
    fn switch(&mut self, group: &str, node: i64, term: u64, ts: u64) {
        if let Some(c) = self.current.get(group) {
            if (c.node == node && c.term == term) || c.term > term {
                return;
            }
        }
        self.close(group, ts);
        self.current.insert(
            group.to_string(),
            LeaderSpan { group: group.into(), node, term, start_ns: ts, end_ns: self.end },
        );
    }

    fn close(&mut self, group: &str, ts: u64) {
        if let Some(mut c) = self.current.remove(group) {
            c.end_ns = ts;
            self.done.push(c);
        }
    }
}

/// The Raft groups seen in a timeline, sorted by name.
pub fn raft_groups(events: &[TimelineEvent]) -> Vec<String> {
    let mut g: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Raft { group, .. } | EventKind::Election { group, .. } => Some(group.to_string()),
            _ => None,
        })
        .collect();
    g.sort();
    g.dedup();
    g
}

/// Events in time order (borrowed copy sorted stably on seq), for exporters given any slice.
pub(crate) fn time_ordered(events: &[TimelineEvent]) -> Vec<&TimelineEvent> {
    let mut v: Vec<&TimelineEvent> = events.iter().collect();
    v.sort_by_key(|e| (e.ts_ns, e.seq));
    v
}

#[cfg(test)]
pub(crate) mod sample;
#[cfg(test)]
mod tests;
