//! Unavailability windows: stretches in which the cluster did not take writes.
//!
//! Overall: a healthy workload acknowledges sends continuously, so a gap between two consecutive
//! `ok` completions longer than the threshold is time no partition took writes (election,
//! partition, power cut). Per partition: a send to it that waited longer than the threshold
//! (one leader down); gaps between one partition's completions are not used, because they also
//! measure the partitioner (librdkafka's sticky partitioner fills one partition's batch, then
//! moves on: at 300 partitions a writable partition can go unused for ten seconds). Windows are
//! facts for the timeline, not violations.

use std::collections::{BTreeMap, HashMap};

use crate::history::{History, OpKind, OpType};

use super::Window;

pub(crate) fn unavailability(history: &History, threshold_ns: u64) -> Vec<Window> {
    let mut all: Vec<u64> = Vec::new();
    let mut waits: BTreeMap<(&str, i32), Vec<(u64, u64)>> = BTreeMap::new();
    let mut invoked: HashMap<(u32, Option<&str>), u64> = HashMap::new();
    let (mut first_send, mut last_send) = (None::<u64>, None::<u64>);
    for op in history.ops.iter().filter(|op| op.kind == OpKind::Send) {
        first_send = Some(first_send.map_or(op.time_ns, |t| t.min(op.time_ns)));
        last_send = Some(last_send.map_or(op.time_ns, |t| t.max(op.time_ns)));
        match op.op_type {
            OpType::Invoke => {
                invoked.insert((op.process, op.value.as_deref()), op.time_ns);
            }
            OpType::Ok => {
                all.push(op.time_ns);
                let since = invoked
                    .remove(&(op.process, op.value.as_deref()))
                    .or_else(|| op.latency_ns.map(|l| op.time_ns.saturating_sub(l)));
                if let (Some(p), Some(since)) = (op.partition, since) {
                    if op.time_ns.saturating_sub(since) > threshold_ns {
                        waits.entry((op.topic.as_str(), p)).or_default().push((since, op.time_ns));
                    }
                }
            }
            _ => {}
        }
    }
    let mut windows = gaps(&mut all, threshold_ns);
    for (&(topic, p), spans) in waits.iter_mut() {
        windows.extend(merged(topic, p, spans));
    }
    // The cluster may never recover: sends kept failing after the last success (or none ever
    // succeeded). Without this tail the worst outage of a run would go unreported.
    if let (Some(first), Some(last)) = (first_send, last_send) {
        let start = all.last().copied().unwrap_or(first);
        if last > start && last - start > threshold_ns {
            windows.push(window(None, None, start, last));
        }
    }
    windows.sort_by(|a, b| (a.start_ns, &a.topic, a.partition).cmp(&(b.start_ns, &b.topic, b.partition)));
    windows
}

/// One partition's long waits, overlapping ones joined: sends queued behind the same outage.
fn merged(topic: &str, partition: i32, spans: &mut [(u64, u64)]) -> Vec<Window> {
    spans.sort_unstable();
    let mut out: Vec<Window> = Vec::new();
    for &(start, end) in spans.iter() {
        match out.last_mut() {
            Some(w) if start <= w.end_ns => {
                w.end_ns = w.end_ns.max(end);
                w.duration_ns = w.end_ns - w.start_ns;
            }
            _ => out.push(window(Some(topic), Some(partition), start, end)),
        }
    }
    out
}

/// Gaps between consecutive acknowledgements of any partition.
fn gaps(times: &mut [u64], threshold_ns: u64) -> Vec<Window> {
    // Completions are recorded in arrival order, which clock skew between client threads can
    // perturb slightly; sorting makes gaps non-negative.
    times.sort_unstable();
    times.windows(2).filter(|w| w[1] - w[0] > threshold_ns).map(|w| window(None, None, w[0], w[1])).collect()
}

fn window(topic: Option<&str>, partition: Option<i32>, start_ns: u64, end_ns: u64) -> Window {
    Window { topic: topic.map(str::to_string), partition, start_ns, end_ns, duration_ns: end_ns - start_ns }
}
