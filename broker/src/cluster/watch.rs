//! openraft metrics -> telemetry events: every change of term, vote, role, leader, last log
//! index, applied index and (on the leader) each follower's matched index, plus election start
//! and outcome events derived from role transitions.
//!
//! Progress alone (indexes moving in the same term under the same leader) is read at most once
//! per the node's progress window (`Telemetry::progress_window`, 5-50 ms): openraft re-sends its
//! metrics at every step of an entry (appended, flushed, each follower's match, committed,
//! applied), and at a thousand busy groups reading and reporting each step cost a wakeup, a
//! metrics copy and an event per step. The indexes shown are exact, only steps in between are
//! folded into one event. A change of vote, server state or leader ends the window at once
//! (openraft's server metrics change only then), and a leader not yet confirmed, or whose own
//! term has not applied yet, reads every step: clients wait on both after an election.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::raft_group::{GroupView, RaftGroup};
use crate::raft::trace::{RaftTrace, TraceKind};
use crate::raft::typ::RaftMetrics;
pub use crate::telemetry::wire::GroupState;
use crate::telemetry::wire::{ElectionPhase, Role};
use crate::telemetry::{EventKind, Telemetry};

impl GroupState {
    pub fn of(handle: &RaftGroup, m: &RaftMetrics, view: &GroupView) -> GroupState {
        GroupState {
            group: handle.id.clone(),
            term: m.current_term,
            voted_for: m.vote.leader_id().voted_for(),
            vote_committed: m.vote.is_committed(),
            role: handle.role(view),
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            matched: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect())
                .unwrap_or_default(),
            voters: handle.voters.iter().copied().collect(),
        }
    }
}

/// Streams a group's metrics changes onto telemetry until `cancel` or the group stops.
pub fn watch_group(
    telemetry: &Arc<Telemetry>,
    trace: &Arc<RaftTrace>,
    handle: &Arc<RaftGroup>,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) {
    let mut rx = handle.raft.metrics();
    let mut leadership_rx = handle.raft.server_metrics();
    let telemetry = Arc::clone(telemetry);
    let handle = Arc::clone(handle);
    let trace = Arc::clone(trace);
    tasks.spawn(async move {
        let mut last: Option<GroupState> = None;
        // Made once: each new `cancelled()` future joins the token's waiter list and leaves it
        // when dropped, under the lock all groups' watchers share.
        let cancelled = cancel.cancelled();
        tokio::pin!(cancelled);
        loop {
            // Marked seen: only a later leadership change ends the progress window below.
            leadership_rx.borrow_and_update();
            // Clone out at once: never hold the watch borrow.
            let m = rx.borrow_and_update().clone();
            let view = handle.update_view(&m);
            let state = GroupState::of(&handle, &m, &view);
            let progress_only = last.as_ref().is_some_and(|prev| same_leadership(prev, &state));
            if last.as_ref() != Some(&state) {
                if let Some(prev) = &last {
                    election_events(&telemetry, prev, &state);
                    if let Some(index) = state.applied_index.filter(|i| Some(*i) > prev.applied_index) {
                        trace.group_event(
                            &handle.id,
                            crate::telemetry::now_ns(),
                            TraceKind::Commit { index },
                        );
                    }
                }
                telemetry.emit(EventKind::Raft(state.clone()));
                last = Some(state);
            }
            if progress_only && view.settled() {
                tokio::select! {
                    _ = &mut cancelled => return,
                    _ = tokio::time::sleep(telemetry.progress_window()) => {}
                    _ = leadership_rx.changed() => {}
                }
            }
            tokio::select! {
                _ = &mut cancelled => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
        }
    });
}

/// Same term, vote, role and leader: what may differ is progress.
fn same_leadership(a: &GroupState, b: &GroupState) -> bool {
    (a.term, a.voted_for, a.vote_committed, a.role, a.leader)
        == (b.term, b.voted_for, b.vote_committed, b.role, b.leader)
}

fn election_events(telemetry: &Telemetry, prev: &GroupState, now: &GroupState) {
    let event =
        |phase| EventKind::Election { group: now.group.clone(), term: now.term, phase, leader: now.leader };
    let candidate = Role::Candidate;
    if now.role == candidate && (prev.role != candidate || prev.term != now.term) {
        telemetry.emit(event(ElectionPhase::Started));
    }
    if prev.role == candidate && now.role == Role::Leader {
        tracing::debug!(group = %now.group, term = now.term, "election won");
        telemetry.emit(event(ElectionPhase::Won));
    } else if prev.role == candidate && now.role != candidate {
        tracing::info!(group = %now.group, term = now.term, leader = ?now.leader, role = %now.role, "election lost");
        telemetry.emit(event(ElectionPhase::Lost));
    }
    if now.leader != prev.leader && now.leader.is_some() {
        telemetry.emit(event(ElectionPhase::LeaderKnown));
    }
}
