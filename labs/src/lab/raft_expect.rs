//! Judging a run's `[expect]` keys over the Raft trace (`RaftExpect`): what the watched group's
//! recorded messages show from the moment the steps started. Pure over timeline entries, so the
//! judgement is tested without a cluster and reads the same entries an export or replay holds.

use std::collections::HashMap;

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
            let mine = n.events.iter().filter(|v| v["group"].is_null() || v["group"] == group);
            for v in mine {
                let ok = v["outcome"]["kind"] == "ok";
                let term = v["term"].as_u64().unwrap_or(0);
                match v["type"].as_str() {
                    Some("vote") if ok && term > start_term => {
                        *granted.entry((n.node, term)).or_default() += 1;
                    }
                    Some("truncate") => {
                        let d = v["discarded"].as_u64().unwrap_or(0);
                        if d > 0 {
                            facts.discarded.push((n.node, d));
                        }
                    }
                    Some("commit") => facts.commits += 1,
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
fn flush_lag(replica: &serde_json::Value) -> Option<u64> {
    let tail = replica["tail"].as_array()?;
    let (first, last) = (tail.first()?[1].as_u64()?, tail.last()?[2].as_u64()?);
    Some(match replica["flushed"].as_u64() {
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
mod tests {
    use serde_json::{json, Value};

    use super::*;

    /// Only for tests: one `raft_trace` entry of `group` with `node`'s events.
    fn entry(group: &str, node: i32, events: Vec<Value>) -> TimelineEvent {
        use crate::timeline::event::NodeTrace;
        TimelineEvent {
            seq: 0,
            ts_ns: 0,
            source: crate::timeline::Source::Lab,
            kind: EventKind::RaftTrace {
                group: Some(group.into()),
                nodes: vec![NodeTrace { node, events, replica: None, missed: 0, suspect_after_ms: 300 }],
            },
        }
    }

    /// A replica state as nodes report it: log tail runs [term, first, last] and flushed.
    fn replica(node: i32, last: u64, flushed: Option<u64>) -> TimelineEvent {
        let mut e = entry("orders-0", node, vec![]);
        if let EventKind::RaftTrace { nodes, .. } = &mut e.kind {
            nodes[0].replica = Some(json!({ "tail": [[3, 1, last]], "flushed": flushed }));
        }
        e
    }

    fn vote(term: u64, kind: &str) -> Value {
        json!({ "type": "vote", "group": "orders-0", "term": term, "outcome": { "kind": kind } })
    }

    #[test]
    fn an_election_counts_when_a_majority_granted_in_a_higher_term() {
        let events = vec![
            entry("orders-0", 2, vec![vote(3, "ok"), vote(3, "refused")]),
            // Term 2 is the starting term: a win there is the old election, not the lesson's.
            entry("orders-0", 3, vec![vote(2, "ok")]),
            // Another group's trace is not this one's.
            entry("orders-1", 1, vec![vote(9, "ok")]),
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
                json!({ "type": "truncate", "group": "orders-0", "from": 7, "discarded": 2, "terms": [[3, 2]] }),
                json!({ "type": "truncate", "group": "orders-0", "from": 9, "discarded": 0, "terms": [] }),
                json!({ "type": "commit", "group": "orders-0", "index": 8 }),
                json!({ "type": "commit", "group": "orders-0", "index": 9 }),
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
