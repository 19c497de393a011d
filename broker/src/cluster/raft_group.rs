//! One running Raft group on this node: its openraft instance, its log, ordered proposals and
//! a cheap copy of its state.
//!
//! Groups are quiet: openraft's own heartbeats, ticks and election timers are off for every group
//! (`group_config`), so an idle group costs no timer and no message. Liveness is the node's
//! (`liveness.rs`) and elections are started by the node's driver (`elections.rs`).
//!
//! Proposals reach openraft in the order they were made — the order the connection read them —
//! which is what keeps a producer's pipelined batches in sequence: `propose` hands the command
//! to openraft's unbounded input queue before it returns, and one task per proposal waits for
//! its commit, so proposals still pipeline. (A task per group used to do the hand-over; at a
//! thousand groups under load that hop was one more wakeup per entry, for nothing.)
//!
//! A proposal still waiting when this node stops leading is answered "not leader" at once, as
//! Kafka answers a produce waiting for acks when its leader moves. openraft would keep it until
//! the entry commits under the new leader or is thrown away, and a quiet group may not tell this
//! node either for a long time: the client would wait out its request timeout instead of
//! retrying at the new leader (its idempotent retry is deduplicated there).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ServerState};
use tokio::sync::{oneshot, watch};

use crate::cluster::leader_directory::LeaderDirectory;
use crate::cluster::liveness::Liveness;
use crate::error::{BrokerError, Result};
use crate::log::{LogStore, PartitionLog};
use crate::raft::raft_log::RaftLog;
use crate::raft::state_machine::{Applier, GroupStateMachine};
use crate::raft::transport::Transport;
use crate::raft::typ::{Command, CommandResult, GroupId, NodeId, Raft, RaftMetrics};
use crate::telemetry::wire::Role;

/// Why a proposal did not commit.
#[derive(Debug, Clone, PartialEq)]
pub enum ProposeError {
    /// Another node leads the group (or none does right now).
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The group is shutting down.
    Stopped,
    Failed(String),
}

/// What a proposal comes to.
pub type ProposalOutcome = std::result::Result<CommandResult, ProposeError>;

/// Who leads the group in which term, as the group's watcher last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Leadership {
    term: u64,
    leader: Option<NodeId>,
}

/// What every group of this node shares.
pub struct GroupEnv {
    pub node_id: NodeId,
    pub store: Arc<LogStore>,
    pub transport: Arc<Transport>,
    pub config: Arc<openraft::Config>,
    pub liveness: Arc<Liveness>,
    /// Told when a group's leadership changes, for the peers that do not host it.
    pub directory: Arc<LeaderDirectory>,
}

/// The shortest deadline of an AppendEntries, in ms. Under a produce spread over thousands of
/// partitions a follower's append waits for a flusher round over many dirty files; with
/// openraft's usual deadline (a heartbeat interval, ~225 ms here) those appends timed out and
/// were re-sent at once, two million times in two minutes at 10,000 partitions, and replication
/// stopped making progress.
const APPEND_DEADLINE_MIN_MS: u64 = 1_000;

/// The openraft configuration of every group, from the cluster's election timeout range
/// `[min, max)`: openraft's own timers are off, the node drives them (liveness.rs, elections.rs),
/// and what is left of openraft's timing is derived from the middle of the range:
///
/// - its `election_timeout_min` is the timeout of every vote request. Loaded two-core machines
///   answered some votes after more than 150 ms, and a timed-out campaign costs a term, so it
///   sits in the middle of the range rather than at its start;
/// - its `election_timeout_max` (one above) is the leader lease a follower honours before it
///   grants a vote to someone else. It stays below `max`, the node's suspicion timeout, so that
///   by the time a leader is suspected dead its followers accept a successor at once;
/// - its `heartbeat_interval` no longer times heartbeats (they are off) but is the deadline of
///   every AppendEntries and the period of each group's tick task, which wakes even when ticks
///   are off: at least `APPEND_DEADLINE_MIN_MS`, so that slow appends are not re-sent in a loop
///   and 10,000 idle groups wake their tick tasks ~4,500 times a second rather than ~30,000.
///   openraft's check that it is below `election_timeout_min` protects its own heartbeat and
///   election timers, both off here, so it is applied after validation.
pub fn group_config(
    election_min_ms: u64,
    election_max_ms: u64,
) -> std::result::Result<openraft::Config, String> {
    let middle = (election_min_ms + election_max_ms) / 2;
    let mut config = openraft::Config {
        cluster_name: "clusterlab".into(),
        heartbeat_interval: middle.saturating_sub(1).max(1),
        election_timeout_min: middle.max(2),
        election_timeout_max: middle.max(2) + 1,
        enable_heartbeat: false,
        enable_elect: false,
        enable_tick: false,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Default::default()
    }
    .validate()
    .map_err(|e| e.to_string())?;
    config.heartbeat_interval = config.heartbeat_interval.max(APPEND_DEADLINE_MIN_MS);
    Ok(config)
}

/// The part of a group's metrics everything else reads, copied out on every change: cloning
/// openraft's metrics (maps of members and matched indexes) per Metadata request and group cost
/// more than the request itself at thousands of partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupView {
    pub term: u64,
    pub leader: Option<NodeId>,
    pub state: ServerState,
    /// A majority acknowledged this node as leader at least once in its current leadership
    /// (openraft's `millis_since_quorum_ack` is set). A leader restored from disk has not been.
    pub quorum_acked: bool,
    /// (term, index) of the last log entry.
    pub last_log: Option<(u64, u64)>,
    pub applied: Option<u64>,
    /// Term of the last applied entry: below `term` on a leader, its own term's first entry has
    /// not been applied yet, so its high watermark may still lag the previous leader's.
    pub applied_term: Option<u64>,
    /// When the log, term or leader last changed: a follower grants no vote to another candidate
    /// until openraft's leader lease has passed since it last heard from its leader.
    pub changed_at: tokio::time::Instant,
}

impl GroupView {
    /// `last_term`: the term of the last log entry (the log knows it; the metrics do not).
    fn of(m: &RaftMetrics, last_term: Option<u64>) -> GroupView {
        GroupView {
            term: m.current_term,
            leader: m.current_leader,
            state: m.state,
            quorum_acked: m.millis_since_quorum_ack.is_some(),
            last_log: m.last_log_index.map(|i| (last_term.unwrap_or(0), i)),
            applied: m.last_applied.map(|l| l.index),
            applied_term: m.last_applied.map(|l| l.leader_id.term),
            changed_at: tokio::time::Instant::now(),
        }
    }

    /// The first entry of this node's current term is applied: until then a new leader's high
    /// watermark may still lag the previous leader's.
    pub(crate) fn own_term_applied(&self) -> bool {
        self.applied_term.is_some_and(|t| t >= self.term)
    }

    /// Not a leader that clients are still waiting on: one a majority has not acknowledged yet,
    /// or whose own term's first entry is not applied yet.
    pub(crate) fn settled(&self) -> bool {
        self.state != ServerState::Leader || (self.quorum_acked && self.own_term_applied())
    }

    /// What this node tells peers that do not host the group (`leader_directory.rs`).
    fn announced(&self) -> (u64, Option<NodeId>, bool) {
        (self.term, self.leader, self.state == ServerState::Leader && self.quorum_acked)
    }

    /// Nothing in this node's log came from a leader: it holds only the membership the group
    /// was initialized with (term 0), whatever the term (see `elections.rs`).
    pub fn never_led(&self) -> bool {
        self.last_log.is_none_or(|(term, _)| term == 0)
    }

    fn same_progress(&self, other: &GroupView) -> bool {
        (self.term, self.leader, self.last_log) == (other.term, other.leader, other.last_log)
    }
}

/// A started group.
pub struct RaftGroup {
    pub id: GroupId,
    pub raft: Raft,
    pub log: Arc<PartitionLog>,
    pub voters: BTreeSet<NodeId>,
    /// Voters in preference order: the first is the preferred leader (Kafka's replica order).
    pub preferred: Vec<NodeId>,
    node_id: NodeId,
    liveness: Arc<Liveness>,
    directory: Arc<LeaderDirectory>,
    lease: std::time::Duration,
    view: Mutex<GroupView>,
    /// Changes only when the term or the leader does: what waiting proposals watch.
    leadership: watch::Sender<Leadership>,
}

/// The group's openraft instance over `log`, which from here on is a replicated log.
async fn open_raft(
    env: &GroupEnv,
    id: &GroupId,
    log: &Arc<PartitionLog>,
    applier: Arc<dyn Applier>,
) -> Result<Raft> {
    // Before openraft starts: it applies (and so raises the high watermark) from here on.
    log.start_replicated();
    let log_store = RaftLog::new(id.clone(), Arc::clone(log), Arc::clone(&env.store));
    let log_store = log_store.traced(env.transport.trace());
    let state_machine = GroupStateMachine::new(Arc::clone(log), applier);
    let network = env.transport.network_factory(id.clone());
    Raft::new(env.node_id, Arc::clone(&env.config), network, log_store, state_machine)
        .await
        .map_err(|e| BrokerError::Raft { group: id.clone(), step: "start", reason: e.to_string() })
}

/// Gives a pristine group its first membership, `voters`, and makes that entry durable.
async fn initialize_membership(
    raft: &Raft,
    id: &GroupId,
    voters: &BTreeSet<NodeId>,
    log: &PartitionLog,
) -> Result<()> {
    let members: BTreeMap<NodeId, BasicNode> = voters.iter().map(|v| (*v, BasicNode::default())).collect();
    match raft.initialize(members).await {
        Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
        Err(e) => {
            return Err(BrokerError::Raft { group: id.clone(), step: "initialize", reason: e.to_string() })
        }
    }
    // The group's first membership must outlive a power cut under any fsync policy, or
    // a node would come back with a vote but no members and never elect again.
    // At least, not exactly: a group of one voter elects itself at once and its blank entry
    // (index 1) may come before this looks; waiting for exactly 0 then took the whole 5 s.
    let appended = raft
        .wait(Some(std::time::Duration::from_secs(5)))
        .log_index_at_least(Some(0), "first membership entry")
        .await;
    if let Err(e) = appended {
        tracing::warn!(group = %id, error = %e, "first membership entry not seen in the log yet");
    }
    log.sync().await.map_err(|e| BrokerError::Raft {
        group: id.clone(),
        step: "syncing the first entry",
        reason: e.to_string(),
    })
}

impl RaftGroup {
    /// Starts the group's Raft instance over `log` and initializes it with `preferred` as its
    /// voters if it is pristine. Every voter may initialize: with the same membership that is
    /// safe, and it means a group forms even when some of its nodes are down at creation time.
    pub async fn start(
        env: &GroupEnv,
        id: GroupId,
        preferred: Vec<NodeId>,
        log: Arc<PartitionLog>,
        applier: Arc<dyn Applier>,
    ) -> Result<Arc<RaftGroup>> {
        let voters: BTreeSet<NodeId> = preferred.iter().copied().collect();
        let raft = open_raft(env, &id, &log, applier).await?;
        if log.entry_count() == 0 {
            initialize_membership(&raft, &id, &voters, &log).await?;
        }
        let first = GroupView::of(&raft.metrics().borrow(), log.last_entry_term());
        let (leadership, _) = watch::channel(Leadership { term: first.term, leader: first.leader });
        let view = Mutex::new(first);
        tracing::info!(group = %id, node_id = env.node_id, voters = ?preferred, "raft group started");
        Ok(Arc::new(RaftGroup {
            id,
            raft,
            log,
            voters,
            preferred,
            node_id: env.node_id,
            liveness: Arc::clone(&env.liveness),
            directory: Arc::clone(&env.directory),
            lease: std::time::Duration::from_millis(env.config.election_timeout_max),
            view,
            leadership,
        }))
    }

    /// Queues a command; the receiver resolves when it is committed and applied (or fails).
    /// Synchronous on purpose: callers enqueue in arrival order without awaiting anything.
    pub fn propose(&self, command: Command) -> oneshot::Receiver<ProposalOutcome> {
        self.propose_then(command, |_| {})
    }

    /// [`RaftGroup::propose`], with `on_outcome` run on the outcome before the receiver gets it,
    /// in the task that waits for the commit anyway (no second task per proposal). Must be
    /// called inside the runtime.
    pub fn propose_then(
        &self,
        command: Command,
        on_outcome: impl FnOnce(&ProposalOutcome) + Send + 'static,
    ) -> oneshot::Receiver<ProposalOutcome> {
        let (tx, rx) = oneshot::channel();
        let mut leadership = self.leadership.subscribe();
        let at_proposal = *leadership.borrow_and_update();
        // `client_write_ff` only puts the command on openraft's unbounded input queue, so it is
        // ready at its first poll; it stays pending only on the way to a "core stopped" error.
        let Some(Ok(pending)) = self.raft.client_write_ff(command).now_or_never() else {
            let outcome = Err(ProposeError::Stopped);
            on_outcome(&outcome);
            let _ = tx.send(outcome);
            return rx;
        };
        let node_id = self.node_id;
        // Detached, one per proposal: it ends when openraft answers, or drops the responder (at
        // the latest when `stop` shuts the group's Raft down).
        tokio::spawn(async move {
            let outcome = tokio::select! {
                biased;
                outcome = pending => match outcome {
                    Ok(Ok(response)) => Ok(response.data),
                    Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                        Err(ProposeError::NotLeader { leader: f.leader_id })
                    }
                    Ok(Err(e)) => Err(ProposeError::Failed(e.to_string())),
                    // openraft dropped the responder: it is shutting down or lost leadership.
                    Err(_) => Err(ProposeError::NotLeader { leader: None }),
                },
                leader = leadership_moved(&mut leadership, node_id, at_proposal) => {
                    Err(ProposeError::NotLeader { leader })
                }
            };
            on_outcome(&outcome);
            let _ = tx.send(outcome);
        });
        rx
    }

    /// A full copy of openraft's metrics (costly: prefer [`RaftGroup::view`]).
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// The state as of the latest metrics change (kept by the group's watcher).
    pub fn view(&self) -> GroupView {
        *self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the group's watcher on every metrics change.
    pub(crate) fn update_view(&self, m: &RaftMetrics) -> GroupView {
        let mut view = GroupView::of(m, self.log.last_entry_term());
        let mut current = self.view.lock().unwrap_or_else(|p| p.into_inner());
        if view.same_progress(&current) {
            view.changed_at = current.changed_at;
        }
        if view.announced() != current.announced() {
            self.directory.changed();
        }
        *current = view;
        drop(current);
        let now = Leadership { term: view.term, leader: view.leader };
        self.leadership.send_if_modified(|seen| std::mem::replace(seen, now) != now);
        view
    }

    /// The leader as this node knows it. This node counts as leader only while it is confirmed:
    /// - a majority acknowledged it at least once in this leadership. A restarted node whose last
    ///   vote was its own comes back as Leader of that old term, with a log that may lack what
    ///   later leaders committed; serving producers from it answered OUT_OF_ORDER_SEQUENCE, which
    ///   is fatal to an idempotent librdkafka producer;
    /// - a majority of its voters still answers the node's heartbeats. openraft 0.9 keeps a
    ///   leader cut off from its majority in the Leader role (it has no check-quorum step-down),
    ///   but it cannot commit.
    ///
    /// Either way clients must look elsewhere (or retry in a moment: a freshly elected leader
    /// is acknowledged within one round trip).
    pub fn leader(&self) -> Option<NodeId> {
        self.leader_in(&self.view())
    }

    /// [`RaftGroup::leader`] as of view `v` (read once by a caller that also needs its term).
    pub fn leader_in(&self, v: &GroupView) -> Option<NodeId> {
        match v.leader {
            Some(l) if l == self.node_id && !self.confirmed(v) => None,
            other => other,
        }
    }

    /// openraft's leader lease: how long after hearing from its leader a follower refuses votes.
    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    pub fn is_leader(&self, node_id: NodeId) -> bool {
        self.leader() == Some(node_id)
    }

    pub fn confirmed(&self, v: &GroupView) -> bool {
        v.state == ServerState::Leader && v.quorum_acked && self.liveness.quorum_acked(&self.voters)
    }

    /// The role to show: openraft's, except `IsolatedLeader` for a leader its majority no
    /// longer answers. A restored, never acknowledged leader shows as Leader of its old term.
    pub fn role(&self, v: &GroupView) -> Role {
        match v.state {
            ServerState::Leader if !self.liveness.quorum_acked(&self.voters) => Role::IsolatedLeader,
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        }
    }

    /// Resolves once this node no longer leads the group (or is isolated from its majority).
    ///
    /// Woken by the group's own leadership channel, not by openraft's metrics: `is_leader`
    /// reads the watcher's view, which changes only when the watcher has read the metrics, and
    /// openraft re-sends those at every step of every entry. Every produce request awaiting its
    /// commit waits here, so at a thousand busy groups that was several wakeups per request per
    /// step, each for an unchanged answer.
    pub async fn leadership_lost(&self, node_id: NodeId) {
        let mut rx = self.leadership.subscribe();
        let recheck = self.liveness.suspect_after().max(std::time::Duration::from_millis(50));
        loop {
            if !self.is_leader(node_id) {
                return;
            }
            // Isolation (and a stopped group) is a matter of time passing, not of the leader
            // changing.
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return },
                _ = tokio::time::sleep(recheck) => {}
            }
        }
    }

    pub async fn stop(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(group = %self.id, error = %e, "raft group did not stop cleanly");
        }
    }
}

/// Resolves with the new leader once this node has stopped leading the group since a proposal
/// was made (`at_proposal`). The watcher's copy may lag openraft by a moment, so a change only
/// counts if this node was seen leading, or the term moved on: a lagging "no leader yet" at
/// proposal time is not a loss. Never resolves if the group stops (the proposal's own answer
/// comes then).
async fn leadership_moved(
    leadership: &mut watch::Receiver<Leadership>,
    node_id: NodeId,
    at_proposal: Leadership,
) -> Option<NodeId> {
    let mut led = at_proposal.leader == Some(node_id);
    loop {
        if leadership.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = *leadership.borrow_and_update();
        if now.leader == Some(node_id) {
            led = true;
        } else if led || now.term > at_proposal.term {
            return now.leader;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const ME: NodeId = 1;

    fn at(term: u64, leader: Option<NodeId>) -> Leadership {
        Leadership { term, leader }
    }

    /// Feeds `changes` into a leadership watch that started at `start` and says whether a
    /// proposal made at `start` is answered "not leader", and with which leader.
    async fn moved_after(start: Leadership, changes: &[Leadership]) -> Option<Option<NodeId>> {
        let (tx, mut rx) = watch::channel(start);
        let at_proposal = *rx.borrow_and_update();
        let waiter = tokio::spawn(async move { leadership_moved(&mut rx, ME, at_proposal).await });
        for change in changes {
            tx.send_replace(*change);
            tokio::task::yield_now().await;
        }
        let outcome = tokio::time::timeout(Duration::from_millis(200), waiter).await;
        drop(tx);
        outcome.ok().map(|joined| joined.expect("waiter panicked"))
    }

    #[tokio::test]
    async fn a_leader_that_is_deposed_answers_with_the_new_leader() {
        assert_eq!(moved_after(at(5, Some(ME)), &[at(6, Some(2))]).await, Some(Some(2)));
        assert_eq!(moved_after(at(5, Some(ME)), &[at(6, None)]).await, Some(None));
    }

    #[tokio::test]
    async fn a_lagging_view_at_proposal_time_is_not_a_loss() {
        // The watcher had not yet seen this node win term 5 when the proposal was made.
        assert_eq!(moved_after(at(5, None), &[at(5, Some(ME))]).await, None);
        assert_eq!(moved_after(at(4, Some(2)), &[at(5, Some(ME))]).await, None);
        // ...and once it has been seen leading, losing it counts.
        assert_eq!(moved_after(at(5, None), &[at(5, Some(ME)), at(6, Some(3))]).await, Some(Some(3)));
    }

    #[tokio::test]
    async fn a_later_term_without_this_node_is_a_loss_even_if_never_seen_leading() {
        assert_eq!(moved_after(at(5, None), &[at(6, Some(2))]).await, Some(Some(2)));
    }

    #[tokio::test]
    async fn re_election_of_this_node_keeps_the_proposal_waiting() {
        assert_eq!(moved_after(at(5, Some(ME)), &[at(6, Some(ME))]).await, None);
    }

    #[test]
    fn a_group_is_never_led_until_a_leader_wrote_to_its_log() {
        let view = |term, last_log| GroupView {
            term,
            leader: None,
            state: ServerState::Follower,
            quorum_acked: false,
            last_log,
            applied: None,
            applied_term: None,
            changed_at: tokio::time::Instant::now(),
        };
        assert!(view(0, None).never_led());
        // A campaign that elected nobody raised the term; the log still holds only the
        // membership entry the group was initialized with.
        assert!(view(1, Some((0, 0))).never_led());
        // A leader's first entry (its blank one) is of its term.
        assert!(!view(2, Some((2, 1))).never_led());
    }
}
