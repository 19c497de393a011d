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
    /// The slowest acknowledged AppendEntries round trip, ms.
    pub slowest_append_ms: u64,
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
                    Some("append") if ok => {
                        let ms = v["rtt_us"].as_u64().unwrap_or(0) / 1000;
                        facts.slowest_append_ms = facts.slowest_append_ms.max(ms);
                    }
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
    if let Some(min) = expect.min_append_rtt_ms.filter(|m| facts.slowest_append_ms < *m) {
        return Some(format!(
            "the slowest acknowledged append of {group} took {} ms, not the {min} ms expected",
            facts.slowest_append_ms
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
    parts.push(format!("slowest append {} ms", facts.slowest_append_ms));
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
    fn truncations_commits_and_slow_appends_are_counted() {
        let events = vec![entry(
            "orders-0",
            1,
            vec![
                json!({ "type": "truncate", "group": "orders-0", "from": 7, "discarded": 2, "terms": [[3, 2]] }),
                json!({ "type": "truncate", "group": "orders-0", "from": 9, "discarded": 0, "terms": [] }),
                json!({ "type": "commit", "group": "orders-0", "index": 8 }),
                json!({ "type": "commit", "group": "orders-0", "index": 9 }),
                json!({ "type": "append", "group": "orders-0", "term": 3, "outcome": { "kind": "ok" }, "rtt_us": 212_000 }),
                json!({ "type": "append", "group": "orders-0", "term": 3, "outcome": { "kind": "timeout" }, "rtt_us": 900_000 }),
            ],
        )];
        let f = facts(&events, "orders-0", 3, 3);
        assert_eq!((f.discarded.clone(), f.commits, f.slowest_append_ms), (vec![(1, 2)], 2, 212));
        let all = RaftExpect {
            elected_in_higher_term: false,
            discarded_uncommitted: true,
            min_commits: Some(2),
            min_append_rtt_ms: Some(200),
        };
        assert_eq!(unmet(&all, &f, "orders-0"), None);
        let more = RaftExpect { min_commits: Some(3), ..all.clone() };
        assert!(unmet(&more, &f, "g").unwrap().contains("advanced 2 times, fewer than 3"));
        let slower = RaftExpect { min_append_rtt_ms: Some(300), ..all };
        assert!(
            unmet(&slower, &f, "g").unwrap().contains("took 212 ms, not the 300 ms"),
            "a lost append counts for nothing"
        );
        assert!(describe(&f, "orders-0").contains("n1 discarded 2"));
    }
}
