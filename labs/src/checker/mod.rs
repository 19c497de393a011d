//! The checker: judges a run's history (plus replica digests) against Kafka's delivery promises.
//!
//! - [`check`] is the pure, whole-history form used for the verdict of a run.
//! - [`LiveChecker`] is fed op by op during a run and raises what is already certain.
//! - [`matches`] compares a verdict with what a drill expects (some drills expect loss).
//!
//! Semantics: a send `ok` is acknowledged and must be read; `info` is indeterminate (read or not,
//! both fine); `fail` must never be read. Reads are `poll ok` ops carrying value, partition and
//! offset; re-reading one offset is fine, one value at two offsets is a duplicate.
//!
//! Layout: `index` (shared per-value ingest), `batch` (whole-history sweeps), `group`
//! (consumer-group sessions: poll-skip, nonmonotonic poll, committed offsets, unseen), `windows`
//! (unavailability), `divergence` (replica digests), `anomaly` (the anomaly type), `kind` (its
//! kind without data, [`AnomalyKind`]), `explain` (each anomaly in one sentence), `summary` (the
//! one-sentence verdict), `expect` ([`Expectation`], [`matches`]), `live` ([`LiveChecker`]),
//! `topics` (the counts per topic).

mod anomaly;
mod batch;
mod divergence;
mod expect;
mod explain;
mod group;
mod index;
mod kind;
mod live;
mod summary;
mod topics;
mod windows;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::history::History;

pub use anomaly::{duplicate_count, lost_count, other_count, Anomaly};
pub use expect::{matches, Bound, Expectation};
pub use explain::clock;
pub use kind::AnomalyKind;
pub use live::LiveChecker;
pub use topics::TopicCounts;

/// Checksum of one replica's log for one partition, as reported by a broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDigest {
    pub node: i32,
    pub topic: String,
    pub partition: i32,
    pub high_watermark: i64,
    pub entries: u64,
    pub end_offset: i64,
    pub crc32c: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckOptions {
    /// Gaps between successful send completions longer than this are unavailability windows.
    pub unavailability_threshold_ns: u64,
    /// The producer ran with `enable.idempotence=true`. When false, duplicates are still listed
    /// (a drill can expect them) but do not fail the verdict: at-least-once permits them.
    pub expect_idempotent: bool,
    /// History index where the run's final drain starts. An acked value read only before it
    /// (then gone, e.g. truncated after a power cut) counts as lost. None: every read counts.
    pub final_reads_from_index: Option<u64>,
    /// The consumers were one churning group that recorded assignments and commits
    /// (`workload::group`): check poll-skip, nonmonotonic poll, committed offsets and unseen
    /// writes too. Without recorded assignments a rebalance re-delivery would look like a
    /// nonmonotonic poll, so these checks need them.
    pub group_checks: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            unavailability_threshold_ns: 1_000_000_000,
            expect_idempotent: true,
            final_reads_from_index: None,
            group_checks: false,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Counts {
    /// Distinct values whose send was invoked.
    pub sent_invoked: u64,
    pub acked: u64,
    pub failed: u64,
    /// `info` completions plus sends never completed.
    pub indeterminate: u64,
    /// Successful poll ops (re-reads included).
    pub read: u64,
    /// Distinct values read.
    pub distinct_read: u64,
}

/// A period without successful sends; `partition` None means on every partition at once, else
/// that partition of `topic` (runs over several topics have a partition 0 in each).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Window {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub start_ns: u64,
    pub end_ns: u64,
    pub duration_ns: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct Verdict {
    /// No anomaly the configured guarantees forbid. Unavailability never fails a verdict.
    pub ok: bool,
    pub summary: String,
    pub counts: Counts,
    pub anomalies: Vec<Anomaly>,
    pub unavailability: Vec<Window>,
    /// Acknowledged, lost, duplicated and other anomalies per topic.
    #[serde(default)]
    pub by_topic: std::collections::BTreeMap<String, TopicCounts>,
}

/// Judges a whole history. Pure and linear-ish: one ingest pass, then sweeps per value.
pub fn check(history: &History, digests: &[ReplicaDigest], opts: &CheckOptions) -> Verdict {
    let mut idx = index::Index::with_capacity(history.ops.len());
    for op in &history.ops {
        idx.ingest(op);
    }
    let counts = counts(&idx);
    let mut anomalies = batch::lost_writes(&idx, opts.final_reads_from_index);
    anomalies.extend(batch::read_anomalies(&idx));
    anomalies.extend(batch::reorderings(&idx));
    if opts.expect_idempotent {
        anomalies.extend(batch::nonmonotonic_sends(&idx));
    }
    if opts.group_checks {
        anomalies.extend(group::group_anomalies(history, crate::workload::consumer::FINAL_READER));
    }
    anomalies.extend(divergence::divergence(digests));
    let unavailability = windows::unavailability(history, opts.unavailability_threshold_ns);
    let ok = anomalies.iter().all(|a| !opts.expect_idempotent && matches!(a, Anomaly::Duplicate { .. }));
    let summary = summary::sentence(&counts, &anomalies, &unavailability, ok);
    let by_topic = topics::by_topic(history, &anomalies);
    Verdict { ok, summary, counts, anomalies, unavailability, by_topic }
}

fn counts(idx: &index::Index) -> Counts {
    let mut c = Counts { sent_invoked: idx.sent_invoked, read: idx.read_ops, ..Counts::default() };
    for v in &idx.values {
        match v.send.as_ref().map(|s| s.outcome) {
            Some(index::Outcome::Ok { .. }) => c.acked += 1,
            Some(index::Outcome::Fail) => c.failed += 1,
            Some(index::Outcome::Info | index::Outcome::Pending) => c.indeterminate += 1,
            None => {}
        }
        if !v.reads.is_empty() {
            c.distinct_read += 1;
        }
    }
    c
}
