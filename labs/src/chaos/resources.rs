//! The brokers' CPU and memory over a chaos run, from the supervisor's `resources` samples: what
//! a soak reports to show that a node does not leak under minutes of faults (issue 15).
//!
//! A killed, power-cut or restarted node starts again with a fresh process, so its memory falls
//! back; a leak shows as a process whose memory keeps climbing between restarts, which the
//! memory at each tenth of the run makes visible.

use std::collections::BTreeMap;

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
    /// CPU of the node's process, % of one core, over its samples.
    pub cpu_mean_percent: f64,
    pub cpu_max_percent: f64,
}

const MIB: f64 = (1u64 << 20) as f64;

/// Per node, in node order; nodes without samples are left out.
pub fn summarise(events: &[TimelineEvent]) -> Vec<NodeResources> {
    let mut per_node: BTreeMap<i32, Vec<(u64, f32, u64)>> = BTreeMap::new();
    for e in events {
        if let (Source::Node(node), EventKind::Resources { cpu_percent, memory_bytes, .. }) =
            (&e.source, &e.kind)
        {
            per_node.entry(*node).or_default().push((e.ts_ns, *cpu_percent, *memory_bytes));
        }
    }
    per_node
        .into_iter()
        .map(|(node, mut s)| {
            s.sort_by_key(|x| x.0);
            let (first, last) = (s[0], s[s.len() - 1]);
            let span = (last.0 - first.0).max(1);
            let rss_by_tenth_mib = (1..=10u64)
                .map(|k| {
                    let at = first.0 + span * k / 10;
                    let i = s.partition_point(|x| x.0 <= at).max(1) - 1;
                    round1(s[i].2 as f64 / MIB)
                })
                .collect();
            NodeResources {
                node,
                samples: s.len(),
                seconds: round1((last.0 - first.0) as f64 / 1e9),
                rss_first_mib: round1(first.2 as f64 / MIB),
                rss_max_mib: round1(s.iter().map(|x| x.2).max().unwrap_or(0) as f64 / MIB),
                rss_last_mib: round1(last.2 as f64 / MIB),
                rss_by_tenth_mib,
                cpu_mean_percent: round1(s.iter().map(|x| x.1 as f64).sum::<f64>() / s.len() as f64),
                cpu_max_percent: round1(s.iter().map(|x| x.1 as f64).fold(0.0, f64::max)),
            }
        })
        .collect()
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// One line per node for a terminal.
pub fn describe(nodes: &[NodeResources]) -> Vec<String> {
    nodes
        .iter()
        .map(|n| {
            let tenths: Vec<String> = n.rss_by_tenth_mib.iter().map(|m| format!("{m:.0}")).collect();
            format!(
                "node {}: RSS {:.0} MiB first, {:.0} max, {:.0} last (by tenths: {}); CPU {:.0} % mean, {:.0} % max of one core; {} samples over {:.0} s",
                n.node,
                n.rss_first_mib,
                n.rss_max_mib,
                n.rss_last_mib,
                tenths.join(" "),
                n.cpu_mean_percent,
                n.cpu_max_percent,
                n.samples,
                n.seconds
            )
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
            kind: EventKind::Resources { cpu_percent: cpu, memory_bytes: mib << 20, disk_bytes: 0 },
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
    fn no_samples_no_rows() {
        assert!(summarise(&[]).is_empty());
    }
}
