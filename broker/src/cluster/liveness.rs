//! Node liveness: one heartbeat per peer per interval for all groups, and the failure detector
//! the groups rely on instead of their own heartbeats.
//!
//! Per-group heartbeats cost every group a timer and two RPCs per interval even when idle: 1,000
//! partitions kept two cores busy. Here groups are quiet unless they have something to replicate
//! (openraft's heartbeats, ticks and election timers are off, see `group.rs`), and this module
//! answers the two questions their heartbeats used to answer:
//! - "is the leader of my group still there?": a peer is live while we have heard anything from
//!   it within the suspicion timeout (its heartbeats, or replies to ours);
//! - "does a majority still follow me?": a leader is confirmed while a majority of its group's
//!   voters answered our heartbeats within that timeout.
//!
//! Heartbeats travel on the same multiplexed peer connection as the Raft messages, so a cut,
//! delayed or black-holed link in the lab affects both alike.
//!
//! A peer's silence is counted only while this node runs. A node that is itself stalled (its
//! process descheduled, its runtime starved, the whole machine frozen) hears nothing, and on
//! waking used to suspect every peer at once and start elections for all their groups: in the
//! browser test, three debug brokers at 150 partitions beside Chromium lost all their peers at
//! the same instant and re-elected hundreds of groups. A probe that should run every heartbeat
//! interval measures how late it runs; that lateness is left out of the suspicion clock. Whether
//! a leader still has a majority (`quorum_acked`) keeps counting real time: a stalled leader must
//! not believe its followers are still with it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::leader_directory::LeaderDirectory;
use crate::error::BrokerError;
use crate::raft::trace::Outcome;
use crate::raft::transport::{LeadEntry, RaftReply, RaftRequest, Transport};
use crate::raft::typ::{GroupId, NodeId};
use crate::telemetry::now_ns;

/// When we last heard from one peer (0: never).
#[derive(Default)]
struct PeerClock {
    /// Anything received from the peer: its heartbeats or its replies to ours. On the suspicion
    /// clock (`Liveness::awake_ms`).
    heard_ms: AtomicU64,
    /// A reply to one of our heartbeats: the peer hears us and we hear it. In milliseconds since
    /// `Liveness::started`.
    acked_ms: AtomicU64,
    /// When the peer started, in Unix milliseconds, from the uptime in its last heartbeat
    /// (0: not known yet).
    started_unix_ms: AtomicU64,
}

/// Unix milliseconds, from the crate's one wall clock (`telemetry::now_ns`).
pub(crate) fn unix_ms() -> u64 {
    now_ns() / 1_000_000
}

/// How this node sees its peers.
pub struct Liveness {
    me: NodeId,
    started: Instant,
    started_unix_ms: u64,
    /// A peer unheard for this long is suspected dead.
    suspect_after: Duration,
    peers: BTreeMap<NodeId, PeerClock>,
    stalls: Mutex<Stalls>,
    /// Poked when a peer's liveness flips (the election driver and the leaders react at once).
    pub changed: Notify,
}

/// This node's own stalls, as seen by a probe meant to run every `every_ms`.
#[derive(Default)]
struct Stalls {
    /// 0: no probe runs (nothing is discounted).
    every_ms: u64,
    /// When the probe last ran, in milliseconds since `Liveness::started`.
    probed_ms: u64,
    /// Lateness of the probe so far, beyond one missed interval.
    total_ms: u64,
}

impl Stalls {
    /// How late the probe is at `now` beyond one missed interval: a stall still going on.
    fn ongoing(&self, now: u64) -> u64 {
        if self.every_ms == 0 {
            return 0;
        }
        now.saturating_sub(self.probed_ms + 2 * self.every_ms)
    }
}

/// `/state`: one peer as this node's failure detector sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PeerLiveness {
    pub id: NodeId,
    pub live: bool,
    /// Milliseconds since anything was heard from it, this node's own stalls left out (None:
    /// never).
    pub heard_ms_ago: Option<u64>,
    pub acked_ms_ago: Option<u64>,
}

impl Liveness {
    pub fn new(me: NodeId, peers: impl IntoIterator<Item = NodeId>, suspect_after: Duration) -> Liveness {
        Liveness {
            me,
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            suspect_after,
            peers: peers.into_iter().filter(|p| *p != me).map(|p| (p, PeerClock::default())).collect(),
            stalls: Mutex::default(),
            changed: Notify::new(),
        }
    }

    pub fn suspect_after(&self) -> Duration {
        self.suspect_after
    }

    fn now_ms(&self) -> u64 {
        // +1 so that 0 can mean "never".
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// The suspicion clock: milliseconds this node has been running since it started, its
    /// stalls left out (+1 so that 0 can mean "never"). It never goes back: a stall is counted
    /// while it goes on and moved to the total when the probe runs again.
    fn awake_ms(&self) -> u64 {
        let now = self.now_ms();
        let stalls = self.stalls.lock().unwrap_or_else(|p| p.into_inner());
        now.saturating_sub(stalls.total_ms + stalls.ongoing(now)).max(1)
    }

    /// Run every `every` by the failure detector: how late each run comes is a stall of this
    /// node, not silence of its peers.
    fn probe(&self, every: Duration) {
        let now = self.now_ms();
        let mut stalls = self.stalls.lock().unwrap_or_else(|p| p.into_inner());
        let late = stalls.ongoing(now);
        if late > 0 {
            tracing::debug!(
                node_id = self.me,
                late_ms = late,
                "this node stalled; its peers' silence meanwhile is not counted"
            );
        }
        stalls.total_ms += late;
        stalls.probed_ms = now;
        stalls.every_ms = every.as_millis().max(1) as u64;
    }

    fn within(&self, stamp: u64, now: u64) -> bool {
        stamp != 0 && now.saturating_sub(stamp) <= self.suspect_after.as_millis() as u64
    }

    /// Something arrived from `peer`.
    pub fn heard(&self, peer: NodeId) {
        if let Some(c) = self.peers.get(&peer) {
            c.heard_ms.store(self.awake_ms(), Ordering::Relaxed);
        }
    }

    /// A heartbeat said `peer` has been up for `up_ms`.
    pub fn peer_up_for(&self, peer: NodeId, up_ms: u64) {
        if let Some(c) = self.peers.get(&peer) {
            c.started_unix_ms.store(unix_ms().saturating_sub(up_ms).max(1), Ordering::Relaxed);
        }
    }

    /// When `node` started, in Unix milliseconds, as its heartbeats tell (this node: its own
    /// start). None for a peer whose heartbeat has not arrived yet.
    pub fn started_unix_ms(&self, node: NodeId) -> Option<u64> {
        if node == self.me {
            return Some(self.started_unix_ms);
        }
        self.peers.get(&node).map(|c| c.started_unix_ms.load(Ordering::Relaxed)).filter(|ms| *ms != 0)
    }

    /// `peer` answered one of our heartbeats.
    fn acked(&self, peer: NodeId) {
        if let Some(c) = self.peers.get(&peer) {
            c.heard_ms.store(self.awake_ms(), Ordering::Relaxed);
            c.acked_ms.store(self.now_ms(), Ordering::Relaxed);
        }
    }

    /// This node, or a peer heard from within the suspicion timeout (of this node's running
    /// time).
    pub fn is_live(&self, node: NodeId) -> bool {
        node == self.me
            || self
                .peers
                .get(&node)
                .is_some_and(|c| self.within(c.heard_ms.load(Ordering::Relaxed), self.awake_ms()))
    }

    /// Whether a majority of `voters` (this node counts itself) answered our heartbeats lately:
    /// what a leader needs to keep serving.
    pub fn quorum_acked(&self, voters: &std::collections::BTreeSet<NodeId>) -> bool {
        let now = self.now_ms();
        let acked = voters
            .iter()
            .filter(|v| {
                **v == self.me
                    || self.peers.get(v).is_some_and(|c| self.within(c.acked_ms.load(Ordering::Relaxed), now))
            })
            .count();
        acked * 2 > voters.len()
    }

    pub fn snapshot(&self) -> Vec<PeerLiveness> {
        let (now, awake) = (self.now_ms(), self.awake_ms());
        let ago = |stamp: u64, now: u64| (stamp != 0).then(|| now.saturating_sub(stamp));
        self.peers
            .iter()
            .map(|(id, c)| PeerLiveness {
                id: *id,
                live: self.is_live(*id),
                heard_ms_ago: ago(c.heard_ms.load(Ordering::Relaxed), awake),
                acked_ms_ago: ago(c.acked_ms.load(Ordering::Relaxed), now),
            })
            .collect()
    }
}

/// What a heartbeat says of this node's leaderships (`leader_directory.rs`): their version,
/// and the list a peer asks for when it holds another.
#[derive(Clone)]
pub struct Announcer {
    pub directory: Arc<LeaderDirectory>,
    /// The groups this node leads that `peer` hosts no replica of.
    pub leads_for: Arc<dyn Fn(NodeId) -> Vec<LeadEntry> + Send + Sync>,
}

/// Sends a heartbeat to every peer every `interval` and pokes `changed` when a peer's liveness
/// flips; `on_flip(peer, live)` runs for each flip. Runs until `cancel`.
pub fn run(
    liveness: Arc<Liveness>,
    transport: Arc<Transport>,
    interval: Duration,
    announcer: Announcer,
    on_flip: Arc<dyn Fn(NodeId, bool) + Send + Sync>,
    cancel: CancellationToken,
    tasks: &TaskTracker,
) {
    for peer in liveness.peers.keys().copied() {
        let (liveness, transport, cancel) = (Arc::clone(&liveness), Arc::clone(&transport), cancel.clone());
        let announcer = announcer.clone();
        let beats = tasks.clone();
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                // Each heartbeat is its own task (ended by its timeout): a slow or dead peer must
                // not delay the next one.
                beats.spawn(heartbeat(
                    Arc::clone(&liveness),
                    Arc::clone(&transport),
                    announcer.clone(),
                    peer,
                ));
            }
        });
    }
    tasks.spawn(report_flips(liveness, interval, on_flip, cancel));
}

/// One heartbeat to `peer`, its outcome recorded in `liveness` and the RPC trace; then this
/// node's leaderships if the peer asks for them.
async fn heartbeat(liveness: Arc<Liveness>, transport: Arc<Transport>, announcer: Announcer, peer: NodeId) {
    let up_ms = liveness.started.elapsed().as_millis() as u64;
    let (sent_ns, started) = (now_ns(), std::time::Instant::now());
    let leads = announcer.directory.version();
    let request = RaftRequest::Heartbeat { from: liveness.me, up_ms, leads };
    let sent = transport.request(peer, GroupId::Controller, request, liveness.suspect_after).await;
    let mut send_leads = false;
    let outcome = match &sent {
        Ok(RaftReply::HeartbeatAck { send_leads: asked }) => {
            liveness.acked(peer);
            send_leads = *asked;
            Outcome::Ok
        }
        Ok(other) => Outcome::Error { reason: format!("answered {other:?}") },
        Err(BrokerError::RpcTimeout { .. }) => Outcome::Timeout,
        Err(e) => Outcome::Unreachable { reason: e.to_string() },
    };
    let rtt_us = started.elapsed().as_micros() as u64;
    transport.trace().node_heartbeat(sent_ns, peer, outcome, rtt_us);
    if send_leads {
        // The version is read before the list is made: a change in between only makes the next
        // heartbeat ask again.
        let version = announcer.directory.version();
        let groups = (announcer.leads_for)(peer);
        let request = RaftRequest::Leads { from: liveness.me, version, groups };
        match transport.request(peer, GroupId::Controller, request, liveness.suspect_after).await {
            Ok(RaftReply::LeadsTaken) => {}
            other => {
                tracing::debug!(peer, reply = ?other, "leaderships not taken; the next heartbeat asks again")
            }
        }
    }
}

/// Every `interval`, compares each peer's liveness with the last look: `on_flip` per change,
/// and one wake-up of `changed` for them all. Runs until `cancel`.
async fn report_flips(
    liveness: Arc<Liveness>,
    interval: Duration,
    on_flip: Arc<dyn Fn(NodeId, bool) + Send + Sync>,
    cancel: CancellationToken,
) {
    let mut live: BTreeMap<NodeId, bool> = liveness.peers.keys().map(|p| (*p, false)).collect();
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        liveness.probe(interval);
        let mut flipped = false;
        for (peer, was) in live.iter_mut() {
            let now = liveness.is_live(*peer);
            if now != *was {
                *was = now;
                flipped = true;
                tracing::info!(node_id = liveness.me, peer, live = now, "peer liveness changed");
                on_flip(*peer, now);
            }
        }
        if flipped {
            liveness.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn peers_are_live_while_heard_and_a_leader_needs_a_majority_of_acks() {
        let l = Liveness::new(1, [1, 2, 3], Duration::from_millis(300));
        let voters = [1, 2, 3].into_iter().collect();
        assert!(l.is_live(1) && !l.is_live(2), "only this node is live before anything is heard");
        assert!(!l.quorum_acked(&voters));
        l.heard(2);
        assert!(l.is_live(2) && !l.quorum_acked(&voters), "heard is not acked");
        l.acked(3);
        assert!(l.is_live(3) && l.quorum_acked(&voters), "self + node 3 are a majority of three");
        tokio::time::advance(Duration::from_millis(301)).await;
        assert!(!l.is_live(2) && !l.is_live(3) && !l.quorum_acked(&voters), "silence past the timeout");
        assert!(
            l.started_unix_ms(1).is_some() && l.started_unix_ms(2).is_none(),
            "a peer's start is unknown until it says"
        );
        l.peer_up_for(2, 5_000);
        let (me, two) = (l.started_unix_ms(1).unwrap(), l.started_unix_ms(2).unwrap());
        assert!(me.abs_diff(two + 5_000) < 1_000, "node 2 up 5 s longer: {me} vs {two}");
        let snap = l.snapshot();
        assert_eq!(snap.len(), 2);
        assert!(snap.iter().all(|p| !p.live && p.heard_ms_ago.is_some()));
    }

    /// A stall of this node (here: time passing without its probe running) is not its peers'
    /// silence; once it runs again, silence counts as before. A leader's majority, though, is
    /// judged on real time.
    #[tokio::test(start_paused = true)]
    async fn this_nodes_own_stall_does_not_make_its_peers_suspects() {
        let every = Duration::from_millis(50);
        let l = Liveness::new(1, [1, 2, 3], Duration::from_millis(300));
        let voters = [1, 2, 3].into_iter().collect();
        l.probe(every);
        l.acked(2);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert!(l.is_live(2), "1 s without running is this node's stall, not node 2's silence");
        assert!(!l.quorum_acked(&voters), "a stalled leader does not count on its followers");
        assert!(l.snapshot()[0].heard_ms_ago.unwrap() <= 100, "{:?}", l.snapshot());
        let mut ran = Duration::ZERO;
        while l.is_live(2) {
            l.probe(every);
            tokio::time::advance(every).await;
            ran += every;
            assert!(ran <= Duration::from_secs(1), "node 2 never suspected while this node runs");
        }
        assert!(
            (Duration::from_millis(200)..=Duration::from_millis(300)).contains(&ran),
            "suspected after {ran:?} of running: 300 ms of silence less the ≤ 100 ms allowed before the stall"
        );
    }
}
