//! The end-to-end check of the single-node tests, done by the lab's checker (`labs::checker`, the
//! one the drills, the benches and the cluster tests use): every acknowledged value is read back
//! exactly once, where its ack put it, and nothing is read that the test did not send. Sends the
//! test saw fail or time out (around a kill, a failing disk) are indeterminate: stored or not,
//! both are fine, but never twice.
//!
//! The cluster tests have their own adapter (tests/cluster/checker.rs) because their producers
//! are idempotent and their acks carry times: they also judge each producer's send order. These
//! tests' producers are not idempotent and they claim nothing about order beyond the offsets
//! their acks name, so each send here is its own process.

use anyhow::{bail, Result};
use labs::checker::{self, CheckOptions, Verdict};
use labs::history::{History, Op, OpKind, OpType};

use crate::clients::{Ack, Record};

/// One topic name for the history: each test checks one topic at a time.
const TOPIC: &str = "checked";
/// The process id of the reader (sends get 0, 1, ...).
const READER: u32 = u32::MAX;

pub struct Report {
    verdict: Verdict,
}

impl Report {
    pub fn line(&self, label: &str) -> String {
        format!("[{label}] {}", self.verdict.summary)
    }

    /// Prints the summary line and fails with the first anomalies explained if anything
    /// acknowledged was lost or misplaced, or anything was stored twice or never sent.
    pub fn assert_ok(&self, label: &str) -> Result<()> {
        self.assert_ok_or(label, String::new)
    }

    /// `assert_ok`, adding `detail()` (broker stderr, recovery report) to the failure.
    pub fn assert_ok_or(&self, label: &str, detail: impl FnOnce() -> String) -> Result<()> {
        println!("{}", self.line(label));
        if !self.verdict.ok {
            let examples: Vec<String> = self.verdict.anomalies.iter().take(10).map(|a| a.explain()).collect();
            bail!("{} — examples: {examples:#?}\n{}", self.line(label), detail());
        }
        Ok(())
    }
}

/// Judges the acknowledged sends `acks` and the `indeterminate` payloads (sent, outcome unknown)
/// against `read`, everything read back from the test's topic.
///
/// An ack without an offset (acks=0 reports -1) still names its partition, but the checker places
/// an ack by its offset alone; such a value is therefore checked under its partition's name
/// (`<payload> on p<partition>`, in the ack and in every read of it), so one read from another
/// partition is a lost write plus a phantom read rather than passing.
pub fn check<'a>(
    acks: &[Ack],
    indeterminate: &[String],
    read: impl IntoIterator<Item = &'a Record>,
) -> Report {
    let unplaced: std::collections::HashSet<&str> =
        acks.iter().filter(|a| a.offset < 0).map(|a| a.payload.as_str()).collect();
    let value = |payload: &str, partition: i32| {
        if unplaced.contains(payload) {
            format!("{payload} on p{partition}")
        } else {
            payload.to_string()
        }
    };
    let mut history = History::default();
    // Every send is invoked before any completes: no order between sends is claimed.
    for (process, a) in acks.iter().enumerate() {
        let op = Op::new(process as u32, OpType::Invoke, OpKind::Send, TOPIC);
        history.push(op.value(value(&a.payload, a.partition)).time(0));
    }
    let unknown = || indeterminate.iter().enumerate().map(|(i, p)| ((acks.len() + i) as u32, p));
    for (process, p) in unknown() {
        history.push(Op::new(process, OpType::Invoke, OpKind::Send, TOPIC).value(p).time(0));
    }
    for (process, a) in acks.iter().enumerate() {
        let op = Op::new(process as u32, OpType::Ok, OpKind::Send, TOPIC);
        history.push(op.value(value(&a.payload, a.partition)).at(a.partition, a.offset).time(0));
    }
    for (process, p) in unknown() {
        history.push(Op::new(process, OpType::Info, OpKind::Send, TOPIC).value(p).time(0));
    }
    for r in read {
        let op = Op::new(READER, OpType::Ok, OpKind::Poll, TOPIC);
        history.push(op.value(value(&r.payload, r.partition)).at(r.partition, r.offset).time(0));
    }
    // A value stored twice fails the verdict (`expect_idempotent`; with one process per send it
    // adds no order check). The producers are not idempotent, but none of these tests expects a
    // send to be written twice: the by-hand SIGTERM check already failed on it.
    let opts = CheckOptions { expect_idempotent: true, ..CheckOptions::default() };
    Report { verdict: checker::check(&history, &[], &opts) }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn ack(p: &str, partition: i32, offset: i64) -> Ack {
        Ack { partition, offset, payload: p.into() }
    }
    fn rec(p: &str, partition: i32, offset: i64) -> Record {
        Record { partition, offset, key: String::new(), payload: p.into() }
    }
    fn kinds(r: &Report) -> HashSet<String> {
        r.verdict.anomalies.iter().map(|a| a.kind().to_string()).collect()
    }

    #[test]
    fn lost_misplaced_duplicated_and_phantom_values_fail() {
        let acks = [ack("a", 0, 0), ack("b", 0, 1), ack("c", 1, 0), ack("d", 1, 1)];
        // b lost, c read at another offset, d stored twice, e never sent.
        let read = [rec("a", 0, 0), rec("c", 1, 2), rec("d", 1, 1), rec("d", 1, 3), rec("e", 0, 2)];
        let r = check(&acks, &[], &read);
        assert!(!r.verdict.ok);
        for kind in ["lost_write", "inconsistent_offset", "duplicate", "phantom_read"] {
            assert!(kinds(&r).contains(kind), "{kind} not found in {:?}", kinds(&r));
        }
        // Another value at an acknowledged offset.
        let r = check(&acks[..1], &[], &[rec("z", 0, 0)]);
        assert!(kinds(&r).contains("lost_write") && kinds(&r).contains("phantom_read"), "{:?}", kinds(&r));
    }

    #[test]
    fn indeterminate_values_may_be_read_or_not_but_not_twice() {
        let acks = [ack("a", 0, 0)];
        let unknown = ["u".to_string(), "v".to_string()];
        let r = check(&acks, &unknown, &[rec("a", 0, 0), rec("u", 0, 1)]);
        assert!(r.verdict.ok, "{}", r.line("indeterminate"));
        let r = check(&acks, &unknown, &[rec("a", 0, 0), rec("u", 0, 1), rec("u", 0, 2)]);
        assert!(!r.verdict.ok, "a duplicate passed: {}", r.line("twice"));
        // An acknowledged value is not indeterminate: missing, it is lost.
        let r = check(&acks, &unknown, &[rec("u", 0, 1)]);
        assert!(kinds(&r).contains("lost_write"), "{}", r.line("lost"));
    }

    #[test]
    fn an_ack_without_offset_is_checked_on_its_partition() {
        let acks = [ack("a", 0, -1), ack("b", 1, -1)];
        let r = check(&acks, &[], &[rec("a", 0, 7), rec("b", 1, 0)]);
        assert!(r.verdict.ok, "{}", r.line("placed"));
        let r = check(&acks, &[], &[rec("a", 0, 7), rec("b", 2, 0)]);
        assert!(
            kinds(&r).contains("lost_write") && kinds(&r).contains("phantom_read"),
            "a value read on another partition passed: {}",
            r.line("misplaced")
        );
        let r = check(&acks, &[], &[rec("a", 0, 7), rec("b", 1, 0), rec("b", 1, 1)]);
        assert!(!r.verdict.ok, "a duplicate passed: {}", r.line("twice"));
    }
}
