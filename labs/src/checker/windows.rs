//! Unavailability windows: stretches with no successful send completion.
//!
//! A healthy workload acknowledges sends continuously, so a gap between two consecutive `ok`
//! completions longer than the threshold is time the cluster could not take writes (leader
//! election, partition, power cut). Reported per partition (one leader down) and overall (no
//! partition writable); they are facts for the timeline, not violations.

use std::collections::BTreeMap;

use crate::history::{History, OpKind, OpType};

use super::Window;

pub(crate) fn unavailability(history: &History, threshold_ns: u64) -> Vec<Window> {
    let mut all: Vec<u64> = Vec::new();
    let mut per_partition: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    let (mut first_send, mut last_send) = (None::<u64>, None::<u64>);
    for op in history.ops.iter().filter(|op| op.kind == OpKind::Send) {
        first_send = Some(first_send.map_or(op.time_ns, |t| t.min(op.time_ns)));
        last_send = Some(last_send.map_or(op.time_ns, |t| t.max(op.time_ns)));
        if op.op_type == OpType::Ok {
            all.push(op.time_ns);
            if let Some(p) = op.partition {
                per_partition.entry(p).or_default().push(op.time_ns);
            }
        }
    }
    let mut windows = gaps(None, &mut all, threshold_ns);
    for (p, times) in per_partition.iter_mut() {
        windows.extend(gaps(Some(*p), times, threshold_ns));
    }
    // The cluster may never recover: sends kept failing after the last success (or none ever
    // succeeded). Without this tail the worst outage of a run would go unreported.
    if let (Some(first), Some(last)) = (first_send, last_send) {
        let start = all.last().copied().unwrap_or(first);
        if last > start && last - start > threshold_ns {
            windows.push(window(None, start, last));
        }
    }
    windows.sort_by_key(|w| (w.start_ns, w.partition));
    windows
}

fn gaps(partition: Option<i32>, times: &mut [u64], threshold_ns: u64) -> Vec<Window> {
    // Completions are recorded in arrival order, which clock skew between client threads can
    // perturb slightly; sorting makes gaps non-negative.
    times.sort_unstable();
    times.windows(2).filter(|w| w[1] - w[0] > threshold_ns).map(|w| window(partition, w[0], w[1])).collect()
}

fn window(partition: Option<i32>, start_ns: u64, end_ns: u64) -> Window {
    Window { partition, start_ns, end_ns, duration_ns: end_ns - start_ns }
}
