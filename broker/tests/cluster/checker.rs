//! The end-to-end check of the cluster tests, done by the lab's checker (`labs::checker`, the one
//! the drills and chaos runs use): every acknowledged value is read back exactly once, at the
//! offset its ack named, and each producer's values are stored in its send order. Values read
//! but never acknowledged (a send the test saw fail or time out) are indeterminate sends, not
//! errors; stored twice is.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use anyhow::{bail, Result};
use labs::checker::{self, CheckOptions, Verdict};
use labs::history::{History, Op, OpKind, OpType};

use crate::clients::{Ack, Record};

/// One topic name for the history: the tests check one topic at a time.
const TOPIC: &str = "checked";
/// The process id of the reader (producers get 0, 1, ... by name).
const READER: u32 = u32::MAX;

pub struct Report {
    verdict: Verdict,
}

impl Report {
    pub fn line(&self, label: &str, took: Duration) -> String {
        format!("[{label}] {} time={:.2}s", self.verdict.summary, took.as_secs_f64())
    }

    /// Prints the summary line and fails with the first anomalies explained if anything was
    /// lost, duplicated, misplaced or reordered.
    pub fn assert_ok(&self, label: &str, took: Duration) -> Result<()> {
        println!("{}", self.line(label, took));
        if !self.verdict.ok {
            let examples: Vec<String> = self.verdict.anomalies.iter().take(8).map(|a| a.explain()).collect();
            bail!("{} — examples: {examples:#?}", self.line(label, took));
        }
        Ok(())
    }
}

/// `prefix` selects the values this check owns (a topic may hold other repetitions' values).
/// Payloads are `<producer>-<send index>`: the history takes each producer's sends in that order.
pub fn check(acks: &[Ack], read: &[Record], prefix: &str) -> Report {
    let read: Vec<&Record> = read.iter().filter(|x| x.payload.starts_with(prefix)).collect();
    let acked: HashSet<&str> = acks.iter().map(|a| a.payload.as_str()).collect();
    let mut producers: BTreeMap<String, u32> = BTreeMap::new();
    let mut process_of = |payload: &str| {
        let next = producers.len() as u32;
        *producers.entry(producer_of(payload).to_string()).or_insert(next)
    };
    let mut history = History::default();
    // Every send is invoked before any is acknowledged: the tests keep many in flight and do
    // not record when each was sent, so no order between acks is assumed, only the send order
    // of each producer (which an idempotent producer keeps across retries).
    let mut sends: Vec<&Ack> = acks.iter().collect();
    sends.sort_by_key(|a| (producer_of(&a.payload), send_index(&a.payload)));
    for a in &sends {
        history.push(
            Op::new(process_of(&a.payload), OpType::Invoke, OpKind::Send, TOPIC).value(&a.payload).time(0),
        );
    }
    // Each value read but never acknowledged, once, in a fixed order (the history is reproducible).
    let unacked: BTreeSet<&str> =
        read.iter().map(|r| r.payload.as_str()).filter(|p| !acked.contains(p)).collect();
    for p in unacked {
        history.push(Op::new(process_of(p), OpType::Invoke, OpKind::Send, TOPIC).value(p).time(0));
    }
    let t0 = acks.iter().map(|a| a.at).min();
    for a in &sends {
        let ns = t0.map_or(0, |t0| a.at.duration_since(t0).as_nanos() as u64) + 1;
        history.push(
            Op::new(process_of(&a.payload), OpType::Ok, OpKind::Send, TOPIC)
                .value(&a.payload)
                .at(a.partition, a.offset)
                .time(ns),
        );
    }
    for r in &read {
        history.push(
            Op::new(READER, OpType::Ok, OpKind::Poll, TOPIC).value(&r.payload).at(r.partition, r.offset),
        );
    }
    let opts = CheckOptions { expect_idempotent: true, ..CheckOptions::default() };
    Report { verdict: checker::check(&history, &[], &opts) }
}

/// The send index a payload ends with (`<producer>-<i>`); payloads without one keep their place.
fn send_index(payload: &str) -> Option<u64> {
    payload.rsplit('-').next().and_then(|i| i.parse().ok())
}

/// The producer part of a payload: everything before its send index.
fn producer_of(payload: &str) -> &str {
    payload.rsplit_once('-').map_or(payload, |(producer, _)| producer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(p: &str, partition: i32, offset: i64) -> Ack {
        Ack { partition, offset, payload: p.into(), at: std::time::Instant::now() }
    }
    fn rec(p: &str, partition: i32, offset: i64) -> Record {
        Record { partition, offset, payload: p.into() }
    }

    #[test]
    fn order_is_per_producer_send_order_not_report_order() {
        // Two producers interleaved in the log, reports in another order: in order.
        let acks = [ack("b-000000", 0, 1), ack("a-000001", 0, 2), ack("a-000000", 0, 0)];
        let read = [rec("a-000000", 0, 0), rec("b-000000", 0, 1), rec("a-000001", 0, 2)];
        let r = check(&acks, &read, "");
        assert!(r.verdict.ok, "{}", r.line("interleaved", Duration::ZERO));
        // One producer's later value stored before its earlier one: out of order.
        let acks = [ack("a-000001", 0, 0), ack("a-000000", 0, 1)];
        let read = [rec("a-000001", 0, 0), rec("a-000000", 0, 1)];
        let r = check(&acks, &read, "");
        assert!(!r.verdict.ok, "a reordering passed: {}", r.line("reordered", Duration::ZERO));
    }

    #[test]
    fn lost_duplicated_and_misplaced_values_fail_and_unacked_ones_do_not() {
        let acks = [ack("a-000000", 0, 0), ack("a-000001", 0, 1), ack("a-000002", 0, 2)];
        // a-1 lost, a-2 stored at another offset and twice, a-3 never acknowledged.
        let read =
            [rec("a-000000", 0, 0), rec("a-000002", 0, 3), rec("a-000002", 0, 4), rec("a-000003", 0, 5)];
        let r = check(&acks, &read, "");
        let kinds: HashSet<String> = r.verdict.anomalies.iter().map(|a| a.kind().to_string()).collect();
        for kind in ["lost_write", "duplicate", "inconsistent_offset"] {
            assert!(kinds.contains(kind), "{kind} not found in {kinds:?}");
        }
        let clean = check(&acks[..1], &[rec("a-000000", 0, 0), rec("a-000003", 0, 1)], "");
        assert!(
            clean.verdict.ok,
            "an unacknowledged value failed: {}",
            clean.line("unacked", Duration::ZERO)
        );
    }
}
