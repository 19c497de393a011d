//! Where the consumer-group coordinator runs, and what it persists to.
//!
//! Single node: one coordinator for the node's lifetime, offsets in an fsynced file. Cluster:
//! the controller leader coordinates, and committed offsets live in the controller's state
//! machine. Each commit is one controller command carrying only the offsets it commits
//! (`CommitOffsets`), proposed on this node alone; fetches read the applied state after a
//! majority confirmed the leadership. A node starts a fresh coordinator each time it begins
//! coordinating in a new term (`Cluster::coordinating_term`: confirmed leader, own term's first
//! entry applied), so nothing acknowledged by an earlier leader is missing from what it reads.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cluster::metadata::{ControllerCommand, ControllerReply};
use crate::cluster::Cluster;
use crate::error::BrokerError;
use crate::groups::{CoordinatorConfig, GroupCommit, GroupCoordinator, OffsetBackend, OffsetMap};
use crate::state::NodeState;
use crate::telemetry::EventKind;

/// Confirmation depends on node liveness as well as on Raft metrics, and liveness changes
/// without a metrics change: look again at least this often.
const RECHECK: Duration = Duration::from_millis(100);

/// Makes `coordinator` the node's coordinator (for controller `term` in cluster mode): runs its
/// timers and forwards its events until the next one replaces it or the node stops.
pub fn install(
    state: &Arc<NodeState>,
    coordinator: Arc<GroupCoordinator>,
    term: Option<u64>,
) -> CancellationToken {
    let cancel = state.shutdown.child_token();
    *state.groups.write().unwrap_or_else(|p| p.into_inner()) = (Arc::clone(&coordinator), term);
    state.tasks.spawn(Arc::clone(&coordinator).run_timers(cancel.clone()));
    let mut rx = coordinator.subscribe();
    let telemetry = Arc::clone(&state.telemetry);
    let stop = cancel.clone();
    state.tasks.spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                event = rx.recv() => match event {
                    Ok(e) => telemetry.emit(EventKind::Group(e)),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        telemetry.warn(format!("telemetry missed {n} group events"))
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    cancel
}

/// Cluster mode: install a new coordinator each time this node starts coordinating in a new
/// controller term; stop it (parked requests answer NOT_COORDINATOR) when the node stops leading.
pub fn follow_controller(state: &Arc<NodeState>) {
    let Some(cluster) = state.cluster.clone() else { return };
    let state = Arc::clone(state);
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let mut rx = cluster.controller.raft.metrics();
        let mut current: Option<(u64, CancellationToken)> = None;
        loop {
            let (leader, term) = {
                let m = rx.borrow_and_update();
                (m.current_leader, m.current_term)
            };
            let stale = current.as_ref().is_some_and(|(t, _)| leader != Some(cluster.node_id) || *t != term);
            if stale {
                if let Some((_, token)) = current.take() {
                    token.cancel();
                }
            }
            if current.is_none() {
                if let Some(term) = cluster.coordinating_term() {
                    match coordinator_for(&state, &cluster, term) {
                        Ok(c) => {
                            tracing::info!(
                                node_id = cluster.node_id,
                                term,
                                "controller leader here: group coordinator started"
                            );
                            current = Some((term, install(&state, c, Some(term))));
                        }
                        Err(e) => state.telemetry.warn(format!("could not start the group coordinator: {e}")),
                    }
                }
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(RECHECK) => {}
            }
        }
    });
}

fn coordinator_for(
    state: &Arc<NodeState>,
    cluster: &Arc<Cluster>,
    term: u64,
) -> Result<Arc<GroupCoordinator>, BrokerError> {
    let backend =
        ReplicatedOffsets { cluster: Arc::clone(cluster), term, runtime: tokio::runtime::Handle::current() };
    GroupCoordinator::with_backend(CoordinatorConfig::from_config(&state.config), Arc::new(backend))
}

/// Offsets in the controller's state machine, committed through its log by the leader of `term`.
struct ReplicatedOffsets {
    cluster: Arc<Cluster>,
    term: u64,
    runtime: tokio::runtime::Handle,
}

impl OffsetBackend for ReplicatedOffsets {
    fn write(&self, commits: &[GroupCommit]) -> crate::Result<()> {
        let command = ControllerCommand::CommitOffsets { commits: commits.to_vec() };
        // Called from the blocking pool (offset commits run there), so blocking on the
        // replication of the commit is allowed and is exactly the durability wanted.
        match self.runtime.block_on(self.cluster.propose_controller_as_leader(self.term, command))? {
            ControllerReply::Done => {
                // One line per write (commits coalesce): what a chaos timeline needs to tell
                // which commit set a partition's offset last.
                for c in commits {
                    let offsets: Vec<String> = c
                        .offsets
                        .iter()
                        .map(|o| format!("{}-{}@{}", o.topic, o.partition, o.offset))
                        .collect();
                    tracing::info!(
                        group = %c.group,
                        term = self.term,
                        offsets = %offsets.join(","),
                        deleted_group = c.delete,
                        "offsets committed"
                    );
                }
                Ok(())
            }
            other => Err(BrokerError::Raft {
                group: crate::group_id::GroupId::Controller,
                step: "commit offsets",
                reason: format!("the controller answered {other:?}"),
            }),
        }
    }

    fn read(&self, f: &mut dyn FnMut(&OffsetMap)) {
        f(&self.cluster.metadata().offsets)
    }
}
