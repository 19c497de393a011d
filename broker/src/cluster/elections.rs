//! Elections for every group of this node, driven by the node: who campaigns, and when.
//!
//! openraft's election timers are off (`group.rs`). Every `scan_every` this node looks at each
//! group's cached view and finds those without a leader it can hear: the leader's node is
//! suspected (`liveness.rs`), or no leader is known. For such a group exactly one node is meant to
//! act — the first voter in preference order that this node sees alive (the preferred leader for
//! a new group, the next replica when the leader died, so a dead node's groups spread over the
//! survivors; a node that came back within the last minute comes after the others, see
//! `candidate_order`). That node first asks the other voters, in one message per peer for all its groups,
//! whether they still follow a leader they can hear (a pre-vote, which openraft 0.9 lacks); only
//! if a majority answers and none does, the most up-to-date of them campaigns. One candidate per
//! group, chosen alike by everyone, is what keeps a leader storm at term +1: split votes were
//! what made terms jump by 2-4.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;
use tokio::time::Instant;

use crate::cluster::liveness::unix_ms;
use crate::cluster::raft_group::{GroupView, RaftGroup};
use crate::cluster::Cluster;
use crate::raft::trace::TraceKind;
use crate::raft::transport::{LeaderAnswer, RaftReply, RaftRequest, Transport};
use crate::raft::typ::{GroupId, NodeId};
use crate::telemetry::now_ns;

/// Asks `to`, in one [`RaftRequest::Elect`], to campaign for each of `groups`: the asking side
/// of `Cluster::start_campaigns`. Per group, in order, whether its campaign started; `Err`
/// describes a request that failed or an answer of another shape.
pub(super) async fn ask_to_campaign(
    transport: &Transport,
    to: NodeId,
    groups: &[GroupId],
    timeout: Duration,
) -> Result<Vec<Result<(), String>>, String> {
    let request = RaftRequest::Elect { groups: groups.to_vec() };
    match transport.request(to, GroupId::Controller, request, timeout).await {
        Ok(RaftReply::Elected(started)) if started.len() == groups.len() => Ok(started),
        other => Err(format!("{other:?}")),
    }
}

/// How long (in failure-detection periods) one designated candidate has before the next live
/// voter takes its turn. The turn is derived from time, not from campaigns counted, because only
/// the designated node campaigns: the others must still notice when it does not succeed.
const TURN_PERIODS: u32 = 8;
/// A designated candidate's campaigns back off up to this many doublings of the detection
/// period, so that elections slower than the period (many groups at once, a loaded machine)
/// finish instead of being restarted at a higher term again and again.
const MAX_BACKOFF_DOUBLINGS: u32 = 3;
/// Campaigns this node starts per scan; the rest wait for the next scan (one heartbeat interval
/// later while groups are leaderless). openraft gives a vote `election_timeout_min` to return,
/// and a voter answers only once the vote is on disk: 3,333 campaigns at once (a new topic of
/// 10,000 partitions, or the loss of the node leading them) on a loaded machine made every vote
/// miss that deadline, again at every retry, and no group got a leader. In waves each vote round
/// stays small.
const CAMPAIGNS_PER_SCAN: usize = 256;
/// A node started this recently, and `STARTED_LATER` after the others, is a re-election's last
/// choice (`candidate_order`).
const RECENTLY_STARTED: Duration = Duration::from_secs(60);
const STARTED_LATER: Duration = Duration::from_secs(3);
/// Recently started nodes within the same bucket of this many ms count as up equally long, so
/// that the milliseconds by which two observers' estimates of a start time differ rarely matter.
const START_BUCKET_MS: u64 = 2_000;

/// One group this node has seen without a leader it can hear.
struct Leaderless {
    since: Instant,
    /// How long to wait for a leader to make itself known before acting.
    grace: Duration,
    /// Campaigns this node started (or handed to another) for this stretch.
    campaigns: u32,
    next_try: Instant,
}

impl Leaderless {
    fn new(now: Instant, grace: Duration) -> Leaderless {
        Leaderless { since: now, grace, campaigns: 0, next_try: now }
    }

    /// Whether the next attempt is due at `now`; if so, the one after comes `every` later.
    fn due(&mut self, now: Instant, every: Duration) -> bool {
        if now < self.next_try {
            return false;
        }
        self.next_try = now + every;
        true
    }

    /// When to look at the group again after this node's `campaign` for it.
    fn campaigned(&mut self, started: bool, suspect_after: Duration, scan_every: Duration) {
        if started {
            let backoff = suspect_after * (1 << self.campaigns.min(MAX_BACKOFF_DOUBLINGS));
            self.campaigns += 1;
            self.next_try = Instant::now() + backoff;
        } else {
            // Not ready (peers do not host it yet) or someone follows a live leader:
            // look again soon, without counting it as a campaign.
            self.next_try = Instant::now() + scan_every;
        }
    }
}

/// What one scan of the groups decided.
#[derive(Default)]
struct ScanPlan {
    /// Groups this node is the designated candidate for.
    campaigns: Vec<Arc<RaftGroup>>,
    /// Per leader, the groups whose followers here have not heard from it since start-up.
    contacts: BTreeMap<NodeId, Vec<GroupId>>,
}

/// What this node should do about one group now.
enum Need {
    Nothing,
    /// Restored or new leader nobody acknowledged yet: reach out to the followers.
    Heartbeat,
    /// A follower that knows its leader only from the vote it restored at start-up and has not
    /// heard from it since (nothing applied): a quiet group's leader sends nothing by itself.
    Contact(NodeId),
    /// No leader this node can hear; `suspected`: there was one and its node went silent.
    Leader {
        suspected: bool,
    },
}

impl Cluster {
    fn need(&self, v: &GroupView) -> Need {
        match v.leader {
            Some(l) if l == self.node_id => {
                if v.state == ServerState::Leader && !v.quorum_acked {
                    Need::Heartbeat
                } else {
                    Need::Nothing
                }
            }
            Some(l) if self.liveness.is_live(l) && v.applied.is_none() && v.last_log.is_some() => {
                Need::Contact(l)
            }
            Some(l) if self.liveness.is_live(l) => Need::Nothing,
            Some(_) => Need::Leader { suspected: true },
            None => Need::Leader { suspected: false },
        }
    }

    /// The election driver; runs until shutdown.
    pub(crate) async fn drive_elections(self: Arc<Self>) {
        let suspect_after = self.liveness.suspect_after();
        let scan_every = Duration::from_millis(self.config.heartbeat_interval_ms.max(10));
        let mut leaderless: HashMap<GroupId, Leaderless> = HashMap::new();
        loop {
            // A scan reads every group's view: at 10,000 groups, scanning every heartbeat interval
            // was a quarter of an idle node's CPU. While every group is led, a scan per detection
            // period is enough (a dead leader is not suspected sooner); new groups and liveness
            // changes wake the driver at once, and elections under way are followed closely.
            let period = if leaderless.is_empty() { suspect_after } else { scan_every };
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = self.liveness.changed.notified() => {}
                _ = self.groups_added.notified() => {}
                _ = tokio::time::sleep(period) => {}
            }
            let plan = self.scan(&mut leaderless, suspect_after);
            self.ask_leaders(plan.contacts, suspect_after);
            if plan.campaigns.is_empty() {
                continue;
            }
            for (id, started) in self.campaign(plan.campaigns).await {
                if let Some(entry) = leaderless.get_mut(&id) {
                    entry.campaigned(started, suspect_after, scan_every);
                }
            }
        }
    }

    /// Looks at every group's view: heartbeats for restored leaders nobody acknowledged, and the
    /// plan for the rest. `leaderless` keeps the groups that still need something.
    fn scan(&self, leaderless: &mut HashMap<GroupId, Leaderless>, suspect_after: Duration) -> ScanPlan {
        let now = Instant::now();
        let mut plan = ScanPlan::default();
        let mut groups = self.partition_groups();
        groups.push(Arc::clone(&self.controller));
        let mut seen = std::collections::HashSet::with_capacity(leaderless.len());
        for g in groups {
            let v = g.view();
            let need = self.need(&v);
            if matches!(need, Need::Nothing) {
                continue;
            }
            seen.insert(g.id.clone());
            match need {
                Need::Nothing => {}
                Need::Heartbeat => {
                    let entry = leaderless
                        .entry(g.id.clone())
                        .or_insert_with(|| Leaderless::new(now, Duration::ZERO));
                    if entry.due(now, suspect_after) {
                        // Ask the followers to acknowledge (or depose) a leader restored from disk.
                        let raft = g.raft.clone();
                        self.tasks.spawn(async move {
                            let _ = raft.trigger().heartbeat().await;
                        });
                    }
                }
                Need::Contact(leader) => {
                    let entry = leaderless
                        .entry(g.id.clone())
                        .or_insert_with(|| Leaderless::new(now, Duration::ZERO));
                    if entry.due(now, suspect_after) {
                        plan.contacts.entry(leader).or_default().push(g.id.clone());
                    }
                }
                Need::Leader { suspected } => {
                    // A group no leader ever wrote to is new: its preferred leader campaigns at
                    // once. Otherwise a leader may simply not have reached this node yet. The term
                    // cannot tell: a campaign that elected nobody (a split vote, a voter that did
                    // not host the group yet) raises it, and no leader wrote anything.
                    let fresh = v.never_led();
                    let grace = if suspected || fresh { Duration::ZERO } else { suspect_after };
                    let entry = leaderless.entry(g.id.clone()).or_insert_with(|| Leaderless::new(now, grace));
                    if self.is_designated(&g, fresh, entry, now, suspect_after)
                        && plan.campaigns.len() < CAMPAIGNS_PER_SCAN
                    {
                        plan.campaigns.push(g);
                    }
                }
            }
        }
        leaderless.retain(|id, _| seen.contains(id));
        plan
    }

    /// Whether this node is the one meant to act for leaderless `g` now: its grace and back-off
    /// have passed, a majority of voters is alive, and it is the live voter whose turn it is.
    fn is_designated(
        &self,
        g: &RaftGroup,
        fresh: bool,
        entry: &Leaderless,
        now: Instant,
        suspect_after: Duration,
    ) -> bool {
        if now < entry.since + entry.grace || now < entry.next_try {
            return false;
        }
        let mut live: Vec<NodeId> =
            g.preferred.iter().copied().filter(|n| self.liveness.is_live(*n)).collect();
        if !fresh {
            self.candidate_order(&mut live);
        }
        if live.len() * 2 <= g.voters.len() {
            return false; // no majority in sight: campaigning would only raise terms
        }
        // A new group's candidate is its preferred leader, chosen alike on every node only once
        // each has heard every voter: at start-up a node that had not yet heard the preferred
        // one campaigned too, and the split vote cost terms. A voter still silent after one
        // detection period is passed over.
        if fresh && live.len() < g.voters.len() && now < entry.since + suspect_after {
            return false;
        }
        let turn = now.duration_since(entry.since + entry.grace).as_nanos()
            / (suspect_after * TURN_PERIODS).as_nanos().max(1);
        live[(turn % live.len() as u128) as usize] == self.node_id
    }

    /// Asking the leader about its groups makes it send them a heartbeat.
    fn ask_leaders(&self, contacts: BTreeMap<NodeId, Vec<GroupId>>, timeout: Duration) {
        for (leader, groups) in contacts {
            let (transport, me) = (Arc::clone(&self.transport), self.node_id);
            self.tasks.spawn(async move {
                let query = RaftRequest::LeaderQuery { from: me, groups };
                let _ = transport.request(leader, GroupId::Controller, query, timeout).await;
            });
        }
    }

    /// Pre-vote for `groups` (one query per peer), then campaigns where a majority answered and
    /// nobody follows a live leader. Returns, per group, whether a campaign started.
    async fn campaign(&self, groups: Vec<Arc<RaftGroup>>) -> Vec<(GroupId, bool)> {
        let mut answers = self.pre_vote(&groups).await;
        let mut out = Vec::with_capacity(groups.len());
        let mut handed: BTreeMap<NodeId, Vec<GroupId>> = BTreeMap::new();
        for g in groups {
            let theirs = answers.remove(&g.id).unwrap_or_default();
            let started = match self.pick_candidate(&g, &theirs) {
                Some(c) if c == self.node_id => {
                    self.elect_self(&g, &theirs);
                    true
                }
                Some(c) => {
                    self.note_handed_election(&g, c);
                    handed.entry(c).or_default().push(g.id.clone());
                    true
                }
                None => false,
            };
            out.push((g.id.clone(), started));
        }
        for (candidate, groups) in handed {
            self.hand_elections(candidate, groups);
        }
        out
    }

    /// Asks each live peer, once for all of `groups` it votes in, whether it follows a leader
    /// it can hear. The answers per group.
    async fn pre_vote(&self, groups: &[Arc<RaftGroup>]) -> HashMap<GroupId, Vec<(NodeId, LeaderAnswer)>> {
        let mut asks: BTreeMap<NodeId, Vec<GroupId>> = BTreeMap::new();
        for g in groups {
            for v in g.voters.iter().filter(|v| **v != self.node_id && self.liveness.is_live(**v)) {
                asks.entry(*v).or_default().push(g.id.clone());
            }
        }
        let timeout = self.liveness.suspect_after();
        let trace = self.transport.trace();
        let queries = asks.into_iter().map(|(peer, ids)| async move {
            let request = RaftRequest::LeaderQuery { from: self.node_id, groups: ids.clone() };
            let (sent_ns, started) = (now_ns(), std::time::Instant::now());
            let answers = match self.transport.request(peer, GroupId::Controller, request, timeout).await {
                Ok(RaftReply::Leaders(a)) if a.len() == ids.len() => a,
                _ => Vec::new(),
            };
            if let Some(i) = ids.iter().position(|id| trace.is_watched(id)) {
                let answer = describe_answer(answers.get(i));
                let rtt_us = started.elapsed().as_micros() as u64;
                let kind = TraceKind::LeaderQuery { to: peer, groups: ids.len(), answer, rtt_us };
                trace.leader_query(sent_ns, kind);
            }
            (peer, ids.into_iter().zip(answers).collect::<Vec<_>>())
        });
        let mut answers: HashMap<GroupId, Vec<(NodeId, LeaderAnswer)>> = HashMap::new();
        for (peer, per_group) in futures::future::join_all(queries).await {
            for (id, answer) in per_group {
                answers.entry(id).or_default().push((peer, answer));
            }
        }
        answers
    }

    /// This node campaigns for `g`, once the old leader's lease has passed for every voter
    /// that answered the pre-vote.
    fn elect_self(&self, g: &RaftGroup, theirs: &[(NodeId, LeaderAnswer)]) {
        // Voters that heard from the old leader within openraft's lease would refuse
        // (and cost a term): wait until the lease has passed for all of them.
        let wait = theirs
            .iter()
            .filter_map(|(_, a)| match a {
                LeaderAnswer::Leaderless { quiet_ms, .. } => {
                    Some(g.lease().saturating_sub(Duration::from_millis(*quiet_ms)))
                }
                _ => None,
            })
            .max()
            .unwrap_or_default();
        tracing::info!(group = %g.id, node_id = self.node_id, wait_ms = wait.as_millis() as u64, "campaigning");
        let kind = TraceKind::Campaign {
            reason: campaign_reason(g),
            wait_ms: wait.as_millis() as u64,
            candidate: self.node_id,
        };
        self.transport.trace().campaign(&g.id, kind);
        let raft = g.raft.clone();
        self.tasks.spawn(async move {
            tokio::time::sleep(wait).await;
            let _ = raft.trigger().elect().await;
        });
    }

    /// `candidate`, more up to date than this node, is to campaign for `g`.
    fn note_handed_election(&self, g: &RaftGroup, candidate: NodeId) {
        tracing::info!(
            group = %g.id,
            node_id = self.node_id,
            candidate,
            "asking a more up-to-date replica to campaign"
        );
        let kind = TraceKind::Campaign { reason: campaign_reason(g), wait_ms: 0, candidate };
        self.transport.trace().campaign(&g.id, kind);
    }

    /// Asks `candidate` to campaign for `groups`, in one message.
    fn hand_elections(&self, candidate: NodeId, groups: Vec<GroupId>) {
        let transport = Arc::clone(&self.transport);
        let timeout = self.liveness.suspect_after();
        self.tasks.spawn(async move {
            let _ = ask_to_campaign(&transport, candidate, &groups, timeout).await;
        });
    }

    /// Answers a peer's [`RaftRequest::Elect`]: each group named that this node hosts
    /// campaigns now. A node that is stopping refuses: it would only have to hand them on.
    pub(crate) async fn start_campaigns(&self, groups: Vec<GroupId>) -> Vec<Result<(), String>> {
        if self.is_stopping() {
            let stopping = format!("node {} is stopping", self.node_id);
            return groups.iter().map(|_| Err(stopping.clone())).collect();
        }
        let mut started = Vec::with_capacity(groups.len());
        for id in groups {
            started.push(match self.group(&id) {
                None => Err(format!("this node hosts no group {id}")),
                // Only queues a command for the group's core: answered before the next read.
                Some(g) => g.raft.trigger().elect().await.map_err(|e| e.to_string()),
            });
        }
        started
    }

    /// Who should campaign for `g`, given the peers' answers: `None` when someone follows a
    /// leader it can hear or fewer than a majority (this node included) host the group.
    fn pick_candidate(&self, g: &RaftGroup, answers: &[(NodeId, LeaderAnswer)]) -> Option<NodeId> {
        let view = g.view();
        let mine = view.last_log;
        let mut ready: Vec<(NodeId, Option<(u64, u64)>)> = vec![(self.node_id, mine)];
        for (peer, a) in answers {
            match a {
                // A peer that still follows this node, or a term this node has moved past, is
                // stale (it has not heard of the newer term yet): it counts as leaderless.
                LeaderAnswer::Led { leader, term } if *leader == self.node_id || *term < view.term => {
                    ready.push((*peer, None));
                }
                LeaderAnswer::Led { .. } => return None,
                LeaderAnswer::NoSuchGroup => {}
                LeaderAnswer::Leaderless { last_log, .. } => ready.push((*peer, *last_log)),
            }
        }
        if ready.len() * 2 <= g.voters.len() {
            return None;
        }
        // The most up-to-date log wins; among equals, this node (it was designated), then
        // preference order. A candidate with a shorter log would only be refused.
        let best = ready.iter().map(|(_, l)| *l).max().flatten();
        if mine >= best {
            return Some(self.node_id);
        }
        g.preferred.iter().copied().find(|n| ready.iter().any(|(id, l)| id == n && *l == best))
    }

    /// Orders a group's live voters (given in preference order) for a re-election: a node that
    /// came back — started within the last `RECENTLY_STARTED` and more than `STARTED_LATER`
    /// after the earliest of them — comes after the others, the latest last. Nodes started
    /// together (a new cluster) keep preference order, so a dead node's groups still spread.
    /// A node that just came back is the one clients last saw die: a stock client's reconnect
    /// back-off to it grew while it was down (librdkafka: up to 10 s), so electing it cost them
    /// seconds after each kill of a rolling failure. Everyone orders alike (start times come
    /// from the nodes' own uptimes in their heartbeats), so there is still one candidate per
    /// group; the preferred-leader rebalancer moves leaders back once the node has caught up.
    /// A start not known yet (no heartbeat since this node started) counts as early: right after
    /// a restart every peer is unknown, and preference order is what everyone used before.
    fn candidate_order(&self, live: &mut [NodeId]) {
        let starts: Vec<Option<u64>> = live.iter().map(|n| self.liveness.started_unix_ms(*n)).collect();
        let Some(earliest) = starts.iter().flatten().min().copied() else { return };
        let recent_after = unix_ms().saturating_sub(RECENTLY_STARTED.as_millis() as u64);
        let came_back_after = earliest + STARTED_LATER.as_millis() as u64;
        let mut keyed: Vec<(u64, NodeId)> = live
            .iter()
            .zip(&starts)
            .map(|(n, start)| match start {
                Some(ms) if *ms >= recent_after && *ms > came_back_after => (1 + ms / START_BUCKET_MS, *n),
                _ => (0, *n),
            })
            .collect();
        keyed.sort_by_key(|(key, _)| *key); // stable: preference order within a key
        for (slot, (_, n)) in live.iter_mut().zip(keyed) {
            *slot = n;
        }
    }

    /// Answers a peer's [`RaftRequest::LeaderQuery`]. A leader asked about its own group also
    /// sends the group a heartbeat: the asker evidently has not heard from it (after a restart,
    /// a quiet group's followers learn their leader only when it sends something).
    pub(crate) fn answer_leader_query(&self, groups: Vec<GroupId>) -> Vec<LeaderAnswer> {
        groups
            .into_iter()
            .map(|id| {
                let Some(g) = self.group(&id) else { return LeaderAnswer::NoSuchGroup };
                let v = g.view();
                match v.leader {
                    Some(l) if l == self.node_id && g.confirmed(&v) => {
                        let raft = g.raft.clone();
                        self.tasks.spawn(async move {
                            let _ = raft.trigger().heartbeat().await;
                        });
                        LeaderAnswer::Led { leader: l, term: v.term }
                    }
                    Some(l) if l != self.node_id && self.liveness.is_live(l) => {
                        LeaderAnswer::Led { leader: l, term: v.term }
                    }
                    _ => LeaderAnswer::Leaderless {
                        term: v.term,
                        last_log: v.last_log,
                        // No leader known: openraft names one only for a committed vote, and
                        // only a committed vote holds its lease, so the candidate need not wait.
                        quiet_ms: if v.leader.is_some() {
                            v.changed_at.elapsed().as_millis() as u64
                        } else {
                            u64::MAX
                        },
                    },
                }
            })
            .collect()
    }

    /// A peer came back (or was heard for the first time): every group this node leads with
    /// that peer as voter sends it a heartbeat now, so a restarted follower learns its leaders
    /// at once and a stale leader on the other side learns it was replaced.
    pub(crate) fn on_peer_back(&self, peer: NodeId) {
        let led: Vec<Arc<RaftGroup>> = std::iter::once(Arc::clone(&self.controller))
            .chain(self.partition_groups())
            .filter(|g| g.voters.contains(&peer) && g.view().leader == Some(self.node_id))
            .collect();
        if led.is_empty() {
            return;
        }
        tracing::debug!(node_id = self.node_id, peer, groups = led.len(), "heartbeats to a returning peer");
        self.tasks.spawn(async move {
            for g in led {
                let _ = g.raft.trigger().heartbeat().await;
            }
        });
    }
}

/// Why the node campaigns for `g`, in words for the trace.
fn campaign_reason(g: &RaftGroup) -> String {
    match g.view().leader {
        Some(l) => format!("leader n{l} went silent (no heartbeat within the suspicion timeout)"),
        None => "no leader known".to_string(),
    }
}

/// A peer's pre-vote answer, in words for the trace.
fn describe_answer(answer: Option<&LeaderAnswer>) -> String {
    match answer {
        None => "no answer".to_string(),
        Some(LeaderAnswer::NoSuchGroup) => "does not host the group".to_string(),
        Some(LeaderAnswer::Led { leader, term }) => format!("follows n{leader} in term {term}"),
        Some(LeaderAnswer::Leaderless { term, .. }) => format!("no live leader in term {term}"),
    }
}
