//! Graceful leave: before this node stops, every group it leads is handed to a caught-up
//! follower, so clients see a new leader before this one goes away.
//!
//! The hand-off goes in rounds. Each round asks every successor, in one message for all the
//! groups it is to take (`elections::ask_to_campaign`), to campaign now, then waits up to one
//! leader lease for each group to reach its new term. A group whose successor needed this
//! node's vote while this node's own lease still held is asked again in the next round. All of it
//! is bounded by one budget: when every node is stopping, nobody can take over and waiting only
//! delays the stop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::elections::ask_to_campaign;
use super::raft_group::RaftGroup;
use super::Cluster;
use crate::raft::typ::{GroupId, NodeId};

/// How long a stopping node waits for followers to accept its leaderships: this, plus
/// [`HAND_OFF_PER_GROUP`] for each group it hands off (see `hand_off_budget`).
const HAND_OFF_TIMEOUT: Duration = Duration::from_secs(1);
/// The successors' campaigns run on the same two cores as everything else: at 10,000
/// partitions a node hands off ~3,335 groups, whose votes it granted at 3,000-6,000 a second,
/// so a flat second left a third to two thirds of them to be re-elected after it had gone.
const HAND_OFF_PER_GROUP: Duration = Duration::from_micros(300);
/// Past the leader lease, before a hand-off asks its target to campaign again.
const HAND_OFF_MARGIN: Duration = Duration::from_millis(50);

/// How one group's hand-off at a graceful stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HandOff {
    /// This node left the leadership: it granted the target's newer term. Whether the target
    /// won it is not waited for; a grant the target receives after openraft's vote deadline
    /// would leave the group to the election driver (docs/benchmarks.md, session 44).
    Taken,
    /// The target said no (it is stopping too).
    Refused,
    /// No answer, another answer, or no new term in time.
    Failed,
}

/// A group being handed off, and the follower that is to take it.
type Successor = (Arc<RaftGroup>, NodeId);

impl Cluster {
    /// Hands every group this node leads to a caught-up follower, within a budget that grows
    /// with the number of groups. Marks the node as stopping first, so it takes none back.
    pub async fn hand_off_leadership(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut groups = self.partition_groups();
        groups.push(Arc::clone(&self.controller));
        let mut pending: Vec<Successor> = groups.into_iter().filter_map(|g| self.successor(g)).collect();
        let deadline = Instant::now() + hand_off_budget(pending.len());
        let started = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(pending.len());
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            let (asked, answered) = self.ask_successors(pending, deadline).await;
            outcomes.extend(answered);
            let waits = asked.into_iter().map(|(g, to)| async move {
                let attempt_ends = (Instant::now() + g.lease() + HAND_OFF_MARGIN).min(deadline);
                let taken = self.new_term_by(&g, attempt_ends).await;
                (g, to, taken, attempt_ends >= deadline)
            });
            pending = Vec::new();
            let round_settled = outcomes.len();
            for (g, to, taken, out_of_time) in futures::future::join_all(waits).await {
                if taken {
                    tracing::debug!(group = %g.id, to, "leadership handed off");
                    outcomes.push(HandOff::Taken);
                } else if out_of_time {
                    tracing::debug!(group = %g.id, to, "hand-off: no new term seen in time");
                    outcomes.push(HandOff::Failed);
                } else {
                    pending.push((g, to));
                }
            }
            tracing::debug!(
                round = rounds,
                settled = outcomes.len() - round_settled,
                again = pending.len(),
                ms = started.elapsed().as_millis() as u64,
                "hand-off round"
            );
        }
        let count = |o: HandOff| outcomes.iter().filter(|x| **x == o).count();
        tracing::info!(
            groups = outcomes.len(),
            taken = count(HandOff::Taken),
            refused = count(HandOff::Refused),
            failed = count(HandOff::Failed),
            rounds,
            ms = started.elapsed().as_millis() as u64,
            "leadership handed off"
        );
    }

    /// The follower that is to take `g`, if this node leads it and one can.
    fn successor(&self, g: Arc<RaftGroup>) -> Option<Successor> {
        let m = g.metrics();
        if m.current_leader != Some(self.node_id) {
            return None;
        }
        // Without this node, the voters it can still reach must be a majority, or a new
        // leader could commit nothing: in a cluster stopped node by node the second node's
        // hand-offs only waited out the lease of the third's campaign, to no one's benefit.
        let staying = g.voters.iter().filter(|v| **v != self.node_id && self.reachable(**v)).count();
        if staying <= g.voters.len() / 2 {
            tracing::debug!(group = %g.id, staying, "no majority stays: leadership not handed off");
            return None;
        }
        let last = m.last_log_index;
        let target = m
            .replication
            .as_ref()?
            .iter()
            // A follower this node cannot reach now (stopped before it) cannot take over.
            .filter(|(id, matched)| {
                **id != self.node_id && matched.map(|l| l.index) == last && self.reachable(**id)
            })
            .map(|(id, _)| *id)
            .next();
        let Some(target) = target else {
            tracing::warn!(group = %g.id, "no caught-up follower to hand leadership to");
            return None;
        };
        Some((g, target))
    }

    /// Asks each successor, in one message for all its groups, to campaign now. Returns the
    /// groups whose campaign started, and the outcome of those that are settled already.
    async fn ask_successors(
        &self,
        groups: Vec<Successor>,
        deadline: Instant,
    ) -> (Vec<Successor>, Vec<HandOff>) {
        let mut by_target: BTreeMap<NodeId, Vec<Arc<RaftGroup>>> = BTreeMap::new();
        for (g, to) in groups {
            by_target.entry(to).or_default().push(g);
        }
        let requests = by_target.into_iter().map(|(to, groups)| async move {
            let ids: Vec<GroupId> = groups.iter().map(|g| g.id.clone()).collect();
            let left = deadline.saturating_duration_since(Instant::now());
            let started = match ask_to_campaign(&self.transport, to, &ids, left).await {
                Ok(started) => started,
                Err(reply) => {
                    tracing::warn!(to, groups = groups.len(), reply, "leadership hand-off failed");
                    return (Vec::new(), vec![HandOff::Failed; groups.len()]);
                }
            };
            let (mut asked, mut refused) = (Vec::new(), Vec::new());
            for (g, started) in groups.into_iter().zip(started) {
                match started {
                    Ok(()) => asked.push((g, to)),
                    // The target is stopping too (the whole cluster stops): expected, and
                    // counted in the summary line rather than warned about once per group.
                    Err(why) => {
                        tracing::debug!(group = %g.id, to, why, "leadership hand-off refused");
                        refused.push(HandOff::Refused);
                    }
                }
            }
            (asked, refused)
        });
        let (mut asked, mut settled) = (Vec::new(), Vec::new());
        for (a, s) in futures::future::join_all(requests).await {
            asked.extend(a);
            settled.extend(s);
        }
        (asked, settled)
    }

    /// Whether `g` has left this node's leadership (it granted a newer term) by `until`. With
    /// election timers off, nobody would retry a campaign that missed this node's vote, so the
    /// caller asks again after a lease.
    async fn new_term_by(&self, g: &RaftGroup, until: Instant) -> bool {
        let mut rx = g.raft.metrics();
        tokio::time::timeout_at(until, async {
            while rx.borrow_and_update().current_leader == Some(self.node_id) {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
        .is_ok()
    }
}

/// How long a stopping node gives `groups` hand-offs, all started at once.
fn hand_off_budget(groups: usize) -> Duration {
    HAND_OFF_TIMEOUT + HAND_OFF_PER_GROUP * groups as u32
}
