//! Judging a run's `[expect]` keys over the Raft trace (`RaftExpect`): what the watched group's
//! recorded messages show from the moment the steps started. Pure over timeline entries, so the
//! judgement is tested without a cluster and reads the same entries an export or replay holds.

use std::collections::HashMap;

use broker::cluster::rpc_trace::ReplicaLog;
use broker::raft::trace::TraceKind;

use crate::drill::RaftExpect;
use crate::timeline::{EventKind, TimelineEvent};

/// What the watched group's trace showed, summed over every node.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TraceFacts {
    /// (candidate, term) of each election won in a term above the starting one.
    pub won: Vec<(i32, u64)>,
    /// Entries discarded by replicas, with the node that discarded them.
    pub discarded: Vec<(i32, u64)>,
    pub commits: u64,
    /// The most entries a replica held but had not fsynced, with that node (from the replica
    /// states the nodes report with their trace, about every 100 ms; a lower bound beyond the
    /// log tail a node reports).
    pub max_flush_lag: Option<(i32, u64)>,
}

/// Reads `events` (a run's timeline from the steps on) for `group`. `start_term`: the group's
/// term when the steps started; `nodes`: the cluster size (a majority wins an election).
pub fn facts(events: &[TimelineEvent], group: &str, start_term: u64, nodes: usize) -> TraceFacts {
    let mut facts = TraceFacts::default();
    // Granted votes per (candidate, term); a candidate votes for itself.
    let mut granted: HashMap<(i32, u64), usize> = HashMap::new();
    for e in events {
        let EventKind::RaftTrace { group: Some(g), nodes: batch } = &e.kind else { continue };
        if g != group {
            continue;
        }
        for n in batch {
            if let Some(lag) = n.replica.as_ref().and_then(flush_lag) {
                if facts.max_flush_lag.is_none_or(|(_, most)| lag > most) {
                    facts.max_flush_lag = Some((n.node, lag));
                }
            }
            // Events name their group; a `null` one (node heartbeats) is about every group.
            let mine = n.events.iter().filter(|v| v.group.as_ref().is_none_or(|g| g == group));
            for v in mine {
                match &v.kind {
                    TraceKind::Vote { term, .. } if v.kind.succeeded() && *term > start_term => {
                        *granted.entry((n.node, *term)).or_default() += 1;
                    }
                    TraceKind::Truncate { discarded, .. } if *discarded > 0 => {
                        facts.discarded.push((n.node, *discarded));
                    }
                    TraceKind::Commit { .. } => facts.commits += 1,
                    _ => {}
                }
            }
        }
    }
    let majority = nodes / 2 + 1;
    facts.won = granted.into_iter().filter(|(_, votes)| votes + 1 >= majority).map(|(k, _)| k).collect();
    facts.won.sort();
    facts
}

/// Entries of a replica state past its flushed index. The tail is runs of [term, first, last]
/// covering the node's latest entries only; `flushed: null` under a tail means the flushed point
/// lies before it, so the whole tail (a lower bound) is not fsynced.
fn flush_lag(replica: &ReplicaLog) -> Option<u64> {
    let (first, last) = (replica.tail.first()?.1, replica.tail.last()?.2);
    Some(match replica.flushed {
        Some(flushed) => last.saturating_sub(flushed),
        None => last - first + 1,
    })
}

/// `Some(why)` for the first expectation the facts do not meet.
pub fn unmet(expect: &RaftExpect, facts: &TraceFacts, group: &str) -> Option<String> {
    if expect.elected_in_higher_term && facts.won.is_empty() {
        return Some(format!("no election in a higher term was won in {group}"));
    }
    if expect.discarded_uncommitted && facts.discarded.is_empty() {
        return Some(format!("no replica of {group} discarded uncommitted entries"));
    }
    if let Some(min) = expect.min_commits.filter(|m| facts.commits < *m) {
        return Some(format!("{group}'s commit index advanced {} times, fewer than {min}", facts.commits));
    }
    let (lag_node, lag) = facts.max_flush_lag.unwrap_or((0, 0));
    if let Some(min) = expect.min_flush_lag.filter(|m| lag < *m) {
        return Some(format!(
            "no replica of {group} fell {min} entries behind on fsync (at most {lag}, on n{lag_node})"
        ));
    }
    None
}

/// One line for the verdict: what the trace showed.
pub fn describe(facts: &TraceFacts, group: &str) -> String {
    let won = facts.won.iter().map(|(n, t)| format!("n{n} won term {t}")).collect::<Vec<_>>();
    let dropped = facts.discarded.iter().map(|(n, d)| format!("n{n} discarded {d}")).collect::<Vec<_>>();
    let mut parts = vec![format!("{} commits", facts.commits)];
    if !won.is_empty() {
        parts.push(won.join(", "));
    }
    if !dropped.is_empty() {
        parts.push(dropped.join(", "));
    }
    if let Some((n, lag)) = facts.max_flush_lag {
        parts.push(format!("n{n} up to {lag} entries not fsynced"));
    }
    format!("Raft trace of {group}: {}", parts.join("; "))
}

#[cfg(test)]
pub(crate) mod tests {
    use broker::raft::trace::{Outcome, TraceEvent};
    use broker::telemetry::wire::Role;

    use super::*;

    /// A replica state as nodes report it: its log tail as runs (term, first, last) and flushed.
    pub(crate) fn replica_log(term: u64, tail: Vec<(u64, u64, u64)>, flushed: Option<u64>) -> ReplicaLog {
        ReplicaLog {
            at_ns: None,
            group: "orders-0".parse().unwrap(),
            term,
            role: Role::Follower,
            leader: None,
            voted_for: None,
            entries: tail.last().map_or(0, |r| r.2 + 1),
            tail,
            committed: None,
            flushed,
            heard_leader_ms_ago: None,
            matched: Default::default(),
        }
    }

    fn event(kind: TraceKind) -> TraceEvent {
        TraceEvent { seq: 0, ts_ns: 0, group: Some("orders-0".parse().unwrap()), kind }
    }

    /// Only for tests: one `raft_trace` entry of `group` with `node`'s events.
    fn entry(group: &str, node: i32, events: Vec<TraceEvent>) -> TimelineEvent {
        use crate::timeline::event::NodeTrace;
        TimelineEvent {
            seq: 0,
            ts_ns: 0,
            source: crate::timeline::Source::Lab,
            kind: EventKind::RaftTrace {
                group: Some(group.parse().unwrap()),
                nodes: vec![NodeTrace { node, events, replica: None, missed: 0, suspect_after_ms: 300 }],
            },
        }
    }

    /// A replica state as nodes report it: log tail runs [term, first, last] and flushed.
    fn replica(node: i32, last: u64, flushed: Option<u64>) -> TimelineEvent {
        let mut e = entry("orders-0", node, vec![]);
        if let EventKind::RaftTrace { nodes, .. } = &mut e.kind {
            nodes[0].replica = Some(replica_log(3, vec![(3, 1, last)], flushed));
        }
        e
    }

    fn vote(term: u64, granted: bool) -> TraceEvent {
        let outcome = if granted { Outcome::Ok } else { Outcome::Refused { reason: "voted".into(), term } };
        event(TraceKind::Vote { to: 1, term, last_log: None, outcome, rtt_us: 0 })
    }

    #[test]
    fn an_election_counts_when_a_majority_granted_in_a_higher_term() {
        let events = vec![
            entry("orders-0", 2, vec![vote(3, true), vote(3, false)]),
            // Term 2 is the starting term: a win there is the old election, not the lesson's.
            entry("orders-0", 3, vec![vote(2, true)]),
            // Another group's trace is not this one's.
            entry("orders-1", 1, vec![vote(9, true)]),
        ];
        let f = facts(&events, "orders-0", 2, 3);
        assert_eq!(f.won, vec![(2, 3)], "n2 + one granted vote = 2 of 3");
        let expect = RaftExpect { elected_in_higher_term: true, ..Default::default() };
        assert_eq!(unmet(&expect, &f, "orders-0"), None);
        let five = facts(&events, "orders-0", 2, 5);
        assert!(five.won.is_empty(), "2 of 5 is no majority");
        let why = unmet(&expect, &five, "orders-0").expect("unmet");
        assert!(why.contains("no election in a higher term was won in orders-0"), "{why}");
    }

    #[test]
    fn truncations_commits_and_fsync_lag_are_counted() {
        let events = vec![entry(
            "orders-0",
            1,
            vec![
                event(TraceKind::Truncate { from: 7, discarded: 2, terms: vec![(3, 2)] }),
                event(TraceKind::Truncate { from: 9, discarded: 0, terms: vec![] }),
                event(TraceKind::Commit { index: 8 }),
                event(TraceKind::Commit { index: 9 }),
            ],
        )];
        let events =
            [events, vec![replica(2, 40, Some(39)), replica(3, 60, Some(21)), replica(2, 80, Some(78))]]
                .concat();
        let f = facts(&events, "orders-0", 3, 3);
        assert_eq!((f.discarded.clone(), f.commits, f.max_flush_lag), (vec![(1, 2)], 2, Some((3, 39))));
        let all = RaftExpect {
            elected_in_higher_term: false,
            discarded_uncommitted: true,
            min_commits: Some(2),
            min_flush_lag: Some(30),
        };
        assert_eq!(unmet(&all, &f, "orders-0"), None);
        let more = RaftExpect { min_commits: Some(3), ..all.clone() };
        assert!(unmet(&more, &f, "g").unwrap().contains("advanced 2 times, fewer than 3"));
        let further = RaftExpect { min_flush_lag: Some(40), ..all };
        let why = unmet(&further, &f, "g").unwrap();
        assert!(why.contains("fell 40 entries behind on fsync (at most 39, on n3)"), "{why}");
        assert!(describe(&f, "orders-0").contains("n1 discarded 2"));
        // A node whose flushed point is before the tail it reports (tail from 1): all of it lags.
        let beyond = facts(&[replica(2, 70, None)], "orders-0", 3, 3);
        assert_eq!(beyond.max_flush_lag, Some((2, 70)));
    }
}
