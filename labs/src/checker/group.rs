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
    let attempts = commit_attempts(history);
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
                    let late = |&(c, c_at): &(i64, u64)| {
                        late_attempt(&attempts, p, (o, op.time_ns), c, c_at, recs).is_some()
                    };
                    if let Some((c, c_at)) = s.committed_before.filter(|(c, _)| o < *c).filter(|b| !late(b)) {
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

/// Every commit a member asked for, per partition: (offset, when it was asked, when it was
/// acknowledged if it was). Histories recorded before attempts were recorded have none.
type Attempts<'a> = HashMap<Tp<'a>, Vec<(i64, u64, Option<u64>)>>;

fn commit_attempts(history: &History) -> Attempts<'_> {
    let mut out: Attempts<'_> = HashMap::new();
    for op in history.ops.iter().filter(|op| op.kind == OpKind::Commit) {
        let (Some(p), Some(o)) = (op.partition, op.offset) else { continue };
        let list = out.entry((op.topic.as_str(), p)).or_default();
        match op.op_type {
            OpType::Invoke => list.push((o, op.time_ns, None)),
            OpType::Ok => {
                if let Some(a) = list.iter_mut().rev().find(|a| a.0 == o && a.2.is_none()) {
                    a.2 = Some(op.time_ns);
                }
            }
            _ => {}
        }
    }
    out
}

/// Kafka applies commits in the order they arrive, and librdkafka re-sends a commit whose answer
/// it did not get (coordinator moved, connection lost) — possibly after a newer commit was
/// acknowledged. A member resuming at `resumed` below the acknowledged `committed` is then the
/// protocol working as specified, not the broker losing a commit, when some member asked (before
/// the resuming poll) to commit `resumed` (or an offset with no record before `resumed`) and that
/// attempt was not acknowledged before `committed` was asked for, so it may have landed last.
/// Returns when that attempt was asked for.
fn late_attempt(
    attempts: &Attempts<'_>,
    p: Tp<'_>,
    (resumed, resumed_ns): (i64, u64),
    committed: i64,
    committed_at: u64,
    records: &BTreeMap<i64, &str>,
) -> Option<u64> {
    let list = attempts.get(&p)?;
    let committed_asked = list
        .iter()
        .filter(|a| a.0 == committed && a.1 <= committed_at)
        .map(|a| a.1)
        .max()
        .unwrap_or(committed_at);
    list.iter()
        .filter(|(a, asked, _)| *a <= resumed && *asked < resumed_ns)
        .filter(|(a, _, _)| records.range(*a..resumed).next().is_none())
        .find(|(_, _, acked)| acked.is_none_or(|t| t >= committed_asked))
        .map(|a| a.1)
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
