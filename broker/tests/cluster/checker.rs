//! The end-to-end checker: every acknowledged value is read back exactly once, at the offset its
//! ack named, and per partition in send order. Values that were never acknowledged but were stored
//! anyway ("extra") are reported but are not errors; stored twice is.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{bail, Result};

use crate::clients::{Ack, Record};

#[derive(Debug, Default)]
pub struct Report {
    pub acked: usize,
    pub read: usize,
    pub lost: usize,
    pub dup: usize,
    /// Stored at another (partition, offset) than the ack said.
    pub misplaced: usize,
    /// (Partition, producer) pairs whose acked values were read in another order than sent.
    pub out_of_order: usize,
    /// Read values that were never acknowledged (not an error).
    pub extra: usize,
    pub examples: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.dup == 0 && self.misplaced == 0 && self.out_of_order == 0
    }

    pub fn line(&self, label: &str, took: Duration) -> String {
        format!(
            "[{label}] acked={} read={} lost={} dup={} misplaced={} out_of_order={} extra={} time={:.2}s",
            self.acked,
            self.read,
            self.lost,
            self.dup,
            self.misplaced,
            self.out_of_order,
            self.extra,
            took.as_secs_f64()
        )
    }

    /// Prints the summary line and fails if anything was lost, duplicated or reordered.
    pub fn assert_ok(&self, label: &str, took: Duration) -> Result<()> {
        println!("{}", self.line(label, took));
        if !self.ok() {
            bail!("{} — examples: {:?}", self.line(label, took), self.examples);
        }
        Ok(())
    }
}

/// `prefix` selects the values this check owns (a topic may hold other repetitions' values).
pub fn check(acks: &[Ack], read: &[Record], prefix: &str) -> Report {
    let mut r = Report { acked: acks.len(), ..Default::default() };
    let read: Vec<&Record> = read.iter().filter(|x| x.payload.starts_with(prefix)).collect();
    r.read = read.len();
    let mut copies: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
    for x in &read {
        copies.entry(x.payload.as_str()).or_default().push((x.partition, x.offset));
    }
    let note = |r: &mut Report, s: String| {
        if r.examples.len() < 8 {
            r.examples.push(s);
        }
    };
    for (payload, at) in &copies {
        if at.len() > 1 {
            r.dup += 1;
            note(&mut r, format!("dup {payload} at {at:?}"));
        }
    }
    let mut acked_by_partition: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for a in acks {
        acked_by_partition.entry(a.partition).or_default().push(a.payload.as_str());
        match copies.get(a.payload.as_str()) {
            None => {
                r.lost += 1;
                note(&mut r, format!("lost {} acked at p{}@{}", a.payload, a.partition, a.offset));
            }
            Some(at) if !at.contains(&(a.partition, a.offset)) => {
                r.misplaced += 1;
                note(
                    &mut r,
                    format!("{} acked at p{}@{} but stored at {at:?}", a.payload, a.partition, a.offset),
                );
            }
            Some(_) => {}
        }
    }
    let acked: std::collections::HashSet<&str> = acks.iter().map(|a| a.payload.as_str()).collect();
    r.extra = copies.keys().filter(|p| !acked.contains(*p)).count();
    // The order Kafka promises is each producer's send order (with idempotence, also across
    // retries), not the order delivery reports arrive in: librdkafka may report a retried batch
    // after a later one it had already seen acknowledged at a higher offset. Payloads are
    // `<producer>-<send index>`, so each producer's acked values are compared in send order.
    let mut by_producer: BTreeMap<(i32, &str), Vec<&str>> = BTreeMap::new();
    for (p, order) in &acked_by_partition {
        for v in order {
            by_producer.entry((*p, producer_of(v))).or_default().push(v);
        }
    }
    for ((p, producer), order) in &mut by_producer {
        order.sort_by_key(|v| send_index(v));
        let mut seen = std::collections::HashSet::new();
        let read_order: Vec<&str> = read
            .iter()
            .filter(|x| {
                x.partition == *p
                    && producer_of(&x.payload) == *producer
                    && acked.contains(x.payload.as_str())
                    && seen.insert(x.payload.as_str())
            })
            .map(|x| x.payload.as_str())
            .collect();
        let acked_present: Vec<&str> = order.iter().copied().filter(|x| copies.contains_key(x)).collect();
        if read_order != acked_present {
            r.out_of_order += 1;
            let i = read_order.iter().zip(&acked_present).position(|(a, b)| a != b).unwrap_or(0);
            note(
                &mut r,
                format!(
                    "p{p}: {producer}'s values read out of send order at index {i}: read {:?}, sent {:?}",
                    read_order.get(i),
                    acked_present.get(i)
                ),
            );
        }
    }
    r
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
        assert!(r.ok(), "{}", r.line("interleaved", Duration::ZERO));
        // One producer's later value stored before its earlier one: out of order.
        let acks = [ack("a-000001", 0, 0), ack("a-000000", 0, 1)];
        let read = [rec("a-000001", 0, 0), rec("a-000000", 0, 1)];
        let r = check(&acks, &read, "");
        assert_eq!((r.out_of_order, r.misplaced, r.lost), (1, 0, 0), "{:?}", r.examples);
    }
}
