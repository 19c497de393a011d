//! SyncGroup, Heartbeat, LeaveGroup and the timeouts that keep a group moving when clients
//! go silent.

use std::collections::HashMap;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info};

use super::codes;
use super::group::{ConsumerGroupState, Group};
use super::types::{LeaveMember, SyncRequest, SyncResponse};

pub(crate) enum SyncOutcome {
    Done(SyncResponse),
    /// Resolves when the leader's assignments arrive, or by `deadline` via the sync timeout.
    Parked(oneshot::Receiver<SyncResponse>, Instant),
}

impl Group {
    fn fenced(&self, member_id: &str, instance: Option<&String>) -> bool {
        instance.and_then(|i| self.static_members.get(i)).is_some_and(|current| current != member_id)
    }

    fn ok_sync(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error_code: codes::NONE,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment,
        }
    }

    pub fn sync(&mut self, req: SyncRequest, now: Instant) -> SyncOutcome {
        if self.fenced(&req.member_id, req.group_instance_id.as_ref()) {
            return SyncOutcome::Done(SyncResponse::error(codes::FENCED_INSTANCE_ID));
        }
        if !self.members.contains_key(&req.member_id) {
            return SyncOutcome::Done(SyncResponse::error(codes::UNKNOWN_MEMBER_ID));
        }
        if req.generation_id != self.generation {
            return SyncOutcome::Done(SyncResponse::error(codes::ILLEGAL_GENERATION));
        }
        let type_mismatch =
            req.protocol_type.as_ref().is_some_and(|t| Some(t) != self.protocol_type.as_ref());
        let name_mismatch = req.protocol_name.as_ref().is_some_and(|n| Some(n) != self.protocol.as_ref());
        if type_mismatch || name_mismatch {
            return SyncOutcome::Done(SyncResponse::error(codes::INCONSISTENT_GROUP_PROTOCOL));
        }
        match self.state {
            ConsumerGroupState::Empty => SyncOutcome::Done(SyncResponse::error(codes::UNKNOWN_MEMBER_ID)),
            ConsumerGroupState::PreparingRebalance => {
                SyncOutcome::Done(SyncResponse::error(codes::REBALANCE_IN_PROGRESS))
            }
            ConsumerGroupState::Stable => {
                let Some(member) = self.members.get_mut(&req.member_id) else {
                    return SyncOutcome::Done(SyncResponse::error(codes::UNKNOWN_MEMBER_ID));
                };
                member.refresh_session(now);
                let assignment = member.assignment.clone();
                SyncOutcome::Done(self.ok_sync(assignment))
            }
            ConsumerGroupState::CompletingRebalance => self.park_sync(req, now),
        }
    }

    fn park_sync(&mut self, req: SyncRequest, now: Instant) -> SyncOutcome {
        let (tx, rx) = oneshot::channel();
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return SyncOutcome::Done(SyncResponse::error(codes::UNKNOWN_MEMBER_ID));
        };
        member.answer_sync(SyncResponse::error(codes::REBALANCE_IN_PROGRESS));
        member.refresh_session(now);
        member.synced = true;
        member.sync_waiter = Some(tx);
        if self.is_leader(&req.member_id) {
            self.apply_assignments(req.assignments);
        } else {
            debug!(
                group = %self.id,
                member = %req.member_id,
                generation = self.generation,
                "follower sync parked for leader"
            );
        }
        SyncOutcome::Parked(rx, self.sync_deadline.unwrap_or(now))
    }

    /// The leader's SyncGroup: store every member's assignment, go Stable, release all syncs.
    fn apply_assignments(&mut self, assignments: Vec<(String, Bytes)>) {
        let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
        for m in self.members.values_mut() {
            // A member the leader left out gets an empty assignment, as in Kafka.
            m.assignment = by_member.remove(&m.id).unwrap_or_default();
        }
        if !by_member.is_empty() {
            debug!(
                group = %self.id,
                generation = self.generation,
                unknown = by_member.len(),
                "leader assigned to unknown members; ignored"
            );
        }
        self.sync_deadline = None;
        info!(
            group = %self.id,
            generation = self.generation,
            members = self.members.len(),
            "assignments received; group stable"
        );
        self.set_state(ConsumerGroupState::Stable);
        let (ptype, pname) = (self.protocol_type.clone(), self.protocol.clone());
        for m in self.members.values_mut() {
            let resp = SyncResponse {
                error_code: codes::NONE,
                protocol_type: ptype.clone(),
                protocol_name: pname.clone(),
                assignment: m.assignment.clone(),
            };
            m.answer_sync(resp);
        }
    }

    pub fn heartbeat(&mut self, generation_id: i32, member_id: &str, now: Instant) -> i16 {
        let generation = self.generation;
        let state = self.state;
        let Some(member) = self.members.get_mut(member_id) else { return codes::UNKNOWN_MEMBER_ID };
        if generation_id != generation {
            return codes::ILLEGAL_GENERATION;
        }
        member.refresh_session(now);
        match state {
            ConsumerGroupState::PreparingRebalance => codes::REBALANCE_IN_PROGRESS,
            // Kafka answers NONE in CompletingRebalance: clients may heartbeat between their
            // JoinGroup and SyncGroup responses, and a rebalance signal there would only make
            // them rejoin and restart the rebalance they are finishing.
            ConsumerGroupState::CompletingRebalance | ConsumerGroupState::Stable => codes::NONE,
            ConsumerGroupState::Empty => codes::UNKNOWN_MEMBER_ID,
        }
    }

    /// One code per entry; the group rebalances (or empties) after the removals.
    pub fn leave(&mut self, leaving: &[LeaveMember], now: Instant) -> Vec<i16> {
        let mut codes_out = Vec::with_capacity(leaving.len());
        for entry in leaving {
            let mapped = entry.group_instance_id.as_ref().and_then(|i| self.static_members.get(i)).cloned();
            let id = match (&entry.member_id, mapped) {
                (m, Some(current)) if !m.is_empty() && *m != current => {
                    codes_out.push(codes::FENCED_INSTANCE_ID);
                    continue;
                }
                (m, Some(current)) if m.is_empty() => current,
                (m, _) => m.clone(),
            };
            if self.pending.remove(&id).is_some() {
                // A pending id holds up rebalance completion; forgetting it may finish one.
                self.try_complete_join(now);
                codes_out.push(codes::NONE);
            } else if self.members.contains_key(&id) {
                self.remove_member(&id, now, "member left the group");
                codes_out.push(codes::NONE);
            } else {
                codes_out.push(codes::UNKNOWN_MEMBER_ID);
            }
        }
        codes_out
    }

    /// Timer work for one group: expire forgotten pending ids and silent members, drop members
    /// that never synced, and complete rebalances whose delay or deadline passed.
    pub fn tick(&mut self, now: Instant) {
        let before = self.pending.len();
        self.pending.retain(|_, deadline| now < *deadline);
        if self.pending.len() != before {
            debug!(
                group = %self.id,
                generation = self.generation,
                expired = before - self.pending.len(),
                "pending member ids expired"
            );
        }
        let expired: Vec<String> =
            self.members.values().filter(|m| m.session_expired(now)).map(|m| m.id.clone()).collect();
        for id in expired {
            self.remove_member(&id, now, "session timeout expired");
        }
        if self.state == ConsumerGroupState::CompletingRebalance
            && self.sync_deadline.is_some_and(|d| now >= d)
        {
            let unsynced: Vec<String> =
                self.members.values().filter(|m| !m.synced).map(|m| m.id.clone()).collect();
            for id in unsynced {
                self.remove_member(&id, now, "no SyncGroup within the rebalance timeout");
            }
            // Only reachable if the leader synced, which makes the group Stable; kept as a guard
            // so a parked sync can never outlive its deadline.
            if self.state == ConsumerGroupState::CompletingRebalance {
                self.prepare_rebalance(now, "sync timeout");
            }
        }
        self.try_complete_join(now);
    }
}

impl Group {
    /// Whether a member-checked OffsetCommit may proceed, as Kafka decides it. Commits are
    /// allowed in PreparingRebalance so consumers can commit while revoking partitions before
    /// rejoining (kafka-python and librdkafka both do); CompletingRebalance rejects them because
    /// the member is between generations.
    pub fn validate_commit(&mut self, generation_id: i32, member_id: &str, now: Instant) -> i16 {
        if generation_id < 0 && self.state == ConsumerGroupState::Empty {
            return codes::NONE;
        }
        let (generation, state) = (self.generation, self.state);
        let Some(member) = self.members.get_mut(member_id) else { return codes::UNKNOWN_MEMBER_ID };
        if generation_id != generation {
            return codes::ILLEGAL_GENERATION;
        }
        match state {
            ConsumerGroupState::CompletingRebalance => codes::REBALANCE_IN_PROGRESS,
            ConsumerGroupState::Stable | ConsumerGroupState::PreparingRebalance => {
                member.refresh_session(now);
                codes::NONE
            }
            ConsumerGroupState::Empty => codes::UNKNOWN_MEMBER_ID,
        }
    }

    /// An Empty group with nothing to remember can be forgotten (Kafka drops such groups too).
    pub fn is_disposable(&self) -> bool {
        self.state == ConsumerGroupState::Empty && self.members.is_empty() && self.pending.is_empty()
    }
}
