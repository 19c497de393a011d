//! The clean run, indeterminate sends, re-reads, counts, serde and a large history.

use super::{H, MS};
use crate::checker::{check, Anomaly, CheckOptions, Verdict};
use crate::history::{History, Op, OpKind, OpType};

#[test]
fn clean_run_is_ok_with_counts_and_summary() {
    let mut h = H::default();
    for p in 0..3 {
        for o in 0..10 {
            let v = format!("v{p}-{o}");
            h.send(p as u32, &v, p, o, (p as u64 * 100 + o as u64) * MS);
            h.read(10, &v, p, o, 1_000 * MS);
        }
    }
    let v = h.check();
    assert!(v.ok, "{:?}", v.anomalies);
    assert!(v.anomalies.is_empty());
    assert_eq!(
        (v.counts.sent_invoked, v.counts.acked, v.counts.failed, v.counts.indeterminate),
        (30, 30, 0, 0)
    );
    assert_eq!((v.counts.read, v.counts.distinct_read), (30, 30));
    assert_eq!(v.summary, "30 acknowledged, 30 read, 0 lost, 0 duplicated");
}

#[test]
fn indeterminate_sends_are_neither_lost_nor_phantom() {
    let mut h = H::default();
    h.send(1, "a", 0, 0, 0);
    h.invoke(1, "unread-info", MS).info(1, "unread-info", 2 * MS);
    h.invoke(1, "read-info", 3 * MS).info(1, "read-info", 4 * MS);
    h.invoke(1, "never-completed", 5 * MS);
    h.read(9, "a", 0, 0, 10 * MS).read(9, "read-info", 0, 1, 11 * MS);
    let v = h.check();
    assert!(v.ok, "{:?}", v.anomalies);
    assert_eq!((v.counts.sent_invoked, v.counts.acked, v.counts.indeterminate), (4, 1, 3));
    assert_eq!(v.counts.distinct_read, 2);
    assert!(v.summary.contains("3 indeterminate"), "{}", v.summary);
}

#[test]
fn rereading_one_offset_is_not_a_duplicate() {
    let mut h = H::default();
    h.send(1, "a", 0, 7, 0);
    // Three consumers see the same record after rebalances.
    h.read(8, "a", 0, 7, 10 * MS).read(9, "a", 0, 7, 11 * MS).read(10, "a", 0, 7, 12 * MS);
    let v = h.check();
    assert!(v.ok, "{:?}", v.anomalies);
    assert_eq!((v.counts.read, v.counts.distinct_read), (3, 1));
}

#[test]
fn verdict_round_trips_through_json() {
    let mut h = H::default();
    h.send(1, "lost", 2, 4, 0).send(1, "dup", 0, 1, MS).read(9, "dup", 0, 1, 5 * MS).read(
        9,
        "dup",
        0,
        2,
        6 * MS,
    );
    h.read(9, "ghost", 1, 0, 7 * MS);
    let v = h.check();
    assert_eq!(v.anomalies.len(), 3, "{:?}", v.anomalies);
    let json = serde_json::to_string(&v).unwrap();
    assert!(json.contains(r#""kind":"lost_write""#), "{json}");
    assert!(json.contains(r#""kind":"phantom_read""#), "{json}");
    let back: Verdict = serde_json::from_str(&json).unwrap();
    assert_eq!(back, v);
}

/// 4 producers x 12,500 values: invoke, ok, read and a re-read (~200,000 ops), with one lost
/// write (never read) and one duplicate (re-read at another offset) planted.
#[test]
fn large_history_is_checked_correctly() {
    let mut history = History::default();
    let op = |p: u32, ty, kind, v: &str, t: u64| Op::new(p, ty, kind, "t").value(v).time(t);
    let per_producer = 12_500i64;
    for i in 0..per_producer {
        for p in 0..4u32 {
            let v = format!("{p}-{i}");
            let t = (i as u64 * 4 + p as u64) * 1_000;
            history.push(op(p, OpType::Invoke, OpKind::Send, &v, t));
            history.push(op(p, OpType::Ok, OpKind::Send, &v, t + 500).at(p as i32, i));
            if p == 2 && i == 500 {
                continue;
            }
            history.push(op(10, OpType::Ok, OpKind::Poll, &v, t + 700).at(p as i32, i));
            let offset = if p == 3 && i == 900 { i + 100_000 } else { i };
            history.push(op(11, OpType::Ok, OpKind::Poll, &v, t + 800).at(p as i32, offset));
        }
    }
    assert_eq!(history.ops.len(), 199_998);
    let v = check(&history, &[], &CheckOptions::default());
    assert_eq!(v.counts.acked, 50_000);
    assert_eq!(v.counts.read, 99_998);
    assert_eq!(v.counts.distinct_read, 49_999);
    assert_eq!(
        v.anomalies,
        vec![
            Anomaly::LostWrite { value: "2-500".into(), partition: 2, offset: 500, acked_at_ns: 2_002_500 },
            Anomaly::Duplicate { value: "3-900".into(), partition: 3, offsets: vec![900, 100_900] },
        ]
    );
    assert!(!v.ok);
}
