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
use crate::history::{History, Op, OpKind, OpType};

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
    let mut scan = Scan {
        records: present(history, final_reader),
        attempts: commit_attempts(history),
        committed: HashMap::new(),
        frontier: HashMap::new(),
        sessions: HashMap::new(),
        seen: HashSet::new(),
        found: Vec::new(),
    };
    for op in history.ops.iter().filter(|op| op.process != final_reader && op.op_type == OpType::Ok) {
        let Some(partition) = op.partition else { continue };
        let p = (op.topic.as_str(), partition);
        match op.kind {
            OpKind::Assign => scan.assign(op.process, p),
            OpKind::Commit => scan.commit(p, op),
            OpKind::Poll => scan.poll(p, op),
            OpKind::Send => {}
        }
    }
    let mut found = scan.found;
    if !scan.seen.is_empty() {
        found.extend(unseen(history, &scan.records, &scan.seen));
    }
    found
}

/// The group as the members' acknowledged ops tell it, in history order, and what it found.
struct Scan<'a> {
    records: BTreeMap<Tp<'a>, BTreeMap<i64, &'a str>>,
    attempts: Attempts<'a>,
    /// The highest acknowledged commit per partition, and when it was acknowledged.
    committed: HashMap<Tp<'a>, (i64, u64)>,
    /// The furthest offset the group has delivered per partition.
    frontier: HashMap<Tp<'a>, i64>,
    sessions: HashMap<(u32, Tp<'a>), Session>,
    /// Values some member received.
    seen: HashSet<&'a str>,
    found: Vec<Anomaly>,
}

impl<'a> Scan<'a> {
    /// An assignment starts a new session that must not resume below the commit known now.
    fn assign(&mut self, process: u32, p: Tp<'a>) {
        let session =
            Session { committed_before: self.committed.get(&p).copied(), assigned: true, last: None };
        self.sessions.insert((process, p), session);
    }

    fn commit(&mut self, p: Tp<'a>, op: &Op) {
        let Some(o) = op.offset else { return };
        let c = self.committed.entry(p).or_insert((o, op.time_ns));
        if o > c.0 {
            *c = (o, op.time_ns);
        }
    }

    fn poll(&mut self, p: Tp<'a>, op: &'a Op) {
        let (Some(o), Some(value)) = (op.offset, op.value.as_deref()) else { return };
        self.seen.insert(value);
        let s = self.sessions.entry((op.process, p)).or_default();
        let recs = self.records.get(&p).unwrap_or(&EMPTY);
        if let Some(a) = order_anomaly(s, &self.frontier, recs, p, op, o) {
            self.found.push(a);
        }
        if s.last.is_none() {
            self.found.extend(resumed_below_commit(s, &self.attempts, recs, p, op, o));
        }
        s.last = Some(o);
        let f = self.frontier.entry(p).or_insert(o);
        *f = (*f).max(o);
    }
}

/// No records: a partition the final reader found empty.
static EMPTY: BTreeMap<i64, &str> = BTreeMap::new();

/// A poll at offset `o` that goes back inside its session (nonmonotonic) or jumps over records
/// the log holds (skip), measured from where reading should have continued: this session's last
/// offset, or for a new session the furthest offset the group had delivered.
fn order_anomaly(
    s: &Session,
    frontier: &HashMap<Tp<'_>, i64>,
    recs: &BTreeMap<i64, &str>,
    p: Tp<'_>,
    op: &Op,
    o: i64,
) -> Option<Anomaly> {
    let (from, after_rebalance) = match s.last {
        Some(last) => (last, false),
        None => (frontier.get(&p).copied().unwrap_or(-1), true),
    };
    if let Some(last) = s.last.filter(|last| o <= *last) {
        return Some(Anomaly::NonmonotonicPoll {
            process: op.process,
            topic: op.topic.clone(),
            partition: p.1,
            previous_offset: last,
            offset: o,
            at_ns: op.time_ns,
        });
    }
    if o <= from + 1 {
        return None;
    }
    let skipped: Vec<(&i64, &&str)> = recs.range(from + 1..o).collect();
    let (first, first_value) = skipped.first()?;
    Some(Anomaly::PollSkip {
        process: op.process,
        topic: op.topic.clone(),
        partition: p.1,
        from_offset: from,
        to_offset: o,
        skipped: skipped.len() as u64,
        first_skipped: **first,
        first_value: first_value.to_string(),
        after_rebalance: after_rebalance && s.assigned,
        at_ns: op.time_ns,
    })
}

/// The first poll of a session at `o` below a commit acknowledged before its assignment,
/// unless a late commit attempt explains it (see [`late_attempt`]).
fn resumed_below_commit(
    s: &Session,
    attempts: &Attempts<'_>,
    recs: &BTreeMap<i64, &str>,
    p: Tp<'_>,
    op: &Op,
    o: i64,
) -> Option<Anomaly> {
    let late = |&(c, c_at): &(i64, u64)| late_attempt(attempts, p, (o, op.time_ns), c, c_at, recs).is_some();
    let (c, c_at) = s.committed_before.filter(|(c, _)| o < *c).filter(|b| !late(b))?;
    Some(Anomaly::CommittedOffsetBackwards {
        process: op.process,
        topic: op.topic.clone(),
        partition: p.1,
        committed: c,
        committed_at_ns: c_at,
        resumed_at: o,
        at_ns: op.time_ns,
    })
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
