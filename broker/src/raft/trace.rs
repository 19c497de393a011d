//! RPC-level Raft telemetry: what this node's groups said to its peers, message by message.
//!
//! A teaching view needs the messages themselves (a vote request and its answer, an append and
//! its acknowledgement, a heartbeat), not only the state they lead to. At thousands of groups a
//! record per message would cost more than the messages, so full detail is kept for one
//! *watched* group (chosen over HTTP, `POST /raft/trace/watch`); every other group only bumps
//! node-wide counters. The node's coalesced heartbeats and its elections decisions are recorded
//! as events of their own kinds, because that is how quiet groups are really kept alive and
//! re-led here (`cluster/liveness.rs`, `cluster/elections.rs`): a view that drew per-group
//! heartbeats would show something that does not happen.
//!
//! Events go into a bounded ring with a sequence number; readers poll with `?since=` and learn
//! from `oldest` when they fell behind. Timestamps are wall-clock Unix nanoseconds, so the lab
//! can merge the rings of several processes into one timeline.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::raft::typ::{GroupId, NodeId};
use crate::telemetry::now_ns;

/// Events kept. At the default timing a three-node cluster records about 20 node heartbeats a
/// second per node plus the watched group's traffic; 8,192 events are minutes of a quiet group
/// and several seconds of one under a full produce load, while a poller reads every 100 ms.
pub const RING_CAPACITY: usize = 8192;
/// Largest answer to one poll (the rest follows on the next one).
pub const MAX_POLL: usize = 2048;

/// How an RPC ended, as its sender saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// AppendEntries accepted; a vote granted; a heartbeat acknowledged.
    Ok,
    /// A vote refused: `reason` in words, `term` the voter's term.
    Refused {
        reason: String,
        term: u64,
    },
    /// AppendEntries refused because the follower's log does not hold the previous entry.
    Conflict,
    /// The peer has seen a higher term (or vote): the sender is no longer leader or candidate.
    HigherVote {
        term: u64,
    },
    /// Part of the entries accepted (openraft's partial success).
    PartialSuccess {
        matched: Option<u64>,
    },
    /// No answer: the link is cut, the peer is down or did not host the group yet.
    Unreachable {
        reason: String,
    },
    Timeout,
    Error {
        reason: String,
    },
}

/// One recorded message or decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TraceKind {
    /// A RequestVote RPC this node (a candidate) sent, and its answer.
    Vote { to: NodeId, term: u64, last_log: Option<(u64, u64)>, outcome: Outcome, rtt_us: u64 },
    /// An AppendEntries RPC this node (the leader) sent, and its answer. `entries` is the
    /// inclusive index range carried, `None` for an empty append (openraft's heartbeat, sent by
    /// the node's election driver or when a leader is new); `terms` the runs of (term, count).
    Append {
        to: NodeId,
        term: u64,
        prev: Option<(u64, u64)>,
        entries: Option<(u64, u64)>,
        terms: Vec<(u64, u64)>,
        leader_commit: Option<u64>,
        outcome: Outcome,
        rtt_us: u64,
    },
    /// One node-level heartbeat to `to`, standing for every group the two nodes share.
    NodeHeartbeat { to: NodeId, outcome: Outcome, rtt_us: u64 },
    /// The node-level pre-vote: asked `to` whether it still follows a live leader for the
    /// watched group (and `groups` others in the same message); `answer` as the peer gave it.
    LeaderQuery { to: NodeId, groups: usize, answer: String, rtt_us: u64 },
    /// This node's election driver decided to campaign for the group (`reason`), after waiting
    /// `wait_ms` for the followers' leader lease to pass; or asked `candidate` to campaign.
    Campaign { reason: String, wait_ms: u64, candidate: NodeId },
    /// The applied (= committed: openraft applies at once) index advanced on this node.
    Commit { index: u64 },
    /// This node's log lost entries from `from` on: a leader's log disagreed. `terms` are the
    /// runs of (term, count) discarded.
    Truncate { from: u64, discarded: u64, terms: Vec<(u64, u64)> },
}

impl TraceKind {
    /// The term the message carried (votes and appends).
    pub fn term(&self) -> Option<u64> {
        match self {
            TraceKind::Vote { term, .. } | TraceKind::Append { term, .. } => Some(*term),
            _ => None,
        }
    }

    /// How the RPC ended (votes, appends, node heartbeats).
    pub fn outcome(&self) -> Option<&Outcome> {
        match self {
            TraceKind::Vote { outcome, .. }
            | TraceKind::Append { outcome, .. }
            | TraceKind::NodeHeartbeat { outcome, .. } => Some(outcome),
            _ => None,
        }
    }

    /// The peer an RPC went to.
    pub fn to(&self) -> Option<NodeId> {
        match self {
            TraceKind::Vote { to, .. }
            | TraceKind::Append { to, .. }
            | TraceKind::NodeHeartbeat { to, .. }
            | TraceKind::LeaderQuery { to, .. } => Some(*to),
            _ => None,
        }
    }

    /// An RPC that got its answer: an append accepted, a vote granted, a heartbeat acknowledged.
    pub fn succeeded(&self) -> bool {
        self.outcome() == Some(&Outcome::Ok)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct TraceEvent {
    pub seq: u64,
    /// Wall-clock Unix nanoseconds when the message was sent (or the decision taken).
    pub ts_ns: u64,
    /// The group, `None` for node-level messages (heartbeats, pre-vote queries).
    pub group: Option<GroupId>,
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// Counts over every group, watched or not: what stays observable at any group count.
#[derive(Debug, Default)]
struct Counters {
    appends: AtomicU64,
    /// Empty AppendEntries (openraft heartbeats).
    empty_appends: AtomicU64,
    entries_sent: AtomicU64,
    votes: AtomicU64,
    votes_granted: AtomicU64,
    node_heartbeats: AtomicU64,
    failed_rpcs: AtomicU64,
    truncations: AtomicU64,
    campaigns: AtomicU64,
}

/// `GET /raft/trace` counters, as numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterValues {
    pub appends: u64,
    pub empty_appends: u64,
    pub entries_sent: u64,
    pub votes: u64,
    pub votes_granted: u64,
    pub node_heartbeats: u64,
    pub failed_rpcs: u64,
    pub truncations: u64,
    pub campaigns: u64,
}

/// One answer to a poll.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TracePage {
    pub node_id: NodeId,
    pub watched: Option<String>,
    /// The seq after the last event returned: the next `since`.
    pub next: u64,
    /// The oldest seq still held: a `since` below it missed events.
    pub oldest: u64,
    pub events: Vec<TraceEvent>,
    pub counters: CounterValues,
}

struct Ring {
    events: VecDeque<TraceEvent>,
    next_seq: u64,
}

/// The node's recorder, shared by the transport, the groups and the election driver.
pub struct RaftTrace {
    node_id: NodeId,
    /// Fast path: nothing to compare while no group is watched.
    any_watched: AtomicBool,
    watched: RwLock<Option<GroupId>>,
    ring: Mutex<Ring>,
    counters: Counters,
}

impl RaftTrace {
    /// Watches the controller group from the start: it exists on every node, so a fresh view
    /// has something to show before anyone chooses.
    pub fn new(node_id: NodeId) -> RaftTrace {
        RaftTrace {
            node_id,
            any_watched: AtomicBool::new(true),
            watched: RwLock::new(Some(GroupId::Controller)),
            ring: Mutex::new(Ring { events: VecDeque::with_capacity(1024), next_seq: 0 }),
            counters: Counters::default(),
        }
    }

    pub fn watch(&self, group: Option<GroupId>) {
        tracing::info!(node_id = self.node_id, group = ?group.as_ref().map(ToString::to_string), "raft trace watches");
        self.any_watched.store(group.is_some(), Ordering::Relaxed);
        *self.watched.write().unwrap_or_else(|p| p.into_inner()) = group;
    }

    pub fn watched(&self) -> Option<GroupId> {
        self.watched.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `group` gets full detail.
    pub fn is_watched(&self, group: &GroupId) -> bool {
        self.any_watched.load(Ordering::Relaxed)
            && self.watched.read().unwrap_or_else(|p| p.into_inner()).as_ref() == Some(group)
    }

    fn push(&self, ts_ns: u64, group: Option<&GroupId>, kind: TraceKind) {
        let mut ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.events.len() == RING_CAPACITY {
            ring.events.pop_front();
        }
        ring.events.push_back(TraceEvent { seq, ts_ns, group: group.cloned(), kind });
    }

    /// Records a group's event if the group is watched.
    pub fn group_event(&self, group: &GroupId, ts_ns: u64, kind: TraceKind) {
        if self.is_watched(group) {
            self.push(ts_ns, Some(group), kind);
        }
    }

    /// A vote this node asked for, once answered (or failed).
    pub fn vote(&self, group: &GroupId, sent_ns: u64, kind: TraceKind) {
        let c = &self.counters;
        c.votes.fetch_add(1, Ordering::Relaxed);
        if let TraceKind::Vote { outcome, .. } = &kind {
            match outcome {
                Outcome::Ok => _ = c.votes_granted.fetch_add(1, Ordering::Relaxed),
                Outcome::Unreachable { .. } | Outcome::Timeout | Outcome::Error { .. } => {
                    _ = c.failed_rpcs.fetch_add(1, Ordering::Relaxed)
                }
                _ => {}
            }
        }
        self.group_event(group, sent_ns, kind);
    }

    /// An AppendEntries this node sent, once answered (or failed); `entries` its entry count.
    /// `event` is built by the sender only when the group was watched as it sent.
    pub fn append(
        &self,
        group: &GroupId,
        sent_ns: u64,
        entries: u64,
        failed: bool,
        event: Option<TraceKind>,
    ) {
        let c = &self.counters;
        c.appends.fetch_add(1, Ordering::Relaxed);
        c.entries_sent.fetch_add(entries, Ordering::Relaxed);
        if entries == 0 {
            c.empty_appends.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            c.failed_rpcs.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(kind) = event {
            self.group_event(group, sent_ns, kind);
        }
    }

    /// A node-level heartbeat round trip. Recorded while any group is watched: it is what keeps
    /// the watched group's followers from suspecting their leader.
    pub fn node_heartbeat(&self, sent_ns: u64, to: NodeId, outcome: Outcome, rtt_us: u64) {
        self.counters.node_heartbeats.fetch_add(1, Ordering::Relaxed);
        if !matches!(outcome, Outcome::Ok) {
            self.counters.failed_rpcs.fetch_add(1, Ordering::Relaxed);
        }
        if self.any_watched.load(Ordering::Relaxed) {
            self.push(sent_ns, None, TraceKind::NodeHeartbeat { to, outcome, rtt_us });
        }
    }

    /// A pre-vote query that asked about the watched group (others are not recorded).
    pub fn leader_query(&self, sent_ns: u64, kind: TraceKind) {
        self.push(sent_ns, None, kind);
    }

    pub fn campaign(&self, group: &GroupId, kind: TraceKind) {
        self.counters.campaigns.fetch_add(1, Ordering::Relaxed);
        self.group_event(group, now_ns(), kind);
    }

    pub fn truncate(&self, group: &GroupId, kind: impl FnOnce() -> TraceKind) {
        self.counters.truncations.fetch_add(1, Ordering::Relaxed);
        if self.is_watched(group) {
            self.push(now_ns(), Some(group), kind());
        }
    }

    /// Events with seq >= `since`, at most `limit` (capped at [`MAX_POLL`]).
    pub fn page(&self, since: u64, limit: usize) -> TracePage {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let oldest = ring.events.front().map_or(ring.next_seq, |e| e.seq);
        let skip = since.saturating_sub(oldest) as usize;
        let events: Vec<TraceEvent> =
            ring.events.iter().skip(skip).take(limit.min(MAX_POLL)).cloned().collect();
        let next = events.last().map_or(ring.next_seq.min(since.max(oldest)), |e| e.seq + 1);
        drop(ring);
        let c = &self.counters;
        let v = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TracePage {
            node_id: self.node_id,
            watched: self.watched().map(|g| g.to_string()),
            next,
            oldest,
            events,
            counters: CounterValues {
                appends: v(&c.appends),
                empty_appends: v(&c.empty_appends),
                entries_sent: v(&c.entries_sent),
                votes: v(&c.votes),
                votes_granted: v(&c.votes_granted),
                node_heartbeats: v(&c.node_heartbeats),
                failed_rpcs: v(&c.failed_rpcs),
                truncations: v(&c.truncations),
                campaigns: v(&c.campaigns),
            },
        }
    }
}

/// Runs of equal terms, in order: `[(term, count)]`.
pub fn term_runs(terms: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for t in terms {
        match runs.last_mut() {
            Some((term, n)) if *term == t => *n += 1,
            _ => runs.push((t, 1)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab0() -> GroupId {
        GroupId::Partition { topic: "lab".into(), partition: 0 }
    }

    #[test]
    fn only_the_watched_group_is_recorded_but_every_group_is_counted() {
        let t = RaftTrace::new(1);
        t.watch(Some(lab0()));
        let other = GroupId::Partition { topic: "lab".into(), partition: 1 };
        let append = |to| TraceKind::Append {
            to,
            term: 3,
            prev: Some((3, 9)),
            entries: None,
            terms: vec![],
            leader_commit: Some(9),
            outcome: Outcome::Ok,
            rtt_us: 80,
        };
        t.append(&other, 1, 0, false, Some(append(2))); // as if the watch moved while it was in flight
        t.append(&lab0(), 2, 0, false, Some(append(3)));
        let page = t.page(0, 100);
        assert_eq!(page.events.len(), 1, "the unwatched group left no event");
        assert_eq!(page.events[0].group, Some(lab0()));
        assert_eq!((page.counters.appends, page.counters.empty_appends), (2, 2));
        assert_eq!(page.next, 1);
        assert!(t.page(page.next, 100).events.is_empty());
    }

    #[test]
    fn the_ring_is_bounded_and_says_what_a_slow_reader_missed() {
        let t = RaftTrace::new(1);
        for i in 0..(RING_CAPACITY as u64 + 10) {
            t.node_heartbeat(i, 2, Outcome::Ok, 50);
        }
        let page = t.page(0, usize::MAX);
        assert_eq!(page.oldest, 10, "the ten oldest were dropped");
        assert_eq!(page.events.len(), MAX_POLL);
        assert_eq!(page.events[0].seq, 10);
        assert_eq!(page.next, 10 + MAX_POLL as u64);
        t.watch(None);
        t.node_heartbeat(0, 2, Outcome::Ok, 50);
        assert_eq!(t.page(0, usize::MAX).oldest, 10, "nothing recorded while nothing is watched");
    }

    #[test]
    fn runs_of_terms() {
        assert_eq!(term_runs([1, 1, 2, 4, 4, 4]), vec![(1, 2), (2, 1), (4, 3)]);
    }

    /// What recording costs per AppendEntries, watched and not (figures in decisions.md 27).
    /// `cargo test --release -p broker --lib trace_cost -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn trace_cost_per_append() {
        let t = RaftTrace::new(1);
        t.watch(Some(lab0()));
        let other = GroupId::Partition { topic: "lab".into(), partition: 7 };
        let kind = || TraceKind::Append {
            to: 2,
            term: 3,
            prev: Some((3, 9)),
            entries: Some((10, 12)),
            terms: vec![(3, 3)],
            leader_commit: Some(9),
            outcome: Outcome::Ok,
            rtt_us: 80,
        };
        const N: u32 = 1_000_000;
        for (name, group) in [("unwatched", &other), ("watched", &lab0())] {
            let start = std::time::Instant::now();
            for i in 0..N {
                t.append(group, u64::from(i), 3, false, t.is_watched(group).then(kind));
            }
            println!("{name}: {:?} per append", start.elapsed() / N);
        }
    }
}
