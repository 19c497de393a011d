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
        let topic = &spec.setup.topic;
        // The leaders just before the last fault, as `apply` saw them; observed now only when no
        // fault ran yet. (Observed at the start of the wait, an election that finished between
        // the fault and the wait would be the "before", and the wait would want yet another.)
        let before = {
            let guard = self.run.lock().await;
            match guard.as_ref() {
                Some(run) => match &run.before_fault {
                    Some(view) => view.clone(),
                    None => ClusterView::observe(&run.http_addrs()).await,
                },
                None => ClusterView::default(),
            }
        };
        loop {
            let holds = {
                let guard = self.run.lock().await;
                let run = guard.as_ref().ok_or_else(|| LabFailure::new("not_running", "no cluster"))?;
                let view = ClusterView::observe(&run.http_addrs()).await;
                let single = run.supervisor.node_ids().len() == 1;
                match until {
                    Until::AllLeaders => {
                        single && !view.alive().is_empty()
                            || (view.leader_of("controller").is_some()
                                && spec
                                    .setup
                                    .topic_names()
                                    .iter()
                                    .all(|t| view.all_leaders(t, spec.setup.partitions)))
                    }
                    Until::LeaderElected(tp) => {
                        let g = ClusterView::partition_group(&tp.topic, tp.partition);
                        match (view.leader_of(&g), self.last_fault_leader(&g, &before)) {
                            (Some(now), Some((_, term))) => now.term > term,
                            (Some(_), None) => true,
                            (None, _) => single && !view.alive().is_empty(),
                        }
                    }
                    Until::CaughtUp(t) => {
                        let nodes = resolve(run, &view, t, &mut Rng::new(1))?;
                        (0..spec.setup.partitions).all(|p| {
                            let g = ClusterView::partition_group(topic, p);
                            let leader_applied = view.leader_of(&g).and_then(|l| view.applied(l.leader, &g));
                            leader_applied.is_some()
                                && nodes.iter().all(|n| view.applied(*n, &g) == leader_applied)
                        })
                    }
                    Until::NodeReady(t) => {
                        let nodes = resolve(run, &view, t, &mut Rng::new(1))?;
                        nodes.iter().all(|n| view.states.get(n).is_some_and(|s| s.is_some()))
                    }
                    Until::Acked(n) => workload.is_some_and(|w| w.counters().acked >= *n),
                }
            };
            if holds {
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

    /// The (leader, term) a group had before the latest fault, as observed then.
    fn last_fault_leader(&self, group: &str, before: &ClusterView) -> Option<(i32, u64)> {
        before.leader_of(group).map(|l| (l.leader, l.term))
    }
}
