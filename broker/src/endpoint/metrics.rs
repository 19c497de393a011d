//! Prometheus text exposition of a node's state.

use std::fmt::Write;

use crate::state::NodeState;

/// Reads one gauge's value from a partition's offsets.
type OffsetOf = fn(&crate::log::PartitionOffsets) -> i64;

pub fn render(node: &NodeState) -> String {
    let mut out = String::new();
    let node_id = node.config.node_id;
    let stats = node.store.stats();
    let counters = [
        ("clusterlab_fsync_total", "fsync calls", stats.fsync_count as f64),
        ("clusterlab_fsync_seconds_total", "time spent in fsync", stats.fsync_nanos_total as f64 / 1e9),
        ("clusterlab_appended_bytes_total", "bytes appended to partition logs", stats.bytes_appended as f64),
        (
            "clusterlab_appended_entries_total",
            "batches appended to partition logs",
            stats.entries_appended as f64,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{node=\"{node_id}\"}} {value}"
        );
    }
    let gauges: [(&str, &str, OffsetOf); 4] = [
        ("clusterlab_partition_log_end_offset", "next offset to be assigned", |o| o.log_end_offset),
        ("clusterlab_partition_flushed_offset", "first offset not yet known to be fsynced", |o| {
            o.flushed_offset
        }),
        ("clusterlab_partition_high_watermark", "first offset consumers cannot read yet", |o| {
            o.high_watermark
        }),
        ("clusterlab_partition_log_start_offset", "first offset still in the log", |o| o.log_start_offset),
    ];
    let partitions = node.store.partitions();
    for (name, help, get) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for log in &partitions {
            let o = log.offsets();
            let _ = writeln!(
                out,
                "{name}{{node=\"{node_id}\",topic=\"{}\",partition=\"{}\"}} {}",
                log.topic(),
                log.partition(),
                get(&o)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP clusterlab_fsync_delay_ms slow-disk fault delay\n# TYPE clusterlab_fsync_delay_ms gauge"
    );
    let _ = writeln!(
        out,
        "clusterlab_fsync_delay_ms{{node=\"{node_id}\"}} {}",
        node.store.fsync_delay().as_millis()
    );
    let in_progress = [
        (
            "clusterlab_kafka_requests_in_progress",
            "Kafka requests read and not yet answered",
            &node.kafka_requests_in_progress,
        ),
        (
            "clusterlab_kafka_request_bytes_in_progress",
            "bytes of Kafka request frames read and not yet answered",
            &node.kafka_request_bytes_in_progress,
        ),
        (
            "clusterlab_kafka_answer_bytes_in_progress",
            "bytes of Kafka fetch answers built and not yet written",
            &node.kafka_answer_bytes_in_progress,
        ),
    ];
    for (name, what, gauge) in in_progress {
        let value = gauge.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "# HELP {name} {what}\n# TYPE {name} gauge");
        let _ = writeln!(out, "{name}{{node=\"{node_id}\"}} {value}");
    }
    let name = "clusterlab_kafka_requests_total";
    let total = node.kafka_requests_total.load(std::sync::atomic::Ordering::Relaxed);
    let _ = writeln!(out, "# HELP {name} Kafka requests read since start\n# TYPE {name} counter");
    let _ = writeln!(out, "{name}{{node=\"{node_id}\"}} {total}");
    out
}
