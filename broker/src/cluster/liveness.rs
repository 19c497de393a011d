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

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// When we last heard from one peer, in milliseconds since `Liveness::started` (0: never).
#[derive(Default)]
struct PeerClock {
    /// Anything received from the peer: its heartbeats or its replies to ours.
    heard_ms: AtomicU64,
    /// A reply to one of our heartbeats: the peer hears us and we hear it.
    acked_ms: AtomicU64,
    /// When the peer started, in Unix milliseconds, from the uptime in its last heartbeat
    /// (0: not known yet).
    started_unix_ms: AtomicU64,
}

pub(crate) fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// How this node sees its peers.
pub struct Liveness {
    me: NodeId,
    started: Instant,
    started_unix_ms: u64,
    /// A peer unheard for this long is suspected dead.
    suspect_after: Duration,
    peers: BTreeMap<NodeId, PeerClock>,
    /// Poked when a peer's liveness flips (the election driver and the leaders react at once).
    pub changed: Notify,
}

/// `/state`: one peer as this node's failure detector sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct PeerLiveness {
    pub id: NodeId,
    pub live: bool,
    /// Milliseconds since anything was heard from it (None: never).
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

    fn within(&self, stamp: u64) -> bool {
        stamp != 0 && self.now_ms().saturating_sub(stamp) <= self.suspect_after.as_millis() as u64
    }

    /// Something arrived from `peer`.
    pub fn heard(&self, peer: NodeId) {
        if let Some(c) = self.peers.get(&peer) {
            c.heard_ms.store(self.now_ms(), Ordering::Relaxed);
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
            let now = self.now_ms();
            c.heard_ms.store(now, Ordering::Relaxed);
            c.acked_ms.store(now, Ordering::Relaxed);
        }
    }

    /// This node, or a peer heard from within the suspicion timeout.
    pub fn is_live(&self, node: NodeId) -> bool {
        node == self.me
            || self.peers.get(&node).is_some_and(|c| self.within(c.heard_ms.load(Ordering::Relaxed)))
    }

    /// Whether a majority of `voters` (this node counts itself) answered our heartbeats lately:
    /// what a leader needs to keep serving.
    pub fn quorum_acked(&self, voters: &std::collections::BTreeSet<NodeId>) -> bool {
        let acked = voters
            .iter()
            .filter(|v| {
                **v == self.me
                    || self.peers.get(v).is_some_and(|c| self.within(c.acked_ms.load(Ordering::Relaxed)))
            })
            .count();
        acked * 2 > voters.len()
    }

    pub fn snapshot(&self) -> Vec<PeerLiveness> {
        let now = self.now_ms();
        let ago = |stamp: u64| (stamp != 0).then(|| now.saturating_sub(stamp));
        self.peers
            .iter()
            .map(|(id, c)| PeerLiveness {
                id: *id,
                live: self.is_live(*id),
                heard_ms_ago: ago(c.heard_ms.load(Ordering::Relaxed)),
                acked_ms_ago: ago(c.acked_ms.load(Ordering::Relaxed)),
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
}
