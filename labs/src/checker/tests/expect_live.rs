//! `matches` against expectations, and the live checker.

use super::{H, MS, TOPIC};
use crate::checker::{matches, Anomaly, Bound, Expectation, LiveChecker};
use crate::history::{Op, OpKind, OpType};

fn lossy_verdict() -> crate::checker::Verdict {
    let mut h = H::default();
    for o in 0..5 {
        h.send(1, &format!("v{o}"), 0, o, o as u64 * MS);
    }
    h.read(9, "v0", 0, 0, 10 * MS).read(9, "v1", 0, 1, 11 * MS).read(9, "ghost", 0, 9, 12 * MS);
    h.check()
}

#[test]
fn matches_none_some_any() {
    let v = lossy_verdict(); // 3 lost, 0 duplicated, 1 phantom read
    let expect = |lost, duplicates, other_anomalies| Expectation { lost, duplicates, other_anomalies };
    assert_eq!(matches(&v, &expect(Bound::Some, Bound::None, Bound::Any)), Ok(()));
    assert_eq!(matches(&v, &expect(Bound::Any, Bound::Any, Bound::Some)), Ok(()));
    let err = matches(&v, &Expectation::default()).unwrap_err();
    assert_eq!(
        err,
        "expected no lost writes (of 5 acknowledged), found 3; expected no other anomalies, found 1 (1 phantom read)"
    );
    let err = matches(&v, &expect(Bound::Some, Bound::Some, Bound::Any)).unwrap_err();
    assert_eq!(err, "expected some duplicated values, found 0");
}

#[test]
fn expectation_deserializes_from_strings() {
    let e: Expectation = serde_json::from_str(r#"{"lost":"some","duplicates":"any"}"#).unwrap();
    assert_eq!(e, Expectation { lost: Bound::Some, duplicates: Bound::Any, other_anomalies: Bound::None });
    assert!(serde_json::from_str::<Bound>(r#""maybe""#).is_err());
}

fn invoke(v: &str) -> Op {
    Op::new(1, OpType::Invoke, OpKind::Send, TOPIC).value(v)
}
fn ok(v: &str, p: i32, o: i64) -> Op {
    Op::new(1, OpType::Ok, OpKind::Send, TOPIC).value(v).at(p, o)
}
fn read(consumer: u32, v: &str, p: i32, o: i64) -> Op {
    Op::new(consumer, OpType::Ok, OpKind::Poll, TOPIC).value(v).at(p, o)
}

#[test]
fn live_duplicate_is_raised_when_the_second_offset_is_seen() {
    let mut live = LiveChecker::new();
    assert!(live.observe(&invoke("a")).is_empty());
    assert!(live.observe(&ok("a", 0, 3)).is_empty());
    assert!(live.observe(&read(8, "a", 0, 3)).is_empty());
    assert!(live.observe(&read(9, "a", 0, 3)).is_empty(), "re-read of one offset");
    assert_eq!(
        live.observe(&read(9, "a", 0, 7)),
        vec![Anomaly::Duplicate { value: "a".into(), partition: 0, offsets: vec![3, 7] }]
    );
    assert!(live.observe(&read(8, "a", 0, 7)).is_empty());
}

#[test]
fn live_phantom_and_failed_but_present() {
    let mut live = LiveChecker::new();
    assert_eq!(
        live.observe(&read(9, "ghost", 0, 0)),
        vec![Anomaly::PhantomRead { value: "ghost".into(), partition: 0, offset: 0 }]
    );
    // Fail known before the read...
    live.observe(&invoke("f"));
    assert!(live.observe(&Op::new(1, OpType::Fail, OpKind::Send, TOPIC).value("f")).is_empty());
    let present = Anomaly::FailedButPresent { value: "f".into(), partition: 0, offset: 1 };
    assert_eq!(live.observe(&read(9, "f", 0, 1)), vec![present]);
    // ...or the read arriving before the fail.
    live.observe(&invoke("g"));
    assert!(live.observe(&read(9, "g", 0, 2)).is_empty());
    let present = Anomaly::FailedButPresent { value: "g".into(), partition: 0, offset: 2 };
    assert_eq!(live.observe(&Op::new(1, OpType::Fail, OpKind::Send, TOPIC).value("g")), vec![present]);
}

#[test]
fn live_inconsistent_offsets() {
    let mut live = LiveChecker::new();
    for v in ["a", "b"] {
        live.observe(&invoke(v));
    }
    live.observe(&ok("a", 0, 5));
    // Read elsewhere: not yet certain (a later read at 5 would make it a duplicate instead).
    assert!(live.observe(&read(9, "a", 0, 6)).is_empty());
    // Offset 5 turns out to hold another value: now it is certain.
    assert_eq!(
        live.observe(&read(9, "b", 0, 5)),
        vec![Anomaly::InconsistentOffset {
            value: "a".into(),
            partition: 0,
            acked_offset: Some(5),
            read_offset: 6,
            other_value: None
        }]
    );
    // Two values at one offset is certain immediately.
    assert_eq!(
        live.observe(&read(8, "a", 0, 5)),
        vec![
            Anomaly::InconsistentOffset {
                value: "a".into(),
                partition: 0,
                acked_offset: Some(5),
                read_offset: 5,
                other_value: Some("b".into())
            },
            Anomaly::Duplicate { value: "a".into(), partition: 0, offsets: vec![5, 6] },
        ]
    );
}
