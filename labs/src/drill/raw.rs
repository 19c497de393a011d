//! The drill file exactly as written: serde structs mirroring the TOML, before validation.
//!
//! Kept apart from `spec` because the file is flatter than the model (a step's fault parameters
//! sit next to `fault = ".."` for readability) and because validation needs the source spans
//! (`Spanned`) that the engine has no use for. `deny_unknown_fields` everywhere: a typo such as
//! `fsynk` must fail loudly, not silently fall back to a default.

use serde::Deserialize;
use toml::Spanned;

use super::spec::{Acks, Anomalies, Await, ConsumersStart, Direction, Fsync, Outcome, Target, Toxic, Until};
use crate::timeline::event::FaultName;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDrill {
    pub name: Spanned<String>,
    pub title: String,
    pub description: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The Raft group the nodes record message by message (`controller` or `<topic>-<p>`).
    pub watch: Option<Spanned<String>>,
    pub setup: RawSetup,
    pub workload: Spanned<RawWorkload>,
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
    pub expect: Spanned<RawExpect>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSetup {
    pub nodes: Option<Spanned<u32>>,
    pub topic: Spanned<String>,
    pub topics: Option<Spanned<u32>>,
    pub partitions: Option<Spanned<u32>>,
    pub replication_factor: Option<Spanned<u32>>,
    pub fsync: Option<Fsync>,
    pub acks: Option<Acks>,
    pub idempotence: Option<bool>,
    pub election_timeout_ms: Option<Spanned<[u64; 2]>>,
    pub heartbeat_ms: Option<Spanned<u64>>,
    pub seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWorkload {
    pub producers: Option<u32>,
    pub consumers: Option<u32>,
    pub messages: Option<Spanned<u64>>,
    pub duration_ms: Option<Spanned<u64>>,
    pub rate_per_sec: Option<Spanned<u32>>,
    pub message_bytes: Option<Spanned<u32>>,
    pub consumer_group: Option<bool>,
    pub churn_ms: Option<Spanned<u64>>,
    pub produce_via: Option<Spanned<Target>>,
    pub consume_via: Option<Spanned<Target>>,
    pub consumers_start: Option<ConsumersStart>,
}

/// One `[[steps]]` table. Which keys are allowed together (a fault's parameters, `until` with
/// `timeout_ms`) is checked in `steps.rs`, where the message can name the fault.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    pub at_ms: Option<Spanned<u64>>,
    pub after_ms: Option<Spanned<u64>>,
    pub before_start: Option<Spanned<bool>>,

    pub fault: Option<Spanned<FaultName>>,
    pub target: Option<Spanned<Target>>,
    pub minority: Option<Spanned<Vec<Target>>>,
    pub from: Option<Spanned<Target>>,
    pub to: Option<Spanned<Target>>,
    pub direction: Option<Spanned<Direction>>,
    pub delay_ms: Option<Spanned<u64>>,
    pub toxic: Option<Spanned<Toxic>>,
    /// Repeat the fault this many times, `every_ms` apart (a bounded restart storm in one step).
    pub repeat: Option<Spanned<u32>>,
    pub every_ms: Option<Spanned<u64>>,

    pub until: Option<Spanned<Until>>,
    pub timeout_ms: Option<Spanned<u64>>,

    pub narrate: Option<Spanned<String>>,
    /// Lessons only: what happened and why, shown once the step is done.
    pub explain: Option<Spanned<String>>,
    /// Lessons only: the step waits for the learner (to perform its fault, or to press Next).
    #[serde(rename = "await")]
    pub awaits: Option<Spanned<Await>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub lost: Option<Outcome>,
    pub duplicates: Option<Outcome>,
    pub other_anomalies: Option<Anomalies>,
    pub max_unavailability_ms: Option<Spanned<u64>>,
    pub min_term_plus_one_pct: Option<Spanned<f64>>,
    pub start_fails_with: Option<Spanned<String>>,
    pub elected_in_higher_term: Option<Spanned<bool>>,
    pub discarded_uncommitted: Option<Spanned<bool>>,
    pub min_commits: Option<Spanned<u64>>,
    pub min_flush_lag: Option<Spanned<u64>>,
}
