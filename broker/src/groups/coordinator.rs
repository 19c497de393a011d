//! The coordinator: one lock over all groups, parked replies awaited outside it, and the
//! timer task that enforces every deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::codes;
use super::group::Group;
use super::join::JoinOutcome;
use super::membership::SyncOutcome;
use super::offsets::{CommitTicket, FileBackend, OffsetBackend, OffsetStore, PersistFn};
use super::types::*;
use crate::error::{BrokerError, Result};

/// Timer granularity: deadlines are honoured within this much.
const TICK: Duration = Duration::from_millis(50);
/// A parked reply is normally resolved by the timer task at its group deadline; this extra
/// margin is a last-resort bound in case that task is not running.
const REPLY_GRACE: Duration = Duration::from_secs(5);
const EVENT_CAPACITY: usize = 1024;

/// A commit checked and queued (`start_commit`), not yet durable.
#[derive(Debug)]
pub struct PendingCommit {
    /// One code per offset asked for; NONE ones wait for the write.
    codes: Vec<i16>,
    ticket: Option<CommitTicket>,
}

pub struct GroupCoordinator {
    config: CoordinatorConfig,
    groups: Mutex<HashMap<String, Group>>,
    offsets: OffsetStore,
    events: broadcast::Sender<GroupEvent>,
}

impl GroupCoordinator {
    /// Single node: offsets in one file. `persisted_offsets` is what `persist` last wrote in a
    /// previous run, if anything.
    pub fn new(
        config: CoordinatorConfig,
        persisted_offsets: Option<Vec<u8>>,
        persist: PersistFn,
    ) -> Result<Arc<Self>> {
        let backend = FileBackend::new(persisted_offsets, persist)?;
        Self::with_backend(config, Arc::new(backend))
    }

    /// Offsets made durable and read back through `backend` (cluster: the controller's log).
    pub fn with_backend(config: CoordinatorConfig, backend: Arc<dyn OffsetBackend>) -> Result<Arc<Self>> {
        if config.min_session_timeout > config.max_session_timeout {
            return Err(BrokerError::Config {
                source_name: "group coordinator".to_string(),
                message: format!(
                    "min_session_timeout {:?} is above max_session_timeout {:?}",
                    config.min_session_timeout, config.max_session_timeout
                ),
            });
        }
        let offsets = OffsetStore::new(backend);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        Ok(Arc::new(GroupCoordinator { config, groups: Mutex::new(HashMap::new()), offsets, events }))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        // Group operations never panic midway by design; if one ever does, keep serving the
        // other groups rather than turning every later request into a panic.
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, group: &mut Group) {
        for event in group.events.drain(..) {
            // No subscribers is normal.
            let _ = self.events.send(event);
        }
    }

    /// Runs a group's timers now, before a request that depends on its membership is decided:
    /// the timer task only passes every TICK, and a session that expired a moment ago must
    /// not keep a member in a group that DeleteGroups or OffsetDelete asks about (Kafka
    /// expires it at its deadline exactly; librdkafka's 0081 deletes a group a hair after).
    fn catch_up(&self, groups: &mut HashMap<String, Group>, group_id: &str) {
        if let Some(group) = groups.get_mut(group_id) {
            group.tick(Instant::now());
            self.publish(group);
        }
    }

    pub async fn join(&self, req: JoinRequest) -> JoinResponse {
        if req.group_id.is_empty() {
            return JoinResponse::error(codes::INVALID_GROUP_ID, &req.member_id);
        }
        let session = Duration::from_millis(req.session_timeout_ms.max(0) as u64);
        if req.session_timeout_ms <= 0
            || session < self.config.min_session_timeout
            || session > self.config.max_session_timeout
        {
            return JoinResponse::error(codes::INVALID_SESSION_TIMEOUT, &req.member_id);
        }
        let (group_id, member_id) = (req.group_id.clone(), req.member_id.clone());
        let outcome = {
            let mut groups = self.lock();
            if !member_id.is_empty() && !groups.contains_key(&group_id) {
                return JoinResponse::error(codes::UNKNOWN_MEMBER_ID, &member_id);
            }
            let group = groups
                .entry(group_id.clone())
                .or_insert_with(|| Group::new(&group_id, self.config.initial_rebalance_delay));
            let outcome = group.join(req, Instant::now());
            self.publish(group);
            outcome
        };
        match outcome {
            JoinOutcome::Done(resp) => resp,
            JoinOutcome::Parked(rx, deadline) => {
                let fallback = || JoinResponse::error(codes::REBALANCE_IN_PROGRESS, &member_id);
                await_reply(rx, deadline, &group_id, &member_id, "join", fallback).await
            }
        }
    }

    pub async fn sync(&self, req: SyncRequest) -> SyncResponse {
        if req.group_id.is_empty() {
            return SyncResponse::error(codes::INVALID_GROUP_ID);
        }
        let (group_id, member_id) = (req.group_id.clone(), req.member_id.clone());
        let outcome = {
            let mut groups = self.lock();
            let Some(group) = groups.get_mut(&group_id) else {
                return SyncResponse::error(codes::UNKNOWN_MEMBER_ID);
            };
            let outcome = group.sync(req, Instant::now());
            self.publish(group);
            outcome
        };
        match outcome {
            SyncOutcome::Done(resp) => resp,
            SyncOutcome::Parked(rx, deadline) => {
                let fallback = || SyncResponse::error(codes::REBALANCE_IN_PROGRESS);
                await_reply(rx, deadline, &group_id, &member_id, "sync", fallback).await
            }
        }
    }

    pub fn heartbeat(&self, group_id: &str, generation_id: i32, member_id: &str) -> i16 {
        if group_id.is_empty() {
            return codes::INVALID_GROUP_ID;
        }
        let mut groups = self.lock();
        match groups.get_mut(group_id) {
            Some(group) => group.heartbeat(generation_id, member_id, Instant::now()),
            None => codes::UNKNOWN_MEMBER_ID,
        }
    }

    /// Returns (top-level code, one code per entry). For LeaveGroup v0-2 the mapper should
    /// answer with the single entry's code.
    pub fn leave(&self, group_id: &str, members: &[LeaveMember]) -> (i16, Vec<i16>) {
        if group_id.is_empty() {
            return (codes::INVALID_GROUP_ID, vec![codes::INVALID_GROUP_ID; members.len()]);
        }
        let mut groups = self.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return (codes::NONE, vec![codes::UNKNOWN_MEMBER_ID; members.len()]);
        };
        let per_member = group.leave(members, Instant::now());
        self.publish(group);
        (codes::NONE, per_member)
    }

    /// Unknown groups are reported as "Dead" with NONE, as Kafka does; groups that only have
    /// committed offsets are "Empty".
    pub fn describe(&self, group_id: &str) -> GroupDescription {
        let mut desc = GroupDescription {
            error_code: codes::NONE,
            group_id: group_id.to_string(),
            state: "Dead".to_string(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        if group_id.is_empty() {
            desc.error_code = codes::INVALID_GROUP_ID;
            return desc;
        }
        if let Some(group) = self.lock().get(group_id) {
            return group.describe();
        }
        if self.offsets.count(group_id) > 0 {
            desc.state = "Empty".to_string();
        }
        desc
    }

    pub fn list(&self) -> Vec<GroupListing> {
        let groups = self.lock();
        let mut out: Vec<GroupListing> = groups
            .values()
            .map(|g| GroupListing {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state.name().to_string(),
            })
            .collect();
        for id in self.offsets.groups() {
            if !groups.contains_key(&id) {
                out.push(GroupListing {
                    group_id: id,
                    protocol_type: String::new(),
                    state: "Empty".to_string(),
                });
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// One code per entry. Blocks until the offsets are durable (the backend says so), so
    /// call it from `spawn_blocking`/`block_in_place`. A failed write rejects the commit with
    /// COORDINATOR_NOT_AVAILABLE, or NOT_COORDINATOR when this node stopped coordinating:
    /// retriable for clients, which then retry or rediscover.
    pub fn commit_offsets(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        offsets: &[OffsetCommit],
    ) -> Vec<i16> {
        let pending = self.start_commit(group_id, generation_id, member_id, offsets);
        self.finish_commit(pending)
    }

    /// Checks a commit and queues the valid offsets without blocking: call it in the order the
    /// connection received its commits (async commits of one consumer must land in that order),
    /// then `finish_commit` on a blocking thread.
    pub fn start_commit(
        &self,
        group_id: &str,
        generation_id: i32,
        member_id: &str,
        offsets: &[OffsetCommit],
    ) -> PendingCommit {
        if group_id.is_empty() {
            return PendingCommit { codes: vec![codes::INVALID_GROUP_ID; offsets.len()], ticket: None };
        }
        let group_code = match self.lock().get_mut(group_id) {
            Some(group) => group.validate_commit(generation_id, member_id, Instant::now()),
            // Kafka: a group-less ("simple") commit is fine; a generation for a group this
            // coordinator does not know is from a stale member.
            None if generation_id < 0 => codes::NONE,
            None => codes::ILLEGAL_GENERATION,
        };
        let result: Vec<i16> = offsets
            .iter()
            .map(|o| {
                if group_code != codes::NONE {
                    group_code
                } else if o.topic.is_empty() || o.partition < 0 {
                    codes::UNKNOWN_TOPIC_OR_PARTITION
                } else if o.metadata.as_ref().is_some_and(|m| m.len() > codes::MAX_OFFSET_METADATA_BYTES) {
                    codes::OFFSET_METADATA_TOO_LARGE
                } else {
                    codes::NONE
                }
            })
            .collect();
        let valid: Vec<OffsetCommit> =
            offsets.iter().zip(&result).filter(|(_, c)| **c == codes::NONE).map(|(o, _)| o.clone()).collect();
        let ticket = (!valid.is_empty()).then(|| self.offsets.enqueue(group_id, valid));
        PendingCommit { codes: result, ticket }
    }

    /// Waits (blocking) until a started commit is durable; its error codes.
    pub fn finish_commit(&self, pending: PendingCommit) -> Vec<i16> {
        let PendingCommit { codes: mut result, ticket } = pending;
        if let Some(ticket) = ticket {
            let written = self.offsets.wait(ticket);
            if written != codes::NONE {
                for code in result.iter_mut().filter(|c| **c == codes::NONE) {
                    *code = written;
                }
            }
        }
        result
    }

    /// DeleteGroups for one group: only a group without members (NON_EMPTY_GROUP otherwise);
    /// its committed offsets are removed through the offset backend, in line with commits.
    /// Blocks until that is durable, as `finish_commit`.
    pub fn delete_group(&self, group_id: &str) -> i16 {
        if group_id.is_empty() {
            return codes::INVALID_GROUP_ID;
        }
        let ticket = {
            let mut groups = self.lock();
            self.catch_up(&mut groups, group_id);
            match groups.get(group_id) {
                Some(g) if !g.members.is_empty() || !g.pending.is_empty() => return codes::NON_EMPTY_GROUP,
                Some(_) => {}
                None if self.offsets.count(group_id) == 0 => return codes::GROUP_ID_NOT_FOUND,
                None => {}
            }
            groups.remove(group_id);
            // Queued under the groups lock: a member joining now finds no group and starts a
            // new one, whose commits queue behind this removal.
            self.offsets.enqueue_delete(group_id)
        };
        let code = self.offsets.wait(ticket);
        if code == codes::NONE {
            info!(group = %group_id, "group deleted");
        }
        code
    }

    /// OffsetDelete: removes the committed offsets of `partitions` (Kafka's
    /// `kafka-consumer-groups --delete-offsets`). The group-level error, or one code per
    /// partition: GROUP_SUBSCRIBED_TO_TOPIC where a member still subscribes to the topic, else
    /// the outcome of the write, which is ordered with the commits and as durable as one.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> std::result::Result<Vec<i16>, i16> {
        if group_id.is_empty() {
            return Err(codes::INVALID_GROUP_ID);
        }
        let (codes_out, ticket) = {
            let mut groups = self.lock();
            self.catch_up(&mut groups, group_id);
            let subscribed = match groups.get(group_id) {
                None if self.offsets.count(group_id) == 0 => return Err(codes::GROUP_ID_NOT_FOUND),
                Some(g) if !g.members.is_empty() => match g.subscribed_topics() {
                    Some(topics) => topics,
                    // Members of another protocol: Kafka cannot tell what they read.
                    None => return Err(codes::NON_EMPTY_GROUP),
                },
                _ => Default::default(),
            };
            let codes_out: Vec<i16> = partitions
                .iter()
                .map(
                    |(t, _)| {
                        if subscribed.contains(t) {
                            codes::GROUP_SUBSCRIBED_TO_TOPIC
                        } else {
                            codes::NONE
                        }
                    },
                )
                .collect();
            let removed: Vec<(String, i32)> = partitions
                .iter()
                .zip(&codes_out)
                .filter(|(_, c)| **c == codes::NONE)
                .map(|(p, _)| p.clone())
                .collect();
            // Queued under the groups lock, like a commit, so it is ordered with them.
            let ticket = (!removed.is_empty()).then(|| self.offsets.enqueue_removal(group_id, removed));
            (codes_out, ticket)
        };
        let written = ticket.map_or(codes::NONE, |t| self.offsets.wait(t));
        if written == codes::NONE {
            info!(group = %group_id, partitions = partitions.len(), "committed offsets deleted");
        }
        Ok(codes_out.into_iter().map(|c| if c == codes::NONE { written } else { c }).collect())
    }

    /// `None` = every partition the group has committed; otherwise offset -1 where none.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<CommittedOffset> {
        if group_id.is_empty() {
            let wanted = partitions.unwrap_or_default();
            return wanted
                .iter()
                .map(|(t, p)| CommittedOffset {
                    topic: t.clone(),
                    partition: *p,
                    offset: -1,
                    metadata: None,
                    leader_epoch: -1,
                    error_code: codes::INVALID_GROUP_ID,
                })
                .collect();
        }
        self.offsets.fetch(group_id, partitions)
    }

    pub fn snapshot(&self) -> GroupsSnapshot {
        let groups = self.lock();
        let mut out: Vec<GroupSnapshot> =
            groups.values().map(|g| g.snapshot(self.offsets.count(&g.id))).collect();
        for id in self.offsets.groups() {
            if !groups.contains_key(&id) {
                let count = self.offsets.count(&id);
                out.push(Group::new(&id, Duration::ZERO).snapshot(count));
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        GroupsSnapshot { groups: out }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<GroupEvent> {
        self.events.subscribe()
    }

    /// One timer pass over every group; `run_timers` calls it each tick (public so tests and
    /// embedders can drive time explicitly).
    pub fn tick(&self) {
        let now = Instant::now();
        let mut groups = self.lock();
        for group in groups.values_mut() {
            group.tick(now);
            self.publish(group);
        }
        groups.retain(|id, g| !g.is_disposable() || self.offsets.count(id) > 0);
    }

    /// Enforces session, rebalance, sync and initial-delay deadlines until `cancel` fires; then
    /// answers every parked request with NOT_COORDINATOR so no client waits on a stopped node.
    pub async fn run_timers(self: Arc<Self>, cancel: CancellationToken) {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = interval.tick() => self.tick(),
            }
        }
        let mut groups = self.lock();
        for group in groups.values_mut() {
            for member in group.members.values_mut() {
                member.fail_waiters(codes::NOT_COORDINATOR);
            }
        }
        info!("group coordinator timers stopped");
    }
}

/// Await a parked reply, bounded by the group deadline plus a grace period.
async fn await_reply<T>(
    rx: oneshot::Receiver<T>,
    deadline: Instant,
    group: &str,
    member: &str,
    what: &str,
    fallback: impl Fn() -> T,
) -> T {
    match tokio::time::timeout_at(deadline + REPLY_GRACE, rx).await {
        Ok(Ok(resp)) => resp,
        // Members answer their waiters when dropped, so this is only a safety net.
        Ok(Err(_)) => fallback(),
        Err(_) => {
            warn!(
                group = %group,
                member = %member,
                what,
                "parked reply not resolved by its deadline; are the group timers running?"
            );
            fallback()
        }
    }
}
