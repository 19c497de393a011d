//! Where the consumer-group coordinator runs, and what it persists to.
//!
//! Single node: one coordinator for the node's lifetime, offsets in an fsynced file. Cluster:
//! the controller leader coordinates; when this node becomes controller leader it starts a fresh
//! coordinator from the offsets replicated in the controller's metadata, and each commit is a
//! controller command — so committed offsets survive the loss of the controller leader.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::cluster::metadata::{ControllerCommand, ControllerReply};
use crate::error::BrokerError;
use crate::groups::GroupCoordinator;
use crate::state::NodeState;
use crate::telemetry::EventKind;

/// Makes `coordinator` the node's coordinator: runs its timers and forwards its events until the
/// next one replaces it or the node stops.
pub fn install(state: &Arc<NodeState>, coordinator: Arc<GroupCoordinator>) -> CancellationToken {
    let cancel = state.shutdown.child_token();
    *state.groups.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&coordinator);
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
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => telemetry.warn(format!("telemetry missed {n} group events")),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
    });
    cancel
}

/// Cluster mode: install a new coordinator each time this node becomes controller leader.
pub fn follow_controller(state: &Arc<NodeState>) {
    let Some(cluster) = state.cluster.clone() else { return };
    let state = Arc::clone(state);
    let tasks = state.tasks.clone();
    tasks.spawn(async move {
        let mut rx = cluster.controller.raft.metrics();
        let mut current: Option<CancellationToken> = None;
        loop {
            let leads = rx.borrow_and_update().current_leader == Some(cluster.node_id);
            match (leads, &current) {
                (true, None) => match coordinator_from_metadata(&state) {
                    Ok(c) => {
                        tracing::info!(
                            node_id = cluster.node_id,
                            "controller leader here: group coordinator started"
                        );
                        current = Some(install(&state, c));
                    }
                    Err(e) => state.telemetry.warn(format!("could not start the group coordinator: {e}")),
                },
                (false, Some(token)) => {
                    token.cancel();
                    current = None;
                }
                _ => {}
            }
            tokio::select! {
                _ = state.shutdown.cancelled() => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    });
}

fn coordinator_from_metadata(state: &Arc<NodeState>) -> Result<Arc<GroupCoordinator>, BrokerError> {
    let cluster = state.cluster.clone().ok_or_else(|| BrokerError::Invalid("not in cluster mode".into()))?;
    let persisted = cluster.metadata().group_offsets.clone().map(String::into_bytes);
    let runtime = tokio::runtime::Handle::current();
    let persist = Arc::new(move |bytes: &[u8]| -> crate::Result<()> {
        let json = String::from_utf8_lossy(bytes).into_owned();
        // Called from the blocking pool (offset commits run there), so blocking on the
        // replication of the commit is allowed and is exactly the durability wanted.
        match runtime.block_on(cluster.propose_controller(ControllerCommand::SetGroupOffsets { json })) {
            Ok(ControllerReply::Done) => Ok(()),
            Ok(other) => Err(BrokerError::Invalid(format!("controller refused the offsets: {other:?}"))),
            Err(e) => Err(BrokerError::Invalid(format!("offsets not replicated: {e:?}"))),
        }
    });
    GroupCoordinator::new(crate::node::coordinator_config(&state.config), persisted, persist)
}
