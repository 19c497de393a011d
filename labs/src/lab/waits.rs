//! What a drill or lesson waits on: a controller to exist, and a wait step's condition (a new
//! leader, every partition led, a node caught up or ready, acked records), polled against the
//! nodes until it holds or its bound passes.

use std::time::Duration;

use tokio::time::Instant;

use super::faults::{resolve, Rng};
use super::protocol::LabFailure;
use super::view::ClusterView;
use super::Lab;
use crate::drill::{DrillSpec, Until};
use crate::workload::Workload;

/// Poll period of waits.
const POLL: Duration = Duration::from_millis(100);

impl Lab {
    /// Waits for a controller leader (cluster) or a live node (single node): topics can be made.
    pub(super) async fn wait_controller(&self, limit: Duration) -> Result<(), LabFailure> {
        let deadline = Instant::now() + limit;
        loop {
            {
                let guard = self.run.lock().await;
                let run = guard.as_ref().ok_or_else(|| LabFailure::new("not_running", "no cluster"))?;
                let view = ClusterView::observe(&run.http_addrs()).await;
                let single = run.supervisor.node_ids().len() == 1;
                if view.leader_of("controller").is_some() || (single && !view.alive().is_empty()) {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(LabFailure::new(
                    "drill_failed",
                    format!("no controller leader within {} ms", limit.as_millis()),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls until `until` holds, or fails naming what did not happen.
    pub(super) async fn wait_until(
        &self,
        until: &Until,
        limit: Duration,
        spec: &DrillSpec,
        workload: Option<&Workload>,
    ) -> Result<(), LabFailure> {
        let deadline = Instant::now() + limit;
        let before = self.leaders_before_fault().await;
        loop {
            if self.holds(until, spec, workload, &before).await? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LabFailure::new(
                    "drill_failed",
                    format!("waited {} ms for {until}, and it did not happen", limit.as_millis()),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The leaders just before the last fault, as `apply` saw them; observed now only when no
    /// fault ran yet. (Observed at the start of the wait, an election that finished between the
    /// fault and the wait would be the "before", and the wait would want yet another.)
    async fn leaders_before_fault(&self) -> ClusterView {
        let guard = self.run.lock().await;
        match guard.as_ref() {
            Some(run) => match &run.before_fault {
                Some(view) => view.clone(),
                None => ClusterView::observe(&run.http_addrs()).await,
            },
            None => ClusterView::default(),
        }
    }

    /// Whether `until` holds in the cluster now (one observation of every node).
    async fn holds(
        &self,
        until: &Until,
        spec: &DrillSpec,
        workload: Option<&Workload>,
        before: &ClusterView,
    ) -> Result<bool, LabFailure> {
        let guard = self.run.lock().await;
        let run = guard.as_ref().ok_or_else(|| LabFailure::new("not_running", "no cluster"))?;
        let view = ClusterView::observe(&run.http_addrs()).await;
        // A single node has no controller election to wait for: alive, it leads what it serves.
        let single_alive = run.supervisor.node_ids().len() == 1 && !view.alive().is_empty();
        Ok(match until {
            Until::AllLeaders => single_alive || all_led(&view, spec),
            Until::LeaderElected(tp) => {
                let g = ClusterView::partition_group(&tp.topic, tp.partition);
                match (view.leader_of(&g), self.last_fault_leader(&g, before)) {
                    (Some(now), Some((_, term))) => now.term > term,
                    (Some(_), None) => true,
                    (None, _) => single_alive,
                }
            }
            Until::CaughtUp(t) => {
                let nodes = resolve(run, &view, t, &mut Rng::new(1))?;
                caught_up(&view, &nodes, &spec.setup.topic, spec.setup.partitions)
            }
            Until::NodeReady(t) => {
                let nodes = resolve(run, &view, t, &mut Rng::new(1))?;
                nodes.iter().all(|n| view.states.get(n).is_some_and(|s| s.is_some()))
            }
            Until::Acked(n) => workload.is_some_and(|w| w.counters().acked >= *n),
        })
    }

    /// The (leader, term) a group had before the latest fault, as observed then.
    fn last_fault_leader(&self, group: &str, before: &ClusterView) -> Option<(i32, u64)> {
        before.leader_of(group).map(|l| (l.leader, l.term))
    }
}

/// A controller leader, and a leader for every partition of every drill topic.
fn all_led(view: &ClusterView, spec: &DrillSpec) -> bool {
    view.leader_of("controller").is_some()
        && spec.setup.topic_names().iter().all(|t| view.all_leaders(t, spec.setup.partitions))
}

/// Every partition of `topic` has a leader, and each of `nodes` has applied what it applied.
fn caught_up(view: &ClusterView, nodes: &[i32], topic: &str, partitions: u32) -> bool {
    (0..partitions).all(|p| {
        let g = ClusterView::partition_group(topic, p);
        let leader_applied = view.leader_of(&g).and_then(|l| view.applied(l.leader, &g));
        leader_applied.is_some() && nodes.iter().all(|n| view.applied(*n, &g) == leader_applied)
    })
}
