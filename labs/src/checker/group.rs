//! Consumer-group anomalies (after Jepsen's Kafka test), for a group whose members record their
//! assignments (`assign`), acknowledged commits (`commit`) and polls, plus a final full read by
//! another reader that tells which offsets hold records.
//!
//! A *session* is one member's run on one partition: from an assignment to the next. Inside a
//! session a member reads forward without gaps; a new session starts at the group's committed
//! offset, which re-delivers (fine) but must never skip records or fall behind a commit that was
//! acknowledged before the assignment.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::anomaly::Anomaly;
use crate::history::{History, OpKind, OpType};

/// A partition of a topic: the group reads several topics in a multi-topic run, and partition 0
/// of one is not partition 0 of another.
type Tp<'a> = (&'a str, i32);

#[derive(Default)]
struct Session {
    last: Option<i64>,
    /// The highest commit of the partition acknowledged before this session's assignment.
    committed_before: Option<(i64, u64)>,
    /// Started by a recorded assignment (a rebalance), not just a member's first poll.
    assigned: bool,
}

/// Records at each (topic, partition, offset), from the final reader's polls.
fn present(history: &History, final_reader: u32) -> BTreeMap<Tp<'_>, BTreeMap<i64, &str>> {
    let mut out: BTreeMap<Tp<'_>, BTreeMap<i64, &str>> = BTreeMap::new();
    for op in &history.ops {
        if let (OpKind::Poll, OpType::Ok, true, Some(p), Some(o), Some(v)) =
            (op.kind, op.op_type, op.process == final_reader, op.partition, op.offset, op.value.as_deref())
        {
            out.entry((op.topic.as_str(), p)).or_default().insert(o, v);
        }
    }
    out
}

/// Poll-skip, nonmonotonic poll, committed offset going backwards and unseen writes, per
/// partition of each topic.
pub(crate) fn group_anomalies(history: &History, final_reader: u32) -> Vec<Anomaly> {
    let records = present(history, final_reader);
    let empty = BTreeMap::new();
    let mut committed: HashMap<Tp<'_>, (i64, u64)> = HashMap::new();
    let mut frontier: HashMap<Tp<'_>, i64> = HashMap::new();
    let mut sessions: HashMap<(u32, Tp<'_>), Session> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let mut found = Vec::new();
    for op in history.ops.iter().filter(|op| op.process != final_reader && op.op_type == OpType::Ok) {
        let Some(partition) = op.partition else { continue };
        let p = (op.topic.as_str(), partition);
        let topic = || op.topic.clone();
        match op.kind {
            OpKind::Assign => {
                let session =
                    Session { committed_before: committed.get(&p).copied(), assigned: true, last: None };
                sessions.insert((op.process, p), session);
            }
            OpKind::Commit => {
                let Some(o) = op.offset else { continue };
                let c = committed.entry(p).or_insert((o, op.time_ns));
                if o > c.0 {
                    *c = (o, op.time_ns);
                }
            }
            OpKind::Poll => {
                let (Some(o), Some(value)) = (op.offset, op.value.as_deref()) else { continue };
                seen.insert(value);
                let s = sessions.entry((op.process, p)).or_default();
                let recs = records.get(&p).unwrap_or(&empty);
                // Where reading should have continued from: this session's last offset, or for a
                // new session the furthest offset the group had delivered.
                let (from, after_rebalance) = match s.last {
                    Some(last) => (last, false),
                    None => (frontier.get(&p).copied().unwrap_or(-1), true),
                };
                if let Some(last) = s.last.filter(|last| o <= *last) {
                    found.push(Anomaly::NonmonotonicPoll {
                        process: op.process,
                        topic: topic(),
                        partition,
                        previous_offset: last,
                        offset: o,
                        at_ns: op.time_ns,
                    });
                } else if o > from + 1 {
                    let skipped: Vec<(&i64, &&str)> = recs.range(from + 1..o).collect();
                    if let Some((first, first_value)) = skipped.first() {
                        found.push(Anomaly::PollSkip {
                            process: op.process,
                            topic: topic(),
                            partition,
                            from_offset: from,
                            to_offset: o,
                            skipped: skipped.len() as u64,
                            first_skipped: **first,
                            first_value: first_value.to_string(),
                            after_rebalance: after_rebalance && s.assigned,
                            at_ns: op.time_ns,
                        });
                    }
                }
                if s.last.is_none() {
                    if let Some((c, c_at)) = s.committed_before.filter(|(c, _)| o < *c) {
                        found.push(Anomaly::CommittedOffsetBackwards {
                            process: op.process,
                            topic: topic(),
                            partition,
                            committed: c,
                            committed_at_ns: c_at,
                            resumed_at: o,
                            at_ns: op.time_ns,
                        });
                    }
                }
                s.last = Some(o);
                let f = frontier.entry(p).or_insert(o);
                *f = (*f).max(o);
            }
            OpKind::Send => {}
        }
    }
    if !seen.is_empty() {
        found.extend(unseen(history, &records, &seen));
    }
    found
}

/// Acknowledged values that are in the log (the final read found them) but that no group member
/// ever received.
fn unseen(
    history: &History,
    records: &BTreeMap<Tp<'_>, BTreeMap<i64, &str>>,
    seen: &HashSet<&str>,
) -> Vec<Anomaly> {
    let in_log: HashMap<&str, (Tp<'_>, i64)> =
        records.iter().flat_map(|(p, recs)| recs.iter().map(move |(o, v)| (*v, (*p, *o)))).collect();
    let mut out: Vec<Anomaly> = history
        .ops
        .iter()
        .filter(|op| op.kind == OpKind::Send && op.op_type == OpType::Ok)
        .filter_map(|op| {
            let value = op.value.as_deref()?;
            let ((topic, partition), offset) = *in_log.get(value)?;
            (!seen.contains(value)).then(|| Anomaly::Unseen {
                value: value.to_string(),
                topic: topic.to_string(),
                partition,
                offset,
                acked_at_ns: op.time_ns,
            })
        })
        .collect();
    out.sort_by(|a, b| match (a, b) {
        (
            Anomaly::Unseen { topic: t1, partition: p1, offset: o1, .. },
            Anomaly::Unseen { topic: t2, partition: p2, offset: o2, .. },
        ) => (t1, p1, o1).cmp(&(t2, p2, o2)),
        _ => std::cmp::Ordering::Equal,
    });
    out
}
