//! What a chaos run reports (faults by family, acked ops, anomalies), the schedule as text, and
//! drill files written. The run itself is `Lab::run_chaos` (`lab/chaos_run.rs`): the lab depends
//! on this module, never the other way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::schedule::Episode;
use super::{drill_file, ChaosOptions};
use crate::checker::{AnomalyKind, Verdict};
use crate::drill::{Action, DrillSpec, Fault, Step};
use crate::error::LabError;

/// What a chaos run did and found.
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub seed: u64,
    /// Faults injected per family (heals not counted).
    pub faults_by_family: BTreeMap<String, usize>,
    pub acked: u64,
    /// Acknowledged, lost, duplicated and other anomalies per topic (`--topics`).
    pub by_topic: BTreeMap<String, crate::checker::TopicCounts>,
    /// Anomalies per kind (`lost_write`, `poll_skip`, ...), most severe first.
    pub anomalies: BTreeMap<AnomalyKind, usize>,
    /// The first anomaly of each kind, explained in words.
    pub examples: Vec<String>,
    /// Longest time without any acknowledged produce, in ms.
    pub longest_unavailability_ms: u64,
    /// Longest time one send to one partition waited for its ack, in ms (0: none waited past the
    /// checker's threshold): a partition can be down while the others keep taking writes.
    pub longest_partition_wait_ms: u64,
    pub passed: bool,
    pub reason: Option<String>,
    /// The drill file written because the run found anomalies.
    pub saved: Option<PathBuf>,
    pub seconds: f64,
    /// Each broker's CPU and memory over the run (filled by the lab, which has the samples).
    pub resources: Vec<super::resources::NodeResources>,
}

/// The schedule as lines for a terminal: `  3.2 s  kill leader:chaos/1 (healed at 6.0 s: restart previous)`.
pub fn describe(episodes: &[Episode]) -> Vec<String> {
    episodes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let heal: Vec<String> = e.heal.iter().map(fault_text).collect();
            let healed = if heal.is_empty() {
                "heals itself".to_string()
            } else {
                format!("healed at {:.1} s: {}", (e.at_ms + e.hold_ms) as f64 / 1000.0, heal.join(", "))
            };
            // A companion is indented under the episode it runs inside.
            let (indent, during) = match e.within {
                Some(j) => ("  + ", format!("during {}; ", j + 1)),
                None => ("", String::new()),
            };
            format!(
                "{:>3}. {indent}{:>6.1} s  {:<9} {} ({during}{healed})",
                i + 1,
                e.at_ms as f64 / 1000.0,
                e.family.name(),
                fault_text(&e.fault)
            )
        })
        .collect()
}

/// A fault as one short phrase, e.g. `toxic latency:200:50 node:1 -> node:3`.
pub fn fault_text(f: &Fault) -> String {
    let v = serde_json::to_value(f).unwrap_or_default();
    let name = v["fault"].as_str().unwrap_or("?").to_string();
    let mut parts = vec![name];
    for key in ["toxic", "target", "minority", "from", "to", "direction", "delay_ms"] {
        match &v[key] {
            serde_json::Value::Null => {}
            serde_json::Value::String(s) if key == "to" => parts.push(format!("-> {s}")),
            serde_json::Value::String(s) => parts.push(s.clone()),
            serde_json::Value::Number(n) => parts.push(format!("{n} ms")),
            other => parts.push(other.to_string()),
        }
    }
    parts.join(" ")
}

/// Faults (not heals, waits or narration) per family name, from a drill's steps.
pub fn count_faults(steps: &[Step]) -> BTreeMap<String, usize> {
    let mut by_family = BTreeMap::new();
    for s in steps {
        let Action::Fault(f) = &s.action else { continue };
        let family = match f {
            Fault::Kill { .. } => "kill",
            Fault::Pause { .. } => "pause",
            Fault::Stop { .. } => "stop",
            Fault::Restart { target: crate::drill::Target::Previous } => continue,
            Fault::Restart { .. } => "restart",
            Fault::PowerCut { .. } => "power_cut",
            Fault::Isolate { .. } | Fault::Split { .. } | Fault::Bridge { .. } | Fault::CutLink { .. } => {
                "partition"
            }
            Fault::Toxic { .. } | Fault::DelayLink { .. } | Fault::BlackholeLink { .. } => "link",
            Fault::SlowDisk { delay_ms: 0, .. } => continue,
            Fault::SlowDisk { .. } | Fault::CorruptSegment { .. } | Fault::FsyncFail { .. } => "disk",
            Fault::Resume { .. } | Fault::Heal | Fault::HealLink { .. } | Fault::TakePort { .. } => continue,
        };
        *by_family.entry(family.to_string()).or_insert(0) += 1;
    }
    by_family
}

/// Anomalies per kind.
pub fn anomaly_kinds(verdict: Option<&Verdict>) -> BTreeMap<AnomalyKind, usize> {
    let mut kinds = BTreeMap::new();
    for a in verdict.map(|v| v.anomalies.as_slice()).unwrap_or_default() {
        *kinds.entry(a.kind()).or_insert(0) += 1;
    }
    kinds
}

/// One explained example per anomaly kind, in the order the checker found them.
fn first_of_each_kind(verdict: Option<&Verdict>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    verdict
        .map(|v| v.anomalies.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|a| seen.insert(a.label()))
        .map(|a| a.explain())
        .collect()
}

/// How a drill run of a chaos schedule ended (what the drill runner returns).
pub struct RunEnd<'a> {
    pub passed: bool,
    pub reason: Option<String>,
    pub verdict: Option<&'a Verdict>,
    pub seconds: f64,
}

/// The longest unavailability window, in ms: of one partition, or of them all.
fn longest_window_ms(v: Option<&Verdict>, one_partition: bool) -> u64 {
    v.into_iter()
        .flat_map(|v| &v.unavailability)
        .filter(|w| w.partition.is_some() == one_partition)
        .map(|w| w.duration_ns / 1_000_000)
        .max()
        .unwrap_or(0)
}

/// The report of a finished drill run of `spec`.
pub fn report(seed: u64, spec: &DrillSpec, outcome: &RunEnd, saved: Option<PathBuf>) -> ChaosReport {
    let v = outcome.verdict;
    ChaosReport {
        seed,
        faults_by_family: count_faults(&spec.steps),
        acked: v.map_or(0, |v| v.counts.acked),
        by_topic: v.map(|v| v.by_topic.clone()).unwrap_or_default(),
        anomalies: anomaly_kinds(v),
        examples: first_of_each_kind(v),
        longest_unavailability_ms: longest_window_ms(v, false),
        longest_partition_wait_ms: longest_window_ms(v, true),
        passed: outcome.passed,
        reason: outcome.reason.clone(),
        saved,
        seconds: outcome.seconds,
        resources: Vec::new(),
    }
}

/// Writes `spec` as a drill file (creating the directory).
pub fn write_drill(spec: &DrillSpec, path: &Path) -> Result<(), LabError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(LabError::io(format!("creating {}", dir.display())))?;
    }
    std::fs::write(path, drill_file::render(spec))
        .map_err(LabError::io(format!("writing {}", path.display())))
}

/// The schedule a seed draws, for printing before the run starts.
pub fn planned(opts: &ChaosOptions) -> Vec<Episode> {
    super::draw_episodes(opts)
}
