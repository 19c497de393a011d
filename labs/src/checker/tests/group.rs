//! Consumer-group anomalies: sessions from assignments, skips, backwards polls and commits, and
//! acknowledged writes the group never received; plus nonmonotonic sends.

use super::{H, MS};
use crate::checker::{check, Anomaly, CheckOptions};
use crate::history::{Op, OpKind, OpType};
use crate::workload::consumer::FINAL_READER;

fn group_opts() -> CheckOptions {
    CheckOptions { group_checks: true, ..CheckOptions::default() }
}

impl H {
    fn assign(&mut self, member: u32, partition: i32, t: u64) -> &mut H {
        let mut op = Op::new(member, OpType::Ok, OpKind::Assign, super::TOPIC).time(t);
        op.partition = Some(partition);
        self.h.push(op);
        self
    }

    fn commit_attempt(&mut self, member: u32, partition: i32, offset: i64, t: u64) -> &mut H {
        self.h.push(
            Op::new(member, OpType::Invoke, OpKind::Commit, super::TOPIC).time(t).at(partition, offset),
        );
        self
    }

    fn commit(&mut self, member: u32, partition: i32, offset: i64, t: u64) -> &mut H {
        self.h.push(Op::new(member, OpType::Ok, OpKind::Commit, super::TOPIC).time(t).at(partition, offset));
        self
    }

    /// Four acked values at offsets 0..4 of partition 0, all in the final read.
    fn log_of_four(&mut self) -> &mut H {
        for o in 0..4 {
            self.send(1, &format!("v{o}"), 0, o, o as u64 * MS);
        }
        for o in 0..4 {
            self.read(FINAL_READER, &format!("v{o}"), 0, o, 100 * MS);
        }
        self
    }

    fn group_anomalies(&self) -> Vec<Anomaly> {
        check(&self.h, &[], &group_opts()).anomalies
    }
}

#[test]
fn a_clean_rebalance_redelivers_and_that_is_fine() {
    let mut h = H::default();
    h.log_of_four();
    h.assign(100, 0, 10 * MS).read(100, "v0", 0, 0, 11 * MS).read(100, "v1", 0, 1, 12 * MS);
    h.commit(100, 0, 1, 13 * MS);
    // Member 101 takes over at the committed offset 1 and re-reads v1.
    h.assign(101, 0, 20 * MS).read(101, "v1", 0, 1, 21 * MS).read(101, "v2", 0, 2, 22 * MS);
    h.read(101, "v3", 0, 3, 23 * MS);
    assert_eq!(h.group_anomalies(), vec![]);
}

#[test]
fn skipping_records_within_an_assignment_and_after_a_rebalance() {
    let mut h = H::default();
    h.log_of_four();
    h.assign(100, 0, 10 * MS).read(100, "v0", 0, 0, 11 * MS).read(100, "v2", 0, 2, 12 * MS);
    h.assign(101, 0, 20 * MS).read(101, "v3", 0, 3, 21 * MS);
    let a = h.group_anomalies();
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(
        matches!(
            &a[0],
            Anomaly::PollSkip {
                process: 100,
                from_offset: 0,
                to_offset: 2,
                skipped: 1,
                first_skipped: 1,
                after_rebalance: false,
                ..
            }
        ),
        "{a:?}"
    );
    // 101 began at 3, right after the 2 the group had delivered: no skip there. v1 stays unseen.
    assert!(matches!(&a[1], Anomaly::Unseen { value, offset: 1, .. } if value == "v1"), "{a:?}");
    assert_eq!(
        a[0].explain(),
        "poll skip: at 00:00:00.012 member 100 read partition 0 of t offset 2 right after offset 0, skipping 1 \
         record(s) the log holds, the first at offset 1 (v1)"
    );
}

#[test]
fn a_new_assignment_that_starts_beyond_the_group_is_a_skip_after_a_rebalance() {
    let mut h = H::default();
    h.log_of_four();
    h.assign(100, 0, 10 * MS).read(100, "v0", 0, 0, 11 * MS);
    h.assign(101, 0, 20 * MS).read(101, "v2", 0, 2, 21 * MS).read(101, "v3", 0, 3, 22 * MS);
    h.read(100, "v1", 0, 1, 5 * MS); // seen by someone, so not unseen
    let a = h.group_anomalies();
    assert!(
        a.iter().any(|a| matches!(
            a,
            Anomaly::PollSkip { process: 101, from_offset: 0, to_offset: 2, after_rebalance: true, .. }
        )),
        "{a:?}"
    );
}

#[test]
fn reading_backwards_without_a_rebalance_is_nonmonotonic() {
    let mut h = H::default();
    h.log_of_four();
    h.assign(100, 0, 10 * MS);
    for (v, o) in [("v0", 0), ("v1", 1), ("v2", 2), ("v1", 1), ("v2", 2), ("v3", 3)] {
        h.read(100, v, 0, o, (20 + o as u64) * MS);
    }
    let a = h.group_anomalies();
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(matches!(a[0], Anomaly::NonmonotonicPoll { process: 100, previous_offset: 2, offset: 1, .. }));
}

#[test]
fn resuming_below_an_acknowledged_commit_is_a_commit_gone_backwards() {
    let mut h = H::default();
    h.log_of_four();
    h.assign(100, 0, 10 * MS).read(100, "v0", 0, 0, 11 * MS).read(100, "v1", 0, 1, 12 * MS);
    h.read(100, "v2", 0, 2, 13 * MS).commit(100, 0, 3, 14 * MS);
    h.assign(101, 0, 20 * MS).read(101, "v1", 0, 1, 21 * MS).read(101, "v2", 0, 2, 22 * MS);
    h.read(101, "v3", 0, 3, 23 * MS);
    let a = h.group_anomalies();
    assert_eq!(a.len(), 1, "{a:?}");
    assert!(matches!(
        a[0],
        Anomaly::CommittedOffsetBackwards { process: 101, committed: 3, resumed_at: 1, .. }
    ));
    // A commit acknowledged only after the assignment does not count (it raced the rebalance).
    let mut h = H::default();
    h.log_of_four();
    h.assign(100, 0, 10 * MS).read(100, "v0", 0, 0, 11 * MS).read(100, "v1", 0, 1, 12 * MS);
    h.read(100, "v2", 0, 2, 13 * MS).read(100, "v3", 0, 3, 14 * MS);
    h.assign(101, 0, 20 * MS).commit(100, 0, 3, 21 * MS).read(101, "v1", 0, 1, 22 * MS);
    assert_eq!(h.group_anomalies(), vec![]);
}

/// Seen in a chaos run (seed 7): member 102 asked to commit 79945 (async), then 80122 (sync,
/// acknowledged); librdkafka re-sent the 79945 request after the coordinator had answered it
/// badly once, the broker applied it last, and the next owner resumed at 79945. Kafka applies
/// commits in arrival order, so that is re-delivery the protocol allows, not a lost commit.
#[test]
fn an_earlier_commit_landing_after_a_newer_one_is_not_a_commit_gone_backwards() {
    let late = |acked_before_newer: bool| {
        let mut h = H::default();
        h.log_of_four();
        h.assign(100, 0, 10 * MS).read(100, "v0", 0, 0, 11 * MS).commit_attempt(100, 0, 1, 12 * MS);
        if acked_before_newer {
            h.commit(100, 0, 1, 13 * MS);
        }
        h.read(100, "v1", 0, 1, 14 * MS).read(100, "v2", 0, 2, 15 * MS);
        h.commit_attempt(100, 0, 3, 16 * MS).commit(100, 0, 3, 17 * MS);
        h.assign(101, 0, 20 * MS).read(101, "v1", 0, 1, 21 * MS).read(101, "v2", 0, 2, 22 * MS);
        h.read(101, "v3", 0, 3, 23 * MS);
        h.group_anomalies()
    };
    assert_eq!(late(false), vec![], "the attempt at 1 was never answered: it may have landed last");
    let a = late(true);
    assert_eq!(
        a.len(),
        1,
        "an attempt answered before the newer commit was sent cannot land after it: {a:?}"
    );
    assert!(matches!(a[0], Anomaly::CommittedOffsetBackwards { committed: 3, resumed_at: 1, .. }));
}

#[test]
fn group_checks_are_off_unless_asked() {
    let mut h = H::default();
    h.log_of_four();
    h.read(100, "v0", 0, 0, 11 * MS).read(100, "v3", 0, 3, 12 * MS);
    assert_eq!(h.check().anomalies, vec![]);
    assert_eq!(h.group_anomalies().len(), 3, "one skip over v1 and v2, and both unseen");
}

#[test]
fn idempotent_sends_in_flight_together_must_keep_their_order() {
    let mut h = H::default();
    // a and b in flight together; b lands before a.
    h.invoke(1, "a", 0).invoke(1, "b", MS).ok(1, "b", 0, 5, 2 * MS).ok(1, "a", 0, 6, 3 * MS);
    h.read(9, "a", 0, 6, 10 * MS).read(9, "b", 0, 5, 10 * MS);
    let v = h.check();
    assert_eq!(v.anomalies.len(), 1, "{:?}", v.anomalies);
    assert!(matches!(&v.anomalies[0], Anomaly::NonmonotonicSend { first_offset: 6, second_offset: 5, .. }));
    let not_idempotent = CheckOptions { expect_idempotent: false, ..CheckOptions::default() };
    assert_eq!(
        check(&h.h, &[], &not_idempotent).anomalies,
        vec![],
        "retries may reorder without idempotence"
    );
}

/// Two topics whose partitions share numbers and offsets: each is judged on its own, and the
/// verdict counts per topic.
#[test]
fn several_topics_are_judged_per_topic_partition_and_counted_per_topic() {
    let mut h = H::default();
    let op = |process, ty, kind, topic: &str, value: &str, t| {
        Op::new(process, ty, kind, topic).value(value).time(t)
    };
    // Both topics: values at offsets 0..3 of partition 0, in the final read.
    for (topic, prefix) in [("a", "x"), ("b", "y")] {
        for o in 0..3i64 {
            let v = format!("{prefix}{o}");
            h.h.push(op(1, OpType::Invoke, OpKind::Send, topic, &v, o as u64 * MS));
            h.h.push(op(1, OpType::Ok, OpKind::Send, topic, &v, o as u64 * MS + 1).at(0, o));
            h.h.push(op(FINAL_READER, OpType::Ok, OpKind::Poll, topic, &v, 100 * MS).at(0, o));
        }
    }
    // Topic a lost x3 (acknowledged at offset 3, not in the final read).
    h.h.push(op(1, OpType::Invoke, OpKind::Send, "a", "x3", 5 * MS));
    h.h.push(op(1, OpType::Ok, OpKind::Send, "a", "x3", 6 * MS).at(0, 3));
    // Member 100 holds partition 0 of both topics and reads them interleaved: offsets that go
    // back and forth across topics are fine; only topic b skips (y0, then y2).
    let mut assign = |topic: &str, t| {
        let mut a = Op::new(100, OpType::Ok, OpKind::Assign, topic).time(t);
        a.partition = Some(0);
        h.h.push(a);
    };
    assign("a", 10 * MS);
    assign("b", 10 * MS);
    for (topic, v, o, t) in
        [("a", "x0", 0, 11), ("b", "y0", 0, 12), ("a", "x1", 1, 13), ("b", "y2", 2, 14), ("a", "x2", 2, 15)]
    {
        h.h.push(op(100, OpType::Ok, OpKind::Poll, topic, v, t * MS).at(0, o));
    }
    let v = check(&h.h, &[], &group_opts());
    let kinds: Vec<String> = v.anomalies.iter().map(|a| a.label().to_string()).collect();
    assert_eq!(kinds, ["lost write", "poll skip", "unseen write"], "{:?}", v.anomalies);
    assert!(
        matches!(&v.anomalies[1], Anomaly::PollSkip { topic, from_offset: 0, to_offset: 2, .. } if topic == "b"),
        "{:?}",
        v.anomalies
    );
    assert!(
        v.anomalies[1].explain().contains("read partition 0 of b offset 2"),
        "{}",
        v.anomalies[1].explain()
    );
    assert!(matches!(&v.anomalies[2], Anomaly::Unseen { topic, value, .. } if topic == "b" && value == "y1"));
    let a = &v.by_topic["a"];
    let b = &v.by_topic["b"];
    assert_eq!((a.acked, a.lost, a.duplicates, a.other), (4, 1, 0, 0));
    assert_eq!((b.acked, b.lost, b.duplicates, b.other), (3, 0, 0, 2));
}
