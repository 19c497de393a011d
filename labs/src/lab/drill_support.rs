//! What the drill runner needs around its steps: the cluster settings a drill asks for, aiming
//! clients at a role, the terms and digests it judges by, and bringing the cluster back after the
//! steps. Apart from `drill_run` so that the runner's sequence reads in one sitting.

use std::collections::BTreeMap;

use super::faults::{resolve, Rng};
use super::protocol::{ClusterSettings, LabFailure};
use super::view::ClusterView;
use super::Lab;
use crate::checker::{Bound, ReplicaDigest};
use crate::drill::{Acks, Action, DrillSpec, Fsync, Outcome, Target, Until, When};
use crate::timeline::EventKind;

/// How long the cluster gets to recover after the steps before the final read.
const RECOVERY_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Beyond its steps, workload and final reads, what a drill body may take for start-up,
/// recovery, the group drain and the check.
const STUCK_MARGIN: std::time::Duration = std::time::Duration::from_secs(300);
/// How long the final read of one topic may take.
pub(super) const FINAL_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
/// A drill's workload duration when its file names none.
pub(super) const DEFAULT_WORKLOAD_MS: u64 = 20_000;

/// How long a headless drill body may run before it is given up as stuck: every step's offset,
/// delay and wait limit (a fault waits up to 10 s for a leader), the workload's duration and a
/// margin. Every wait inside is bounded already; this catches a bound someone forgot (a CI run
/// hung for 80 minutes in a client's close). An interactive lesson waits for its learner.
pub(super) fn body_limit(spec: &DrillSpec, interactive: bool) -> Option<std::time::Duration> {
    if interactive {
        return None;
    }
    let steps: u64 = spec
        .steps
        .iter()
        .map(|s| {
            let when = match s.when {
                When::AtMs(ms) | When::AfterMs(ms) => ms,
                When::BeforeStart => 0,
            };
            let wait = match &s.action {
                Action::Wait { timeout_ms, .. } => *timeout_ms,
                Action::Fault(_) => super::faults::TARGET_WAIT.as_millis() as u64,
                Action::Narrate => 0,
            };
            when + wait
        })
        .sum();
    let workload = spec.workload.duration_ms.unwrap_or(DEFAULT_WORKLOAD_MS);
    let reads = FINAL_READ_LIMIT * spec.setup.topic_names().len() as u32;
    Some(std::time::Duration::from_millis(steps + workload) + reads + STUCK_MARGIN)
}

pub(super) fn settings_of(spec: &DrillSpec) -> ClusterSettings {
    let s = &spec.setup;
    ClusterSettings {
        nodes: s.nodes as usize,
        fsync: match s.fsync {
            Fsync::Always => "always".into(),
            Fsync::IntervalMs(ms) => format!("interval:{ms}"),
            Fsync::Never => "never".into(),
        },
        partitions: s.partitions as i32,
        replication_factor: s.replication_factor as i16,
        election_timeout_min_ms: s.election_timeout_ms[0],
        election_timeout_max_ms: s.election_timeout_ms[1],
        heartbeat_ms: s.heartbeat_ms,
        pre_vote: false,
        acks: match s.acks {
            Acks::All => "all".into(),
            Acks::One => "1".into(),
            Acks::Zero => "0".into(),
        },
        idempotence: s.idempotence,
    }
}

/// `Some(why)` when fewer than `min_pct` % of the partitions whose term moved between `before`
/// and `after` moved by exactly one (partitions led by nobody at either moment are left out).
pub(super) fn term_moves_unmet(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    min_pct: f64,
) -> Option<String> {
    let moves: Vec<u64> =
        before.iter().filter_map(|(g, t)| after.get(g).filter(|a| *a > t).map(|a| a - t)).collect();
    if moves.is_empty() {
        return None;
    }
    let plus_one = moves.iter().filter(|m| **m == 1).count();
    let pct = 100.0 * plus_one as f64 / moves.len() as f64;
    (pct < min_pct).then(|| {
        format!(
            "{plus_one} of {} re-led partitions got term +1 ({pct:.1} %, largest jump +{}), \
             below the {min_pct} % expected",
            moves.len(),
            moves.iter().max().copied().unwrap_or(0)
        )
    })
}

pub(super) fn bound(o: Outcome) -> Bound {
    match o {
        Outcome::None => Bound::None,
        Outcome::Some => Bound::Some,
        Outcome::Any => Bound::Any,
    }
}

impl Lab {
    /// The last step, fault or narration recorded since `first_seq`: where a stuck run was.
    pub(super) fn last_step_since(&self, first_seq: u64) -> String {
        self.timeline
            .since(Some(first_seq))
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::Step { .. } | EventKind::Fault { .. } | EventKind::Narration { .. }
                )
            })
            .map(|e| e.label())
            .unwrap_or_else(|| "the start".into())
    }

    /// Each partition's leader term as the nodes report it now (empty without a cluster).
    pub(super) async fn partition_terms(&self) -> BTreeMap<String, u64> {
        let guard = self.run.lock().await;
        let Some(run) = guard.as_ref() else { return BTreeMap::new() };
        ClusterView::observe(&run.http_addrs()).await.partition_terms()
    }

    /// As `partition_terms`, plus the controller group's term under `controller`.
    pub(super) async fn partition_terms_with_controller(&self) -> BTreeMap<String, u64> {
        let guard = self.run.lock().await;
        let Some(run) = guard.as_ref() else { return BTreeMap::new() };
        let view = ClusterView::observe(&run.http_addrs()).await;
        let mut terms = view.partition_terms();
        if let Some(l) = view.leader_of("controller") {
            terms.insert("controller".into(), l.term);
        }
        terms
    }

    /// Bootstrap servers through `via` (a role resolves to that node's client proxy).
    pub(super) async fn bootstrap_via(&self, via: &Target, rng: &mut Rng) -> Result<String, LabFailure> {
        let guard = self.run.lock().await;
        let run = guard.as_ref().ok_or_else(|| LabFailure::new("not_running", "no cluster"))?;
        if *via == Target::All {
            return Ok(run.supervisor.bootstrap_servers());
        }
        let view = ClusterView::observe(&run.http_addrs()).await;
        let nodes = resolve(run, &view, via, rng)?;
        Ok(nodes
            .iter()
            .filter_map(|n| run.supervisor.node_info(*n).ok())
            .map(|i| i.kafka_advertised.to_string())
            .collect::<Vec<_>>()
            .join(","))
    }

    /// After the steps: links healed, every node running, every partition led again.
    pub(super) async fn recover(&self, spec: &DrillSpec) -> Result<(), LabFailure> {
        {
            let guard = self.run.lock().await;
            let run = guard.as_ref().ok_or_else(|| LabFailure::new("not_running", "no cluster"))?;
            run.supervisor.fabric().heal_all();
            for n in run.supervisor.nodes() {
                use crate::supervisor::NodeState;
                let fixed = match n.state {
                    NodeState::Paused => run.supervisor.resume(n.id).map_err(|e| e.to_string()),
                    NodeState::Stopped | NodeState::Died => {
                        run.supervisor.start(n.id).await.map_err(|e| e.to_string())
                    }
                    _ => Ok(()),
                };
                if let Err(e) = fixed {
                    return Err(LabFailure::new("drill_failed", format!("bringing node {} back: {e}", n.id)));
                }
            }
        }
        self.note(EventKind::Step {
            index: spec.steps.len() + 1,
            description: "recovery: links healed, every node running".into(),
        });
        self.wait_until(&Until::AllLeaders, RECOVERY_LIMIT, spec, None).await
    }

    /// Each node's digest of each partition of `topic` (what the checker compares).
    pub(super) async fn digests(&self, topic: &str) -> Vec<ReplicaDigest> {
        let guard = self.run.lock().await;
        let Some(run) = guard.as_ref() else { return Vec::new() };
        let mut out = Vec::new();
        for (id, addr) in run.http_addrs() {
            let Ok(digests) = crate::node_client::typed::digest(addr).await else { continue };
            for d in digests.into_iter().filter(|d| d.topic == topic) {
                out.push(ReplicaDigest {
                    node: id,
                    topic: d.topic,
                    partition: d.partition,
                    high_watermark: d.high_watermark,
                    entries: d.digest.entries,
                    end_offset: d.digest.end_offset,
                    crc32c: d.digest.crc32c,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(g, t)| (g.to_string(), *t)).collect()
    }

    #[test]
    fn term_moves_count_only_partitions_whose_term_moved() {
        let before = terms(&[("t-0", 2), ("t-1", 2), ("t-2", 5), ("t-3", 1)]);
        // t-2 unmoved, t-3 not led after: neither counts. t-0 +1, t-1 +3: 50 %.
        let after = terms(&[("t-0", 3), ("t-1", 5), ("t-2", 5)]);
        assert_eq!(term_moves_unmet(&before, &after, 50.0), None);
        let why = term_moves_unmet(&before, &after, 95.0).expect("50 % is below 95 %");
        assert!(
            why.contains("1 of 2 re-led partitions got term +1") && why.contains("largest jump +3"),
            "{why}"
        );
        assert_eq!(term_moves_unmet(&before, &before, 100.0), None, "nothing moved: nothing to judge");
    }

    #[test]
    fn a_stuck_drill_is_given_up_after_its_steps_workload_and_margin() {
        let text = "name = \"x\"\ntitle = \"x\"\ndescription = \"x\"\n\
                    [setup]\ntopic = \"t\"\n[workload]\nduration_ms = 15000\n\
                    [[steps]]\nat_ms = 4000\nfault = \"kill\"\ntarget = \"busiest\"\n\
                    [[steps]]\nuntil = \"all_leaders\"\ntimeout_ms = 2000\n[expect]\n";
        let spec = crate::drill::parse_drill(text, std::path::Path::new("x.toml")).expect("valid drill");
        // 4 s + 10 s (a fault's wait for a leader) + 2 s + 15 s workload + 30 s read + 300 s.
        assert_eq!(body_limit(&spec, false), Some(std::time::Duration::from_secs(361)));
        assert_eq!(body_limit(&spec, true), None, "a learner takes the time they need");
    }
}
