//! One or more tests per anomaly kind, plus divergence and unavailability windows.

use super::{H, MS};
use crate::checker::{check, Anomaly, CheckOptions, ReplicaDigest, Window};
use crate::history::{Op, OpKind, OpType};

#[test]
fn lost_writes_with_offsets_and_summary_range() {
    let mut h = H::default();
    for o in 0..5 {
        h.send(1, &format!("v{o}"), 1, 40 + o, o as u64 * MS);
    }
    h.read(9, "v0", 1, 40, 10 * MS).read(9, "v1", 1, 41, 11 * MS);
    let v = h.check();
    assert!(!v.ok);
    assert_eq!(v.anomalies.len(), 3, "{:?}", v.anomalies);
    assert_eq!(
        v.anomalies[0],
        Anomaly::LostWrite { value: "v2".into(), partition: 1, offset: 42, acked_at_ns: 3 * MS }
    );
    assert_eq!(v.summary, "3 of 5 acknowledged writes lost (partition 1, offsets 42..44), 0 duplicated");
}

#[test]
fn read_only_before_the_final_drain_is_lost() {
    let mut h = H::default();
    h.send(1, "a", 0, 0, 0).send(1, "b", 0, 1, MS).read(9, "a", 0, 0, 2 * MS);
    let drain_from = h.h.ops.len() as u64;
    h.read(9, "b", 0, 1, 10 * MS);
    let opts = CheckOptions { final_reads_from_index: Some(drain_from), ..CheckOptions::default() };
    let v = check(&h.h, &[], &opts);
    assert_eq!(
        v.anomalies,
        vec![Anomaly::LostWrite { value: "a".into(), partition: 0, offset: 0, acked_at_ns: MS }]
    );
}

#[test]
fn duplicate_at_two_offsets() {
    let mut h = H::default();
    h.send(1, "a", 0, 5, 0).read(9, "a", 0, 3, 5 * MS).read(9, "a", 0, 5, 6 * MS).read(8, "a", 0, 5, 7 * MS);
    let v = h.check();
    assert_eq!(
        v.anomalies,
        vec![Anomaly::Duplicate { value: "a".into(), partition: 0, offsets: vec![3, 5] }]
    );
    assert!(v.summary.contains("1 value duplicated"), "{}", v.summary);
    // A non-idempotent producer may duplicate: listed, but the verdict stays ok.
    let lenient = check(&h.h, &[], &CheckOptions { expect_idempotent: false, ..CheckOptions::default() });
    assert!(lenient.ok);
    assert_eq!(lenient.anomalies.len(), 1);
}

#[test]
fn reordered_acks_of_one_producer() {
    let mut h = H::default();
    h.send(1, "a", 0, 5, 0).send(1, "b", 0, 3, 2 * MS);
    h.read(9, "b", 0, 3, 10 * MS).read(9, "a", 0, 5, 11 * MS);
    let v = h.check();
    assert_eq!(
        v.anomalies,
        vec![Anomaly::Reordered {
            partition: 0,
            first_value: "a".into(),
            second_value: "b".into(),
            first_offset: 5,
            second_offset: 3
        }]
    );
}

#[test]
fn overlapping_sends_or_other_producers_may_land_in_any_order() {
    let mut h = H::default();
    // In flight together: no order promised without idempotence (retries may reorder; with it,
    // see `group::idempotent_sends_in_flight_together_must_keep_their_order`).
    h.invoke(1, "a", 0).invoke(1, "b", MS).ok(1, "b", 0, 3, 2 * MS).ok(1, "a", 0, 5, 3 * MS);
    // Another producer's later send at a lower offset is fine too.
    h.send(2, "c", 0, 1, 10 * MS);
    for (v, o) in [("a", 5), ("b", 3), ("c", 1)] {
        h.read(9, v, 0, o, 20 * MS);
    }
    let opts = CheckOptions { expect_idempotent: false, ..CheckOptions::default() };
    let v = check(&h.h, &[], &opts);
    assert!(v.anomalies.is_empty(), "{:?}", v.anomalies);
}

#[test]
fn acked_at_one_offset_read_at_another() {
    let mut h = H::default();
    h.send(1, "a", 0, 5, 0).read(9, "a", 0, 6, 5 * MS);
    let v = h.check();
    assert_eq!(
        v.anomalies,
        vec![Anomaly::InconsistentOffset {
            value: "a".into(),
            partition: 0,
            acked_offset: Some(5),
            read_offset: 6,
            other_value: None
        }]
    );
}

#[test]
fn two_values_read_at_one_offset() {
    let mut h = H::default();
    h.send(1, "a", 0, 2, 0).invoke(1, "b", MS).info(1, "b", 2 * MS);
    h.read(9, "a", 0, 2, 5 * MS).read(8, "b", 0, 2, 6 * MS);
    let v = h.check();
    assert_eq!(
        v.anomalies,
        vec![Anomaly::InconsistentOffset {
            value: "b".into(),
            partition: 0,
            acked_offset: None,
            read_offset: 2,
            other_value: Some("a".into())
        }]
    );
}

#[test]
fn phantom_read_of_a_value_never_sent() {
    let mut h = H::default();
    h.send(1, "a", 0, 0, 0).read(9, "a", 0, 0, MS).read(9, "ghost", 0, 1, 2 * MS);
    let v = h.check();
    assert_eq!(v.anomalies, vec![Anomaly::PhantomRead { value: "ghost".into(), partition: 0, offset: 1 }]);
    assert!(v.summary.contains("1 phantom read"), "{}", v.summary);
}

#[test]
fn failed_send_that_is_read() {
    let mut h = H::default();
    h.invoke(1, "f", 0).fail(1, "f", MS).invoke(1, "g", 2 * MS).fail(1, "g", 3 * MS);
    h.read(9, "f", 0, 1, 5 * MS);
    let v = h.check();
    assert_eq!(v.counts.failed, 2);
    assert_eq!(v.anomalies, vec![Anomaly::FailedButPresent { value: "f".into(), partition: 0, offset: 1 }]);
}

fn digest(node: i32, partition: i32, end_offset: i64, crc32c: u32) -> ReplicaDigest {
    ReplicaDigest {
        node,
        topic: "t".into(),
        partition,
        high_watermark: end_offset,
        entries: end_offset as u64,
        end_offset,
        crc32c,
    }
}

#[test]
fn divergence_only_between_replicas_at_the_same_end_offset() {
    let digests = [
        digest(1, 0, 10, 0xAA),
        digest(2, 0, 10, 0xAA),
        digest(3, 0, 10, 0xBB),
        digest(4, 0, 8, 0xCC), // behind: not compared
        digest(1, 1, 10, 0x11),
        digest(2, 1, 7, 0x22), // behind on a healthy partition
        digest(3, 1, 10, 0x11),
    ];
    let v = check(&Default::default(), &digests, &CheckOptions::default());
    assert_eq!(
        v.anomalies,
        vec![Anomaly::ReplicaDivergence {
            topic: "t".into(),
            partition: 0,
            nodes: vec![(1, 0xAA, 10), (2, 0xAA, 10), (3, 0xBB, 10)]
        }]
    );
}

#[test]
fn unavailability_windows_from_send_completions() {
    let mut h = H::default();
    // Acks (invoke + 1 ms): p0 at 1, 501, 2001, 2201 ms; p1 at 201, 401, 601, 3001 ms. p1 takes
    // no send from 601 to 3000 ms (the partitioner's choice) but answers each in 1 ms: writable.
    for (i, (p, t)) in [(0, 0), (1, 200), (1, 400), (0, 500), (1, 600), (0, 2000), (0, 2200), (1, 3000)]
        .into_iter()
        .enumerate()
    {
        h.send(1, &format!("v{i}"), p, i as i64, t * MS);
        h.read(9, &format!("v{i}"), p, i as i64, 4000 * MS);
    }
    // Two sends to p2 wait out one outage (3100-4400 and 3300-4600 ms), a third waits 500 ms.
    h.invoke(2, "s0", 3100 * MS).invoke(3, "s1", 3300 * MS).ok(2, "s0", 2, 0, 4400 * MS);
    h.ok(3, "s1", 2, 1, 4600 * MS).invoke(2, "s2", 4700 * MS).ok(2, "s2", 2, 2, 5200 * MS);
    for (i, v) in ["s0", "s1", "s2"].into_iter().enumerate() {
        h.read(9, v, 2, i as i64, 6000 * MS);
    }
    let w = |partition: Option<i32>, start: u64, end: u64| Window {
        topic: partition.map(|_| super::TOPIC.to_string()),
        partition,
        start_ns: start * MS,
        end_ns: end * MS,
        duration_ns: (end - start) * MS,
    };
    let v = h.check();
    assert!(v.ok, "windows never fail a verdict: {:?}", v.anomalies);
    // Sorted by start; a partition's window only where a send to it waited.
    assert_eq!(v.unavailability, vec![w(None, 601, 2001), w(None, 3001, 4400), w(Some(2), 3100, 4600)]);
    let lenient =
        check(&h.h, &[], &CheckOptions { unavailability_threshold_ns: 3000 * MS, ..CheckOptions::default() });
    assert!(lenient.unavailability.is_empty());
}

#[test]
fn partition_windows_are_per_topic() {
    let mut h = H::default();
    // Partition 0 of topic t waits 1000-2500 ms, partition 0 of topic u 2000-3200 ms: two
    // outages of two partitions, not one joined 1000-3200 ms outage of "partition 0".
    h.invoke(1, "a", 1000 * MS).ok(1, "a", 0, 0, 2500 * MS);
    let mut u = |ty: OpType, t: u64| {
        let op = Op::new(2, ty, OpKind::Send, "u").value("b").time(t * MS);
        h.h.push(if ty == OpType::Ok { op.at(0, 0) } else { op });
    };
    u(OpType::Invoke, 2000);
    u(OpType::Ok, 3200);
    let spans: Vec<_> = h
        .check()
        .unavailability
        .into_iter()
        .filter_map(|w| Some((w.topic?, w.partition?, w.start_ns / MS, w.end_ns / MS)))
        .collect();
    assert_eq!(spans, vec![("t".to_string(), 0, 1000, 2500), ("u".to_string(), 0, 2000, 3200)]);
}

#[test]
fn outage_that_never_recovers_is_a_trailing_window() {
    let mut h = H::default();
    h.send(1, "a", 0, 0, 0).read(9, "a", 0, 0, MS);
    for i in 0..5u64 {
        let v = format!("f{i}");
        h.invoke(1, &v, (i + 1) * 1000 * MS).fail(1, &v, (i + 1) * 1000 * MS + MS);
    }
    let v = h.check();
    let ack = MS;
    let last = 5001 * MS;
    assert_eq!(
        v.unavailability,
        vec![Window { topic: None, partition: None, start_ns: ack, end_ns: last, duration_ns: last - ack }]
    );
}
