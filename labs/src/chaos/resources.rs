//! The brokers' CPU and memory over a chaos run, from the supervisor's `resources` samples: what
//! a soak reports to show that a node does not leak under minutes of faults (issue 15).
//!
//! A killed, power-cut or restarted node starts again with a fresh process, so its memory falls
//! back; a leak shows as a process whose memory keeps climbing between restarts, which the
//! memory at each tenth of the run makes visible. Beside the RSS, each tenth also carries the
//! node's own account (`GET /memory`): heap in use, freed memory the allocator still holds, and
//! the log index, which grows with the batches kept. RSS that climbs while heap in use stays flat
//! is the allocator holding on, not a leak; heap that climbs with the index is the data kept.

use std::collections::BTreeMap;

use broker::telemetry::memory::MemoryReport;
use serde::Serialize;

use crate::timeline::{EventKind, Source, TimelineEvent};

/// One node's resources over the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeResources {
    pub node: i32,
    pub samples: usize,
    /// The span the samples cover, in seconds.
    pub seconds: f64,
    pub rss_first_mib: f64,
    pub rss_max_mib: f64,
    pub rss_last_mib: f64,
    /// The last sample at or before each tenth of the span (ten values).
    pub rss_by_tenth_mib: Vec<f64>,
    /// The node's account at each tenth, from the last sample at or before it that had one
    /// (ten values each; empty when the node never answered).
    pub heap_in_use_by_tenth_mib: Vec<f64>,
    pub heap_free_held_by_tenth_mib: Vec<f64>,
    pub log_index_by_tenth_mib: Vec<f64>,
    /// Log index entries (stored batches) in the last account.
    pub log_index_entries_last: u64,
    /// CPU of the node's process, % of one core, over its samples.
    pub cpu_mean_percent: f64,
    pub cpu_max_percent: f64,
}

const MIB: f64 = (1u64 << 20) as f64;

struct Sample {
    ts_ns: u64,
    cpu: f32,
    rss: u64,
    account: Option<MemoryReport>,
}

/// Per node, in node order; nodes without samples are left out.
pub fn summarise(events: &[TimelineEvent]) -> Vec<NodeResources> {
    let mut per_node: BTreeMap<i32, Vec<Sample>> = BTreeMap::new();
    for e in events {
        if let (Source::Node(node), EventKind::Resources { cpu_percent, memory_bytes, node_memory, .. }) =
            (&e.source, &e.kind)
        {
            per_node.entry(*node).or_default().push(Sample {
                ts_ns: e.ts_ns,
                cpu: *cpu_percent,
                rss: *memory_bytes,
                account: *node_memory,
            });
        }
    }
    per_node.into_iter().map(|(node, s)| one_node(node, s)).collect()
}

fn one_node(node: i32, mut s: Vec<Sample>) -> NodeResources {
    s.sort_by_key(|x| x.ts_ns);
    let (first, last) = (&s[0], &s[s.len() - 1]);
    let span = (last.ts_ns - first.ts_ns).max(1);
    // The last sample at or before each tenth that passes `has`, read through `get`.
    let by_tenth = |has: &dyn Fn(&Sample) -> bool, get: &dyn Fn(&Sample) -> u64| -> Vec<f64> {
        let picked: Vec<&Sample> = s.iter().filter(|x| has(x)).collect();
        if picked.is_empty() {
            return Vec::new();
        }
        (1..=10u64)
            .map(|k| {
                let at = first.ts_ns + span * k / 10;
                let i = picked.partition_point(|x| x.ts_ns <= at).max(1) - 1;
                round1(get(picked[i]) as f64 / MIB)
            })
            .collect()
    };
    let account = |x: &Sample| x.account.unwrap_or_default();
    let answered = |x: &Sample| x.account.is_some_and(|a| a.heap_in_use_bytes.is_some());
    NodeResources {
        node,
        samples: s.len(),
        seconds: round1((last.ts_ns - first.ts_ns) as f64 / 1e9),
        rss_first_mib: round1(first.rss as f64 / MIB),
        rss_max_mib: round1(s.iter().map(|x| x.rss).max().unwrap_or(0) as f64 / MIB),
        rss_last_mib: round1(last.rss as f64 / MIB),
        rss_by_tenth_mib: by_tenth(&|_| true, &|x| x.rss),
        heap_in_use_by_tenth_mib: by_tenth(&answered, &|x| account(x).heap_in_use_bytes.unwrap_or(0)),
        heap_free_held_by_tenth_mib: by_tenth(&answered, &|x| account(x).heap_free_held_bytes.unwrap_or(0)),
        log_index_by_tenth_mib: by_tenth(&|x| x.account.is_some(), &|x| account(x).log_index_bytes),
        log_index_entries_last: s.iter().rev().find_map(|x| x.account).map_or(0, |a| a.log_index_entries),
        cpu_mean_percent: round1(s.iter().map(|x| x.cpu as f64).sum::<f64>() / s.len() as f64),
        cpu_max_percent: round1(s.iter().map(|x| x.cpu as f64).fold(0.0, f64::max)),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One line per node for a terminal.
pub fn describe(nodes: &[NodeResources]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| {
            let tenths = |v: &[f64]| v.iter().map(|m| format!("{m:.0}")).collect::<Vec<_>>().join(" ");
            let mut line = format!(
                "node {}: RSS {:.0} MiB first, {:.0} max, {:.0} last (by tenths: {}); \
                 CPU {:.0} % mean, {:.0} % max of one core; {} samples over {:.0} s",
                n.node,
                n.rss_first_mib,
                n.rss_max_mib,
                n.rss_last_mib,
                tenths(&n.rss_by_tenth_mib),
                n.cpu_mean_percent,
                n.cpu_max_percent,
                n.samples,
                n.seconds
            );
            if !n.heap_in_use_by_tenth_mib.is_empty() {
                line.push_str(&format!(
                    "; by tenths, MiB: heap in use {}, freed but held {}, log index {} ({} entries at the end)",
                    tenths(&n.heap_in_use_by_tenth_mib),
                    tenths(&n.heap_free_held_by_tenth_mib),
                    tenths(&n.log_index_by_tenth_mib),
                    n.log_index_entries_last
                ));
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seq: u64, node: i32, secs: u64, cpu: f32, mib: u64) -> TimelineEvent {
        TimelineEvent {
            seq,
            ts_ns: secs * 1_000_000_000,
            source: Source::Node(node),
            kind: EventKind::Resources {
                cpu_percent: cpu,
                memory_bytes: mib << 20,
                disk_bytes: 0,
                node_memory: None,
            },
        }
    }

    #[test]
    fn memory_by_tenths_and_cpu_per_node() {
        // Node 1 climbs 10 -> 100 MiB over 100 s; node 2 is flat; samples arrive out of order.
        let mut events: Vec<TimelineEvent> =
            (0..=100).map(|s| sample(s, 1, s, 20.0, 10 + s * 9 / 10)).collect();
        events.reverse();
        events.push(sample(200, 2, 0, 10.0, 30));
        events.push(sample(201, 2, 50, 30.0, 30));
        let r = summarise(&events);
        assert_eq!(r.len(), 2);
        let n1 = &r[0];
        assert_eq!((n1.node, n1.samples, n1.seconds), (1, 101, 100.0));
        assert_eq!((n1.rss_first_mib, n1.rss_max_mib, n1.rss_last_mib), (10.0, 100.0, 100.0));
        assert_eq!(n1.rss_by_tenth_mib[0], 19.0);
        assert_eq!(n1.rss_by_tenth_mib[9], 100.0);
        assert_eq!((r[1].cpu_mean_percent, r[1].cpu_max_percent), (20.0, 30.0));
        assert!(describe(&r)[0].starts_with("node 1: RSS 10 MiB first, 100 max, 100 last"));
    }

    #[test]
    fn the_nodes_own_account_by_tenths_skips_samples_it_did_not_answer() {
        // Heap in use flat at 8 MiB, the allocator holding more and more, the index growing;
        // every third sample unanswered (a paused node), the first answered one at 5 s.
        let events: Vec<TimelineEvent> = (0..=100u64)
            .map(|s| {
                let mut e = sample(s, 1, s, 5.0, 40);
                if let EventKind::Resources { node_memory, .. } = &mut e.kind {
                    *node_memory = (s >= 5 && s % 3 != 0).then_some(MemoryReport {
                        heap_in_use_bytes: Some(8 << 20),
                        heap_resident_bytes: Some((8 + s) << 20),
                        heap_free_held_bytes: Some(s << 20),
                        log_index_entries: s * 1000,
                        log_index_bytes: s * 48_000,
                    });
                }
                e
            })
            .collect();
        let all = summarise(&events);
        let n = &all[0];
        assert_eq!(n.heap_in_use_by_tenth_mib, vec![8.0; 10]);
        // Tenth 3 is at 30 s, unanswered: the account at 29 s stands for it.
        assert_eq!(n.heap_free_held_by_tenth_mib[2], 29.0);
        assert_eq!(n.heap_free_held_by_tenth_mib[9], 100.0);
        assert_eq!(n.log_index_by_tenth_mib[9], 4.6);
        assert_eq!(n.log_index_entries_last, 100_000);
        assert!(
            describe(&all)[0].ends_with("log index 0 1 1 2 2 3 3 4 4 5 (100000 entries at the end)"),
            "{}",
            describe(&all)[0]
        );
        // Without any answer, no account columns.
        let bare = summarise(&[sample(1, 2, 0, 1.0, 1)]);
        assert!(bare[0].heap_in_use_by_tenth_mib.is_empty() && !describe(&bare)[0].contains("heap"));
    }

    #[test]
    fn no_samples_no_rows() {
        assert!(summarise(&[]).is_empty());
    }
}
