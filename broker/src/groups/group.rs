//! The classic-protocol group state machine: membership, generations and rebalance deadlines.
//!
//! Everything here is synchronous and takes `now` explicitly; the coordinator holds the lock,
//! drives the timers and awaits the parked replies. JoinGroup handling lives in `join.rs`,
//! SyncGroup/Heartbeat/LeaveGroup/timeouts in `membership.rs`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::codes;
use super::member::Member;
use super::types::{
    GroupDescription, GroupEvent, GroupSnapshot, JoinResponse, JoinedMember, MemberDescription,
    MemberSnapshot, SyncResponse,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// Kafka's fifth state, Dead, is never stored: unknown groups are reported as "Dead" by
/// the coordinator and disposable Empty groups are simply dropped.
pub enum ConsumerGroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl ConsumerGroupState {
    /// The names Kafka's DescribeGroups/ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::PreparingRebalance => "PreparingRebalance",
            ConsumerGroupState::CompletingRebalance => "CompletingRebalance",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// The delay a group leaving Empty waits so that consumers started together share a generation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InitialDelay {
    pub deadline: Instant,
    /// The delay restarts per new member but never beyond this (start + rebalance timeout).
    pub cap: Instant,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub id: String,
    pub state: ConsumerGroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// BTreeMap so member lists (leader's JoinGroup response, describe) come out in a stable order.
    pub members: BTreeMap<String, Member>,
    /// Ids handed out with MEMBER_ID_REQUIRED, with the time after which they are forgotten.
    pub pending: HashMap<String, Instant>,
    /// group.instance.id -> member id of its current incarnation.
    pub static_members: HashMap<String, String>,
    pub rebalance_deadline: Option<Instant>,
    pub initial_delay: Option<InitialDelay>,
    /// In CompletingRebalance: when members that have not sent SyncGroup are dropped.
    pub sync_deadline: Option<Instant>,
    pub initial_delay_cfg: Duration,
    pub next_seq: u64,
    /// State transitions not yet broadcast; drained by the coordinator after each operation.
    pub events: Vec<GroupEvent>,
}

impl Group {
    pub fn new(id: &str, initial_delay_cfg: Duration) -> Self {
        Group {
            id: id.to_string(),
            state: ConsumerGroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
            sync_deadline: None,
            initial_delay_cfg,
            next_seq: 0,
            events: Vec::new(),
        }
    }

    pub fn set_state(&mut self, new: ConsumerGroupState) {
        let old = self.state;
        self.state = new;
        self.events.push(GroupEvent {
            group: self.id.clone(),
            old_state: old.name().to_string(),
            new_state: new.name().to_string(),
            generation: self.generation,
        });
    }

    /// The topics the members subscribe to, read from their consumer-protocol metadata for
    /// the group's protocol; `None` when the group does not use the consumer protocol (Kafka's
    /// rule for OffsetDelete). A member whose metadata does not decode subscribes to nothing.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.as_deref()?;
        Some(self.members.values().flat_map(|m| subscription_topics(&m.metadata_for(protocol))).collect())
    }

    pub fn is_leader(&self, member_id: &str) -> bool {
        self.leader.as_deref() == Some(member_id)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members.values().map(|m| m.rebalance_timeout).max().unwrap_or_default()
    }

    /// Whether a member with this protocol type and these protocols can be in the group
    /// alongside every other member (`excluding` is the joining member's own current entry).
    pub fn supports(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        excluding: Option<&str>,
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let mut others = self.members.values().filter(|m| Some(m.id.as_str()) != excluding).peekable();
        if others.peek().is_none() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        let mut common: Option<HashSet<&str>> = None;
        for m in others {
            let names: HashSet<&str> = m.protocols.iter().map(|(n, _)| n.as_str()).collect();
            common = Some(match common {
                None => names,
                Some(c) => c.intersection(&names).copied().collect(),
            });
        }
        let common = common.unwrap_or_default();
        protocols.iter().any(|(n, _)| common.contains(n.as_str()))
    }

    /// Kafka's choice: among protocols every member supports, each member votes for the first
    /// one in its own preference order; most votes wins, ties go to the leader's preference.
    fn select_protocol(&self) -> Option<String> {
        let first = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .or_else(|| self.members.values().next())?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.values().all(|m| m.protocols.iter().any(|(p, _)| p == n)))
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n.as_str())) {
                *votes.entry(n.as_str()).or_default() += 1;
            }
        }
        let best = candidates.iter().map(|c| votes.get(c).copied().unwrap_or(0)).max()?;
        candidates.iter().find(|c| votes.get(*c).copied().unwrap_or(0) == best).map(|c| c.to_string())
    }

    /// Move to PreparingRebalance (idempotent). Members learn of it from Heartbeat/SyncGroup.
    pub fn prepare_rebalance(&mut self, now: Instant, reason: &str) {
        if self.state == ConsumerGroupState::PreparingRebalance {
            return;
        }
        if self.state == ConsumerGroupState::CompletingRebalance {
            // The assignments being distributed belong to a generation that will never be
            // stable; parked followers must rejoin instead of waiting for them.
            for m in self.members.values_mut() {
                m.assignment = Bytes::new();
                m.answer_sync(SyncResponse::error(codes::REBALANCE_IN_PROGRESS));
            }
        }
        let timeout = self.max_rebalance_timeout();
        if self.state == ConsumerGroupState::Empty {
            self.initial_delay = Some(InitialDelay {
                deadline: now + self.initial_delay_cfg.min(timeout),
                cap: now + timeout,
            });
        }
        self.sync_deadline = None;
        self.rebalance_deadline = Some(now + timeout);
        info!(
            group = %self.id,
            generation = self.generation,
            reason,
            timeout_ms = timeout.as_millis() as u64,
            "preparing rebalance"
        );
        self.set_state(ConsumerGroupState::PreparingRebalance);
    }

    /// Complete the rebalance if every member has rejoined, or its deadline has passed.
    pub fn try_complete_join(&mut self, now: Instant) {
        if self.state != ConsumerGroupState::PreparingRebalance {
            return;
        }
        let deadline_passed = self.rebalance_deadline.is_none_or(|d| now >= d);
        if let Some(delay) = self.initial_delay {
            // During the initial delay "everyone has joined" is meaningless: more are coming.
            if now >= delay.deadline || deadline_passed {
                self.complete_join(now);
            }
            return;
        }
        let all_joined = self.pending.is_empty() && self.members.values().all(Member::awaiting_join);
        if all_joined || deadline_passed {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        self.initial_delay = None;
        self.rebalance_deadline = None;
        self.remove_late_members();
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            info!(group = %self.id, generation = self.generation, "rebalance completed with no members");
            self.set_state(ConsumerGroupState::Empty);
            return;
        }
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.values().min_by_key(|m| m.seq).map(|m| m.id.clone());
        }
        let Some(protocol) = self.select_protocol() else {
            self.empty_for_lack_of_protocol();
            return;
        };
        self.protocol = Some(protocol.clone());
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        self.set_state(ConsumerGroupState::CompletingRebalance);
        let leader = self.leader.clone().unwrap_or_default();
        info!(group = %self.id, generation = self.generation, leader = %leader, protocol = %protocol,
              members = self.members.len(), "rebalance completed");
        self.answer_joins(now, &protocol, &leader);
    }

    /// Members that had not rejoined when the rebalance completed leave the group.
    fn remove_late_members(&mut self) {
        let late: Vec<String> =
            self.members.values().filter(|m| !m.awaiting_join()).map(|m| m.id.clone()).collect();
        for id in late {
            info!(
                group = %self.id,
                member = %id,
                generation = self.generation,
                "member did not rejoin within the rebalance timeout; removed"
            );
            self.detach_member(&id);
        }
    }

    /// No protocol is common to every member. Unreachable while joins are validated with
    /// `supports`; fail safe (every waiter answered, the group emptied) rather than panic.
    fn empty_for_lack_of_protocol(&mut self) {
        warn!(group = %self.id, generation = self.generation, "no protocol common to all members; emptying group");
        for m in self.members.values_mut() {
            m.fail_waiters(codes::INCONSISTENT_GROUP_PROTOCOL);
        }
        self.members.clear();
        self.static_members.clear();
        self.leader = None;
        self.protocol = None;
        self.set_state(ConsumerGroupState::Empty);
    }

    /// Answers every member's parked JoinGroup with the new generation; only the leader's
    /// answer carries the roster it assigns partitions from.
    fn answer_joins(&mut self, now: Instant, protocol: &str, leader: &str) {
        let roster: Vec<JoinedMember> = self
            .members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata_for(protocol),
            })
            .collect();
        for m in self.members.values_mut() {
            m.synced = false;
            m.refresh_session(now);
            let resp = JoinResponse {
                error_code: codes::NONE,
                generation_id: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol_name: Some(protocol.to_string()),
                leader: leader.to_string(),
                member_id: m.id.clone(),
                members: if m.id == leader { roster.clone() } else { Vec::new() },
            };
            m.answer_join(resp);
        }
    }

    /// Remove a member without reacting to the change; dropping it fails its parked replies.
    pub fn detach_member(&mut self, member_id: &str) -> bool {
        let Some(member) = self.members.remove(member_id) else { return false };
        if let Some(instance) = &member.group_instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(member_id) {
                self.static_members.remove(instance);
            }
        }
        if self.is_leader(member_id) {
            self.leader = None;
        }
        true
    }

    /// Remove a member and move the group on: rebalance without it, or finish a rebalance that
    /// was only waiting for it.
    pub fn remove_member(&mut self, member_id: &str, now: Instant, reason: &str) {
        if !self.detach_member(member_id) {
            return;
        }
        info!(group = %self.id, member = %member_id, generation = self.generation, reason, "member removed");
        if matches!(self.state, ConsumerGroupState::Stable | ConsumerGroupState::CompletingRebalance) {
            self.prepare_rebalance(now, reason);
        }
        // Completes at once if everyone left has already rejoined (or no one is left).
        self.try_complete_join(now);
    }

    /// The JoinGroup answer for a member re-joining without changes: the current generation.
    pub fn current_join_response(&self, member_id: &str) -> JoinResponse {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = if self.is_leader(member_id) {
            self.members
                .values()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    metadata: m.metadata_for(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        debug!(
            group = %self.id,
            member = %member_id,
            generation = self.generation,
            "join answered with current generation"
        );
        JoinResponse {
            error_code: codes::NONE,
            generation_id: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
        }
    }

    pub fn describe(&self) -> GroupDescription {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupDescription {
            error_code: codes::NONE,
            group_id: self.id.clone(),
            state: self.state.name().to_string(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    pub fn snapshot(&self, committed_offsets: usize) -> GroupSnapshot {
        GroupSnapshot {
            group_id: self.id.clone(),
            state: self.state.name().to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberSnapshot {
                    member_id: m.id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment_bytes: m.assignment.len(),
                    awaiting_join: m.awaiting_join(),
                    awaiting_sync: m.sync_waiter.is_some(),
                })
                .collect(),
            committed_offsets,
        }
    }
}

/// The topics of a consumer-protocol subscription (a version, then Kafka's
/// ConsumerProtocolSubscription at that version); empty when the bytes do not decode.
fn subscription_topics(metadata: &Bytes) -> Vec<String> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = metadata.clone();
    if buf.remaining() < 2 {
        return Vec::new();
    }
    let version = buf.get_i16().clamp(0, 3);
    ConsumerProtocolSubscription::decode(&mut buf, version)
        .map(|s| s.topics.into_iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}
