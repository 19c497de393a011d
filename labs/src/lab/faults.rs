//! Role targets resolved to nodes, and faults applied to nodes and links.
//!
//! A target names a role (`leader:orders/0`, `controller`, `follower:...`, `random`) or a node;
//! it is resolved against the cluster as it is at that moment (`view`). Random choices come from
//! a seeded generator so a drill rerun with the same seed hits the same nodes.

use std::str::FromStr;

use super::cluster::Run;
use super::protocol::LabFailure;
use super::view::ClusterView;
use super::Lab;
use crate::drill::{Direction, Fault, Target};
use crate::fabric::{Endpoint, Mode};
use crate::supervisor::Supervisor;
use crate::timeline::event::FaultName;
use crate::timeline::EventKind;

/// A small deterministic generator (xorshift64*): enough to pick nodes reproducibly.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        if items.is_empty() {
            return None;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        Some(items[(r % items.len() as u64) as usize])
    }
}

/// The failure code of a role target (a group's leader or follower, the controller) whose group
/// has no leader at the moment: an election is in progress.
pub const NO_LEADER: &str = "no_leader";

/// How long a drill or chaos step waits for a leaderless target group to elect one.
pub(super) const TARGET_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn fail(msg: impl Into<String>) -> LabFailure {
    LabFailure::new("fault_failed", msg)
}

/// The nodes `target` means now.
pub fn resolve(
    run: &Run,
    view: &ClusterView,
    target: &Target,
    rng: &mut Rng,
) -> Result<Vec<i32>, LabFailure> {
    let all = run.supervisor.node_ids();
    let single = all.len() == 1;
    let leader = |group: &str| -> Result<i32, LabFailure> {
        match view.leader_of(group) {
            Some(l) => Ok(l.leader),
            // A single node leads everything without Raft.
            None if single => Ok(all[0]),
            None => Err(LabFailure::new(NO_LEADER, format!("no leader of {group} right now"))),
        }
    };
    Ok(match target {
        Target::Node(n) => vec![*n as i32],
        Target::Leader(tp) => vec![leader(&ClusterView::partition_group(&tp.topic, tp.partition))?],
        Target::Follower(tp) => {
            let group = ClusterView::partition_group(&tp.topic, tp.partition);
            let l = leader(&group)?;
            let followers: Vec<i32> = all.iter().copied().filter(|n| *n != l).collect();
            vec![rng.pick(&followers).ok_or_else(|| fail(format!("{group} has no follower")))?]
        }
        Target::Controller => vec![leader("controller")?],
        Target::Busiest => vec![view.busiest().ok_or_else(|| fail("no node leads a partition right now"))?],
        Target::Random => vec![rng.pick(&all).ok_or_else(|| fail("the cluster has no nodes"))?],
        Target::Minority if run.minority.is_empty() => return Err(fail("`minority` needs an earlier split")),
        Target::Minority => run.minority.clone(),
        Target::Previous if run.previous.is_empty() => {
            return Err(fail("`previous` needs an earlier fault that hit nodes"))
        }
        Target::Previous => run.previous.clone(),
        Target::All => all,
    })
}

impl Lab {
    /// A fault from the protocol (buttons, CLI): `fault` by name, `target` as a selector string.
    pub async fn fault(&self, fault: &str, target: &str, param: Option<u64>) -> Result<Vec<i32>, LabFailure> {
        let t = Target::from_str(target).map_err(|e| LabFailure::new("bad_request", e))?;
        let f = match fault {
            "kill" => Fault::Kill { target: t },
            "stop" => Fault::Stop { target: t },
            "pause" => Fault::Pause { target: t },
            "resume" => Fault::Resume { target: t },
            "restart" => Fault::Restart { target: t },
            "power_cut" => Fault::PowerCut { target: t },
            "slow_disk" => Fault::SlowDisk { target: t, delay_ms: param.unwrap_or(200) },
            "fsync_fail" => Fault::FsyncFail { target: t },
            "isolate" => Fault::Isolate { target: t },
            "heal" => Fault::Heal,
            other => {
                return Err(LabFailure::new(
                    "bad_request",
                    format!(
                        "unknown fault '{other}': kill, stop, pause, resume, restart, power_cut, slow_disk, \
                         fsync_fail, isolate, heal"
                    ),
                ))
            }
        };
        // A lesson step may be waiting for exactly this: resolved before the fault changes roles.
        let wanted = self.learner_wants().await;
        let hit = self.apply(&f, &mut Rng::new(crate::history::now_ns())).await?;
        self.learner_did(fault, &hit, wanted);
        Ok(hit)
    }

    /// `apply` for a drill or chaos step: a role target whose group is electing right now is
    /// waited for (up to TARGET_WAIT, re-checked every 100 ms), since the step means whichever
    /// node will hold the role. A random schedule often draws "kill the controller" just after
    /// killing it (a seed-7 run failed on that); a button press still fails at once.
    pub async fn apply_when_led(&self, fault: &Fault, rng: &mut Rng) -> Result<Vec<i32>, LabFailure> {
        let deadline = tokio::time::Instant::now() + TARGET_WAIT;
        loop {
            match self.apply(fault, rng).await {
                Err(e) if e.code == NO_LEADER && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) if e.code == NO_LEADER => {
                    return Err(fail(format!(
                        "{} (waited {} s for an election)",
                        e.message,
                        TARGET_WAIT.as_secs()
                    )))
                }
                other => return other,
            }
        }
    }

    /// Applies a fault; returns the nodes it hit and records it on the timeline.
    pub async fn apply(&self, fault: &Fault, rng: &mut Rng) -> Result<Vec<i32>, LabFailure> {
        let mut guard = self.run.lock().await;
        let run = guard.as_mut().ok_or_else(|| LabFailure::new("not_running", "no cluster is running"))?;
        let view = ClusterView::observe(&run.http_addrs()).await;
        run.before_fault = Some(view.clone());
        let (name, nodes, detail) = aim(run, &view, fault, rng)?;
        let target_label = if nodes.is_empty() {
            "all".to_string()
        } else {
            nodes.iter().map(|n| format!("node-{n}")).collect::<Vec<_>>().join(",")
        };
        self.note(EventKind::Fault { fault: name, target: target_label, detail: detail.clone() });
        self.perform(&run.supervisor, fault, &nodes).await?;

        match fault {
            Fault::Split { .. } => run.minority = nodes.clone(),
            Fault::Heal => run.minority.clear(),
            _ => {}
        }
        if !nodes.is_empty()
            && !matches!(
                fault,
                Fault::CutLink { .. }
                    | Fault::HealLink { .. }
                    | Fault::DelayLink { .. }
                    | Fault::BlackholeLink { .. }
                    | Fault::Toxic { .. }
            )
        {
            run.previous = nodes.clone();
        }
        Ok(nodes)
    }

    /// Does what `fault` says to the nodes it was aimed at.
    async fn perform(&self, s: &Supervisor, fault: &Fault, nodes: &[i32]) -> Result<(), LabFailure> {
        match fault {
            Fault::Kill { .. }
            | Fault::Stop { .. }
            | Fault::Pause { .. }
            | Fault::Resume { .. }
            | Fault::Restart { .. }
            | Fault::PowerCut { .. }
            | Fault::SlowDisk { .. }
            | Fault::FsyncFail { .. } => {
                for n in nodes {
                    perform_on_node(s, fault, *n).await?;
                }
                Ok(())
            }
            Fault::CorruptSegment { target } => self.corrupt_segments(s, target, nodes).await,
            Fault::Isolate { .. }
            | Fault::Split { .. }
            | Fault::CutLink { .. }
            | Fault::DelayLink { .. }
            | Fault::BlackholeLink { .. }
            | Fault::Toxic { .. }
            | Fault::Bridge { .. }
            | Fault::Heal
            | Fault::HealLink { .. } => perform_on_links(s, fault, nodes),
            Fault::TakePort { .. } => Ok(()),
        }
    }

    /// Corrupts the newest segment of the target's partition (`orders`/0 for a node target) on
    /// each node: stopped first (a running broker would overwrite it), noted, started again.
    async fn corrupt_segments(
        &self,
        s: &Supervisor,
        target: &Target,
        nodes: &[i32],
    ) -> Result<(), LabFailure> {
        let err = |e: crate::LabError| fail(e.to_string());
        let (topic, partition) = match target {
            Target::Leader(tp) | Target::Follower(tp) => (tp.topic.clone(), tp.partition as i32),
            _ => ("orders".to_string(), 0),
        };
        for n in nodes {
            s.stop(*n).await.map_err(err)?;
            let c = s.corrupt_segment(*n, &topic, partition).map_err(err)?;
            self.note(EventKind::Fault {
                fault: FaultName::CorruptSegment,
                target: format!("node-{n}"),
                detail: Some(format!("{c:?}")),
            });
            s.start(*n).await.map_err(err)?;
        }
        Ok(())
    }

    pub async fn cut_link(&self, from: i32, to: i32, both: bool) -> Result<(), LabFailure> {
        let direction = if both { Direction::Both } else { Direction::OneWay };
        let f = Fault::CutLink { from: Target::Node(from as u32), to: Target::Node(to as u32), direction };
        self.apply(&f, &mut Rng::new(1)).await.map(|_| ())
    }

    /// Both directions of the link between two nodes pass again (the Raft view's link click).
    pub async fn heal_link(&self, a: i32, b: i32) -> Result<(), LabFailure> {
        let f = Fault::HealLink { from: Target::Node(a as u32), to: Target::Node(b as u32) };
        self.apply(&f, &mut Rng::new(1)).await.map(|_| ())
    }

    pub async fn heal_all(&self) -> Result<(), LabFailure> {
        self.apply(&Fault::Heal, &mut Rng::new(1)).await.map(|_| ())
    }
}

/// The fault's name, the nodes it hits (targets resolved against the view) and its detail.
fn aim(
    run: &Run,
    view: &ClusterView,
    fault: &Fault,
    rng: &mut Rng,
) -> Result<(FaultName, Vec<i32>, Option<String>), LabFailure> {
    let one = |t: &Target, rng: &mut Rng| resolve(run, view, t, rng);
    Ok(match fault {
        Fault::Kill { target } => (FaultName::Kill, one(target, rng)?, None),
        Fault::Stop { target } => (FaultName::Stop, one(target, rng)?, None),
        Fault::Pause { target } => (FaultName::Pause, one(target, rng)?, None),
        Fault::Resume { target } => (FaultName::Resume, one(target, rng)?, None),
        Fault::Restart { target } => (FaultName::Restart, one(target, rng)?, None),
        Fault::PowerCut { target } => (FaultName::PowerCut, one(target, rng)?, None),
        Fault::SlowDisk { target, delay_ms } => {
            (FaultName::SlowDisk, one(target, rng)?, Some(format!("{delay_ms} ms per fsync")))
        }
        Fault::CorruptSegment { target } => (FaultName::CorruptSegment, one(target, rng)?, None),
        Fault::FsyncFail { target } => {
            (FaultName::FsyncFail, one(target, rng)?, Some("every fsync fails with EIO".into()))
        }
        Fault::Isolate { target } => (FaultName::Isolate, one(target, rng)?, None),
        Fault::Split { minority } => {
            let mut m = Vec::new();
            for t in minority {
                m.extend(one(t, rng)?);
            }
            (FaultName::Split, m, None)
        }
        Fault::CutLink { from, to, direction } => {
            let mut ends = one(from, rng)?;
            ends.extend(one(to, rng)?);
            (FaultName::CutLink, ends, Some(format!("{direction:?}").to_lowercase()))
        }
        Fault::DelayLink { from, to, delay_ms } => {
            let mut ends = one(from, rng)?;
            ends.extend(one(to, rng)?);
            (FaultName::DelayLink, ends, Some(format!("{delay_ms} ms")))
        }
        Fault::BlackholeLink { from, to } => {
            let mut ends = one(from, rng)?;
            ends.extend(one(to, rng)?);
            (FaultName::BlackholeLink, ends, None)
        }
        Fault::Toxic { from, to, toxic } => {
            let mut ends = one(from, rng)?;
            ends.extend(one(to, rng)?);
            (FaultName::Toxic, ends, Some(toxic.to_string()))
        }
        Fault::Bridge { target } => (FaultName::Bridge, one(target, rng)?, None),
        Fault::Heal => (FaultName::Heal, Vec::new(), None),
        Fault::HealLink { from, to } => {
            let mut ends = one(from, rng)?;
            ends.extend(one(to, rng)?);
            (FaultName::HealLink, ends, None)
        }
        Fault::TakePort { .. } => return Err(fail("take_port only runs before the cluster starts")),
    })
}

/// A process or disk fault on one node.
async fn perform_on_node(s: &Supervisor, fault: &Fault, n: i32) -> Result<(), LabFailure> {
    let done = match fault {
        Fault::Kill { .. } => s.kill(n).await,
        Fault::Stop { .. } => s.stop(n).await,
        Fault::Pause { .. } => s.pause(n),
        Fault::Resume { .. } => s.resume(n),
        Fault::Restart { .. } => s.restart(n).await,
        Fault::PowerCut { .. } => s.power_cut(n).await.map(drop),
        Fault::SlowDisk { delay_ms, .. } => s.slow_disk(n, *delay_ms).await,
        Fault::FsyncFail { .. } => s.fsync_fail(n).await,
        _ => Ok(()), // only the process and disk faults above are sent here
    };
    done.map_err(|e| fail(e.to_string()))
}

/// A fault of the link fabric: its proxies change mode, no process is touched.
fn perform_on_links(s: &Supervisor, fault: &Fault, nodes: &[i32]) -> Result<(), LabFailure> {
    let err = |e: crate::LabError| fail(e.to_string());
    match fault {
        Fault::Isolate { .. } => {
            for n in nodes {
                s.fabric().isolate(*n).map_err(err)?
            }
        }
        Fault::Split { .. } => s.fabric().split(nodes).map_err(err)?,
        Fault::CutLink { direction, .. } => {
            let (a, b) = (Endpoint::Node(nodes[0]), Endpoint::Node(nodes[1]));
            // `one_way` also opens the reverse direction, so a cut both ways sets each side.
            match direction {
                Direction::OneWay => s.fabric().one_way(nodes[0], nodes[1]).map_err(err)?,
                Direction::Both => {
                    s.fabric().set(a, b, Mode::Blackhole).map_err(err)?;
                    s.fabric().set(b, a, Mode::Blackhole).map_err(err)?;
                }
            }
        }
        Fault::DelayLink { delay_ms, .. } => s
            .fabric()
            .set(Endpoint::Node(nodes[0]), Endpoint::Node(nodes[1]), Mode::Delay(*delay_ms))
            .map_err(err)?,
        Fault::BlackholeLink { .. } => s
            .fabric()
            .set(Endpoint::Node(nodes[0]), Endpoint::Node(nodes[1]), Mode::Blackhole)
            .map_err(err)?,
        Fault::Toxic { toxic, .. } => s
            .fabric()
            .set(Endpoint::Node(nodes[0]), Endpoint::Node(nodes[1]), Mode::Toxic(*toxic))
            .map_err(err)?,
        Fault::Bridge { .. } => {
            let b = nodes[0];
            let others: Vec<i32> = s.node_ids().into_iter().filter(|n| *n != b).collect();
            if others.len() != 2 {
                return Err(fail("bridge needs exactly three nodes"));
            }
            s.fabric().bridge(others[0], b, others[1]).map_err(err)?;
        }
        Fault::Heal => s.fabric().heal_all(),
        Fault::HealLink { .. } => {
            let (a, b) = (Endpoint::Node(nodes[0]), Endpoint::Node(nodes[1]));
            s.fabric().set(a, b, Mode::Pass).map_err(err)?;
            s.fabric().set(b, a, Mode::Pass).map_err(err)?;
        }
        _ => {} // only the link faults above are sent here
    }
    Ok(())
}
