//! Tables for `clusterlab bench --cluster`: throughput vs single node, start time, failover.
//!
//! Pure rendering of [`ClusterReport`] parts so it can be tested without brokers.

use std::fmt::Write as _;

use crate::bench::cluster_bench::{ClusterCaseResult, ClusterOptions, StartReport};
use crate::bench::failover::FailoverReport;
use crate::bench::report::{fmt_rate, fmt_ratio, SmallSummary};

/// The cluster-specific setup lines (the shared [`crate::bench::Setup`] is printed before).
pub fn render_cluster_setup(c: &ClusterOptions) -> String {
    let t = &c.timing;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster:   3 nodes on loopback, RF 3, fresh data dirs per case; \
         single-node rows: RF 1, same producer"
    );
    let _ = writeln!(
        out,
        "raft:      election timeout {}-{} ms, heartbeat {} ms",
        t.election_timeout_min_ms, t.election_timeout_max_ms, t.heartbeat_interval_ms
    );
    let _ = writeln!(out, "producer:  cluster cases add enable.idempotence=true and use acks=all");
    let _ = writeln!(
        out,
        "failover:  {} SIGKILLs of the p0 leader, fsync={}, one 100 B message to p0 every {} us, \
         a seeded 0.3-1.3 s pause after each catch-up; start time: {} fresh clusters",
        c.kills, c.failover_fsync, c.failover_pace_us, c.start_repeats
    );
    out
}

/// One row per node count and case; three-node rows carry the ratio to the single node.
pub fn render_throughput(rows: &[ClusterCaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5} {:>2} {:<12} {:>5} | {:>10} {:>7} {:>8} {:>8} {:>8} | {:>9} {:>9}",
        "nodes",
        "RF",
        "fsync",
        "size",
        "prod msg/s",
        "MB/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "msg/s x1",
        "p99 x1"
    );
    let _ = writeln!(out, "{}", "-".repeat(102));
    for r in rows {
        let opt = |x: Option<f64>| x.map_or("-".to_string(), fmt_ratio);
        let _ = writeln!(
            out,
            "{:>5} {:>2} {:<12} {:>5} | {:>10} {:>7.2} {:>8.2} {:>8.2} {:>8.2} | {:>9} {:>9}",
            r.nodes,
            r.replication,
            r.fsync,
            r.size,
            fmt_rate(r.produce.msgs_per_sec),
            r.produce.mb_per_sec,
            r.ack_latency.p50_ms,
            r.ack_latency.p99_ms,
            r.ack_latency.max_ms,
            opt(r.msgs_ratio_to_single),
            opt(r.p99_ratio_to_single),
        );
    }
    out
}

fn summary_line(name: &str, s: &SmallSummary) -> String {
    format!(
        "{name:<34} n={:<3} p50 {:>8.1} ms   p99 {:>8.1} ms   max {:>8.1} ms\n",
        s.count, s.p50_ms, s.p99_ms, s.max_ms
    )
}

pub fn render_start(s: &StartReport) -> String {
    let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    out.push_str(&summary_line("spawn -> controller leader", &s.controller_ready));
    out.push_str(&summary_line("spawn -> topic created, all led", &s.all_ready));
    let terms = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let _ = writeln!(
        out,
        "  per run (ms): controller [{}], all [{}]",
        list(&s.controller_ready_ms),
        list(&s.all_ready_ms)
    );
    let _ = writeln!(
        out,
        "  Raft term at ready: controller [{}], highest partition [{}]",
        terms(&s.controller_terms),
        terms(&s.max_partition_terms)
    );
    out
}

pub fn render_failover(f: &FailoverReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>4} {:>6} {:>6} {:>6} {:>6} | {:>11} {:>12} {:>12} {:>13}",
        "kill", "killed", "term", "new", "term", "election ms", "unavail ms", "max gap ms", "catch-up ms"
    );
    let _ = writeln!(out, "{}", "-".repeat(88));
    for (i, k) in f.kills.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>4} {:>6} {:>6} {:>6} {:>6} | {:>11.1} {:>12.1} {:>12.1} {:>13.0}",
            i + 1,
            k.killed_node,
            k.old_term,
            k.new_leader,
            k.new_term,
            k.election_ms,
            k.unavailable_ms,
            k.max_gap_in_cycle_ms,
            k.restart_and_catch_up_ms
        );
    }
    out.push_str(&summary_line("unavailable (last ack -> next ack)", &f.unavailable));
    out.push_str(&summary_line("largest ack gap in cycle", &f.max_gap_in_cycle));
    out.push_str(&summary_line("election (kill -> leader in /state)", &f.election));
    out.push_str(&summary_line("restart + catch-up", &f.restart_and_catch_up));
    let _ =
        writeln!(out, "messages: sent {} acked {} failed {} (fsync={})", f.sent, f.acked, f.failed, f.fsync);
    let cfg =
        f.producer_config.iter().filter(|(k, _)| k != "bootstrap.servers").map(|(k, v)| format!("{k}={v}"));
    let _ = writeln!(out, "failover producer: {}", cfg.collect::<Vec<_>>().join(" "));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::failover::KillRecord;
    use crate::bench::report::{LatencySummary, Throughput};

    #[test]
    fn throughput_rows_show_the_ratio_only_for_three_nodes() {
        let row = |nodes, rate: f64, r| ClusterCaseResult {
            nodes,
            replication: nodes as i32,
            fsync: "always".into(),
            size: 100,
            produce: Throughput {
                messages: 1,
                bytes: 1,
                seconds: 1.0,
                msgs_per_sec: rate,
                mb_per_sec: rate / 1e4,
            },
            ack_latency: LatencySummary { p50_ms: 1.0, p99_ms: 2.0, max_ms: 3.0, mean_ms: 1.0 },
            msgs_ratio_to_single: r,
            p99_ratio_to_single: r,
        };
        let table = render_throughput(&[row(1, 200_000.0, None), row(3, 100_000.0, Some(0.5))]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[2].contains("200,000") && lines[2].trim_end().ends_with('-'), "{table}");
        assert!(lines[3].contains("100,000") && lines[3].contains("0.50x"), "{table}");
    }

    #[test]
    fn failover_table_lists_every_kill_and_the_summaries() {
        let k = KillRecord {
            killed_node: 1,
            old_term: 1,
            new_leader: 2,
            new_term: 2,
            election_ms: 400.0,
            unavailable_ms: 650.0,
            max_gap_in_cycle_ms: 650.0,
            restart_and_catch_up_ms: 1200.0,
        };
        let s = SmallSummary::of([650.0]);
        let f = FailoverReport {
            fsync: "always".into(),
            pace_us: 1000,
            message_bytes: 100,
            producer_config: vec![],
            sent: 10,
            acked: 10,
            failed: 0,
            kills: vec![k],
            unavailable: s,
            max_gap_in_cycle: s,
            election: s,
            restart_and_catch_up: s,
        };
        let text = render_failover(&f);
        assert!(text.lines().nth(2).unwrap().contains("650.0"), "{text}");
        assert!(text.contains("sent 10 acked 10 failed 0"), "{text}");
    }
}
