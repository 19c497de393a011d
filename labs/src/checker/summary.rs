//! The verdict's one human sentence, written for a workshop screen.

use super::anomaly::{duplicate_count, lost_count, other_breakdown, other_count, Anomaly};
use super::{Counts, Window};

pub(crate) fn sentence(counts: &Counts, anomalies: &[Anomaly], windows: &[Window], ok: bool) -> String {
    let lost = lost_count(anomalies);
    let dups = duplicate_count(anomalies);
    let mut parts = Vec::new();
    if lost > 0 {
        parts.push(format!(
            "{lost} of {} acknowledged writes lost ({})",
            counts.acked,
            lost_ranges(anomalies)
        ));
    } else {
        parts.push(format!("{} acknowledged, {} read, 0 lost", counts.acked, counts.distinct_read));
    }
    match (dups, ok) {
        (0, _) => parts.push("0 duplicated".to_string()),
        (n, false) => parts.push(format!("{n} {} duplicated", plural(n, "value", "values"))),
        (n, true) => parts.push(format!(
            "{n} {} duplicated (allowed: producer not idempotent)",
            plural(n, "value", "values")
        )),
    }
    if other_count(anomalies) > 0 {
        parts.push(other_breakdown(anomalies));
    }
    if counts.indeterminate > 0 {
        parts.push(format!("{} indeterminate", counts.indeterminate));
    }
    if let Some(longest) = windows.iter().map(|w| w.duration_ns).max() {
        parts.push(format!(
            "{} unavailability {} (longest {:.1} s)",
            windows.len(),
            plural(windows.len(), "window", "windows"),
            longest as f64 / 1e9
        ));
    }
    parts.join(", ")
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// "partition 1, offsets 40..42; partition 2, offset 7" from the (partition, offset)-sorted
/// lost writes; non-contiguous runs say how many offsets the span holds.
fn lost_ranges(anomalies: &[Anomaly]) -> String {
    let mut per_partition: Vec<(i32, Vec<i64>)> = Vec::new();
    for a in anomalies {
        if let Anomaly::LostWrite { partition, offset, .. } = a {
            match per_partition.last_mut() {
                Some((p, offsets)) if p == partition => offsets.push(*offset),
                _ => per_partition.push((*partition, vec![*offset])),
            }
        }
    }
    const SHOWN: usize = 3;
    let mut text: Vec<String> = per_partition
        .iter()
        .take(SHOWN)
        .map(|(p, offsets)| {
            let (lo, hi) = (offsets[0], offsets[offsets.len() - 1]);
            match offsets.len() {
                _ if lo < 0 => format!("partition {p}, offsets unknown"),
                1 => format!("partition {p}, offset {lo}"),
                n if (hi - lo + 1) as usize == n => format!("partition {p}, offsets {lo}..{hi}"),
                n => format!("partition {p}, {n} offsets in {lo}..{hi}"),
            }
        })
        .collect();
    if per_partition.len() > SHOWN {
        text.push(format!("{} more partitions", per_partition.len() - SHOWN));
    }
    text.join("; ")
}
