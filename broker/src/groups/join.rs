//! JoinGroup handling: new members, MEMBER_ID_REQUIRED, re-joins and static members.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::{debug, info};

use super::codes;
use super::group::{ConsumerGroupState, Group};
use super::member::{new_member_id, Member};
use super::types::{JoinRequest, JoinResponse};

/// What a join produced: an answer now, or a reply that arrives when the rebalance completes.
pub(crate) enum JoinOutcome {
    Done(JoinResponse),
    /// The receiver resolves by `deadline` at the latest (the timers complete the rebalance).
    Parked(oneshot::Receiver<JoinResponse>, Instant),
}

fn timeouts(req: &JoinRequest) -> (Duration, Duration) {
    let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
    // JoinGroup v0 carries no rebalance timeout; Kafka then uses the session timeout.
    let rebalance = if req.rebalance_timeout_ms > 0 {
        Duration::from_millis(req.rebalance_timeout_ms as u64)
    } else {
        session
    };
    (session, rebalance)
}

impl Group {
    /// Group id and session timeout are validated by the coordinator before this is called.
    pub fn join(&mut self, req: JoinRequest, now: Instant) -> JoinOutcome {
        if req.member_id.is_empty() {
            self.join_new(req, now)
        } else {
            self.join_known(req, now)
        }
    }

    fn join_new(&mut self, req: JoinRequest, now: Instant) -> JoinOutcome {
        if !self.supports(&req.protocol_type, &req.protocols, None) {
            return JoinOutcome::Done(JoinResponse::error(codes::INCONSISTENT_GROUP_PROTOCOL, ""));
        }
        if let Some(instance) = req.group_instance_id.clone() {
            // A static member restarting gets a fresh id; its old incarnation is fenced and
            // replaced, keeping leadership if it had it.
            let id = new_member_id(&instance);
            let mut was_leader = false;
            if let Some(old) = self.static_members.get(&instance).cloned() {
                was_leader = self.is_leader(&old);
                info!(
                    group = %self.id,
                    member = %old,
                    generation = self.generation,
                    instance = %instance,
                    "static member replaced by new incarnation"
                );
                self.detach_member(&old);
            }
            let outcome = self.add_member_and_rebalance(id.clone(), req, now);
            if was_leader && self.members.contains_key(&id) {
                self.leader = Some(id);
            }
            return outcome;
        }
        let id = new_member_id(&req.client_id);
        if req.require_known_member_id {
            // The id is remembered for one session timeout; the client rejoins with it at once.
            let (session, _) = timeouts(&req);
            self.pending.insert(id.clone(), now + session);
            debug!(group = %self.id, member = %id, generation = self.generation, "member id required; issued");
            return JoinOutcome::Done(JoinResponse::error(codes::MEMBER_ID_REQUIRED, &id));
        }
        self.add_member_and_rebalance(id, req, now)
    }

    fn join_known(&mut self, req: JoinRequest, now: Instant) -> JoinOutcome {
        let member_id = req.member_id.clone();
        if let Some(instance) = &req.group_instance_id {
            if self.static_members.get(instance).is_some_and(|current| *current != member_id) {
                return JoinOutcome::Done(JoinResponse::error(codes::FENCED_INSTANCE_ID, &member_id));
            }
        }
        if self.pending.remove(&member_id).is_some() {
            if !self.supports(&req.protocol_type, &req.protocols, None) {
                return JoinOutcome::Done(JoinResponse::error(
                    codes::INCONSISTENT_GROUP_PROTOCOL,
                    &member_id,
                ));
            }
            return self.add_member_and_rebalance(member_id, req, now);
        }
        let Some(member) = self.members.get(&member_id) else {
            return JoinOutcome::Done(JoinResponse::error(codes::UNKNOWN_MEMBER_ID, &member_id));
        };
        if !self.supports(&req.protocol_type, &req.protocols, Some(&member_id)) {
            return JoinOutcome::Done(JoinResponse::error(codes::INCONSISTENT_GROUP_PROTOCOL, &member_id));
        }
        let unchanged = member.matches(&req.protocol_type, &req.protocols);
        match self.state {
            ConsumerGroupState::PreparingRebalance => self.update_member_and_park(req, now),
            ConsumerGroupState::CompletingRebalance if unchanged => {
                self.refresh(&member_id, now);
                JoinOutcome::Done(self.current_join_response(&member_id))
            }
            // Kafka rebalances on any leader join in Stable: the leader rejoins when its view of
            // the topics changed (e.g. new partitions), and only it computes assignments.
            ConsumerGroupState::Stable if unchanged && !self.is_leader(&member_id) => {
                self.refresh(&member_id, now);
                JoinOutcome::Done(self.current_join_response(&member_id))
            }
            ConsumerGroupState::CompletingRebalance | ConsumerGroupState::Stable => {
                self.update_member_and_park(req, now)
            }
            ConsumerGroupState::Empty => {
                JoinOutcome::Done(JoinResponse::error(codes::UNKNOWN_MEMBER_ID, &member_id))
            }
        }
    }

    fn refresh(&mut self, member_id: &str, now: Instant) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.refresh_session(now);
        }
    }

    fn add_member_and_rebalance(&mut self, id: String, req: JoinRequest, now: Instant) -> JoinOutcome {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        let (session, rebalance) = timeouts(&req);
        let (tx, rx) = oneshot::channel();
        self.next_seq += 1;
        let member = Member {
            id: id.clone(),
            group_instance_id: req.group_instance_id.clone(),
            client_id: req.client_id,
            client_host: req.client_host,
            session_timeout: session,
            rebalance_timeout: rebalance,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Default::default(),
            seq: self.next_seq,
            session_deadline: now + session,
            join_waiter: Some(tx),
            sync_waiter: None,
            synced: false,
        };
        if let Some(instance) = &req.group_instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(id.clone(), member);
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        info!(group = %self.id, member = %id, generation = self.generation, "member joined");
        match self.state {
            ConsumerGroupState::PreparingRebalance => {
                if let Some(delay) = &mut self.initial_delay {
                    delay.deadline = (now + self.initial_delay_cfg).min(delay.cap);
                }
            }
            _ => self.prepare_rebalance(now, "new member joined"),
        }
        self.try_complete_join(now);
        JoinOutcome::Parked(rx, self.rebalance_deadline.unwrap_or(now))
    }

    fn update_member_and_park(&mut self, req: JoinRequest, now: Instant) -> JoinOutcome {
        let (session, rebalance) = timeouts(&req);
        let (tx, rx) = oneshot::channel();
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return JoinOutcome::Done(JoinResponse::error(codes::UNKNOWN_MEMBER_ID, &req.member_id));
        };
        // A second join from the same member supersedes the first; the first client call is
        // told to retry rather than left waiting.
        let id = member.id.clone();
        member.answer_join(JoinResponse::error(codes::REBALANCE_IN_PROGRESS, &id));
        member.protocol_type = req.protocol_type;
        member.protocols = req.protocols;
        member.client_id = req.client_id;
        member.client_host = req.client_host;
        member.session_timeout = session;
        member.rebalance_timeout = rebalance;
        member.refresh_session(now);
        member.join_waiter = Some(tx);
        debug!(group = %self.id, member = %id, generation = self.generation, "member rejoined");
        self.prepare_rebalance(now, "member rejoined with changed metadata or as leader");
        self.try_complete_join(now);
        JoinOutcome::Parked(rx, self.rebalance_deadline.unwrap_or(now))
    }
}
