//! End-of-run sweeps over the index: everything that needs the whole history.
//!
//! Each sweep is linear in the number of distinct values (the reorder sweep adds a sort per
//! producer partition), so a million-op history is a few passes over flat vectors.

use std::collections::HashMap;

use super::anomaly::{ack_mismatch, duplicates_of, slot_conflict, Anomaly};
use super::index::{Index, Outcome};

/// Acknowledged values not read (at or after `final_from`, when the run marks its final drain).
pub(crate) fn lost_writes(index: &Index, final_from: Option<u64>) -> Vec<Anomaly> {
    let mut lost: Vec<Anomaly> = index
        .values
        .iter()
        .filter_map(|v| {
            let Outcome::Ok { partition, offset, time_ns, .. } = v.send.as_ref()?.outcome else {
                return None;
            };
            let read_finally = match (v.last_read_index, final_from) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(last), Some(from)) => last >= from,
            };
            (!read_finally).then(|| Anomaly::LostWrite {
                value: v.value.to_string(),
                partition,
                offset,
                acked_at_ns: time_ns,
            })
        })
        .collect();
    // Partition/offset order lets the summary print contiguous ranges.
    lost.sort_by_key(|a| match a {
        Anomaly::LostWrite { partition, offset, .. } => (*partition, *offset),
        _ => (0, 0),
    });
    lost
}

/// Duplicates, inconsistent offsets, phantom reads and failed-but-present, in first-seen order.
pub(crate) fn read_anomalies(index: &Index) -> Vec<Anomaly> {
    let mut dups = Vec::new();
    let mut inconsistent = Vec::new();
    let mut phantoms = Vec::new();
    let mut failed = Vec::new();
    for (id, v) in index.values.iter().enumerate() {
        if v.reads.is_empty() {
            continue;
        }
        if v.reads.len() > 1 {
            dups.extend(duplicates_of(index, id, None));
        }
        if let Some(ack) = v.ack_slot() {
            // Read somewhere but never where the broker said it put it. If it was also read at
            // the acked offset, the extra copies are duplicates, not an inconsistency.
            if !v.reads.contains(&ack) {
                inconsistent.push(ack_mismatch(index, id, ack));
            }
        }
        let at = |s: &super::index::Slot| (v.value.to_string(), s.partition, s.offset);
        match v.send.as_ref().map(|s| s.outcome) {
            None => phantoms.extend(
                v.reads.iter().map(at).map(|(value, partition, offset)| Anomaly::PhantomRead {
                    value,
                    partition,
                    offset,
                }),
            ),
            Some(Outcome::Fail) => failed.extend(
                v.reads.iter().map(at).map(|(value, partition, offset)| Anomaly::FailedButPresent {
                    value,
                    partition,
                    offset,
                }),
            ),
            _ => {}
        }
    }
    inconsistent
        .extend(index.conflicts.iter().map(|&(slot, id, other)| slot_conflict(index, slot, id, other)));
    let mut all = dups;
    all.append(&mut inconsistent);
    all.append(&mut phantoms);
    all.append(&mut failed);
    all
}

/// (invoke index, ack index, acked offset, value id).
type AckedSend = (u64, u64, i64, usize);

/// Acknowledged sends with a real offset, per (process, topic, partition).
fn acked_sends(index: &Index) -> HashMap<(u32, u32, i32), Vec<AckedSend>> {
    let mut groups: HashMap<(u32, u32, i32), Vec<AckedSend>> = HashMap::new();
    for (id, v) in index.values.iter().enumerate() {
        let Some(send) = &v.send else { continue };
        if let Outcome::Ok { partition, offset, index: ack_index, .. } = send.outcome {
            if offset >= 0 {
                let key = (send.process, send.topic, partition);
                groups.entry(key).or_default().push((send.invoke_index, ack_index, offset, id));
            }
        }
    }
    groups
}

/// A send acknowledged at (offset a) before the same process invoked another send to the same
/// partition that was acknowledged at a lower offset. Only non-overlapping sends constrain the
/// order: sends in flight together may legitimately land in either order.
pub(crate) fn reorderings(index: &Index) -> Vec<Anomaly> {
    let mut found = Vec::new();
    for sends in acked_sends(index).values_mut() {
        found.extend(overtaken(sends));
    }
    let mut out: Vec<Anomaly> = found
        .into_iter()
        .map(|(first, second, first_offset, second_offset)| {
            let partition = match index.values[second].send.as_ref().map(|s| s.outcome) {
                Some(Outcome::Ok { partition, .. }) => partition,
                _ => -1,
            };
            Anomaly::Reordered {
                partition,
                first_value: index.values[first].value.to_string(),
                second_value: index.values[second].value.to_string(),
                first_offset,
                second_offset,
            }
        })
        .collect();
    out.sort_by_key(|a| match a {
        Anomaly::Reordered { partition, second_offset, .. } => (*partition, *second_offset),
        _ => (0, 0),
    });
    out
}

/// Of one partition's sends by one process (sorted here by invocation): each send that lands
/// below a send acknowledged before it was invoked, as (that earlier value, this value, its
/// offset, this offset). Sweeps invocations in order, keeping the highest offset among sends
/// already acked.
fn overtaken(sends: &mut [AckedSend]) -> Vec<(usize, usize, i64, i64)> {
    let mut by_ack = sends.to_vec();
    by_ack.sort_unstable_by_key(|s| s.1);
    sends.sort_unstable_by_key(|s| s.0);
    let mut found = Vec::new();
    let mut acked = by_ack.iter().peekable();
    let mut highest: Option<(i64, usize)> = None;
    for &(invoked, _, offset, id) in sends.iter() {
        while let Some(&&(_, ack_index, a_offset, a_id)) = acked.peek() {
            if ack_index >= invoked {
                break;
            }
            if highest.is_none_or(|(h, _)| a_offset > h) {
                highest = Some((a_offset, a_id));
            }
            acked.next();
        }
        if let Some((h, first)) = highest {
            if h > offset {
                found.push((first, id, h, offset));
            }
        }
    }
    found
}

/// Sends of one producer to one partition, taken in the order it sent them, whose acknowledged
/// offsets go down while the two were in flight together. An idempotent producer keeps its
/// order across retries, so this only runs for idempotent runs; pairs where the first was
/// acknowledged before the second was sent are `Reordered` instead.
pub(crate) fn nonmonotonic_sends(index: &Index) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ((process, _, partition), mut sends) in acked_sends(index) {
        sends.sort_unstable_by_key(|s| s.0);
        for pair in sends.windows(2) {
            let ((_, first_acked, first_offset, first), (second_invoked, _, second_offset, second)) =
                (pair[0], pair[1]);
            if second_offset < first_offset && first_acked > second_invoked {
                out.push(Anomaly::NonmonotonicSend {
                    process,
                    partition,
                    first_value: index.values[first].value.to_string(),
                    first_offset,
                    second_value: index.values[second].value.to_string(),
                    second_offset,
                });
            }
        }
    }
    out.sort_by_key(|a| match a {
        Anomaly::NonmonotonicSend { process, partition, second_offset, .. } => {
            (*partition, *process, *second_offset)
        }
        _ => (0, 0, 0),
    });
    out
}
