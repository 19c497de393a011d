//! RPC-level Raft telemetry (`GET /raft/trace`) on real processes: the watched group's appends
//! while it serves, then the election that follows a SIGKILL of its leader, as the survivors
//! recorded it message by message.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use broker::cluster::rpc_trace::{ReplicaLog, TraceAnswer};
use broker::raft::trace::{Outcome, TraceEvent, TraceKind};
use broker::telemetry::wire::{Role, TraceWatch};

use crate::clients::{produce, ProduceSpec};
use crate::harness::{unique, wait_for, Cluster};

const PARTITIONS: i32 = 3;
/// A re-election after a kill takes well under a second here; generous for a loaded CI machine.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// Events of node `id` from seq `since` on, and the seq to ask from next time.
fn trace_since(c: &Cluster, id: i32, since: u64) -> Result<(Vec<TraceEvent>, u64)> {
    let answer: TraceAnswer = c.get(id, &format!("/raft/trace?since={since}"))?;
    Ok((answer.page.events, answer.page.next))
}

/// The node's trace answer without events: its counters and the watched replica's log.
fn trace_state(c: &Cluster, id: i32) -> Result<TraceAnswer> {
    c.get(id, "/raft/trace?limit=0")
}

fn watch(c: &Cluster, id: i32, group: &str) -> Result<()> {
    let answer: TraceWatch = post_watch(c, id, group)?;
    ensure!(answer.watched.as_ref().is_some_and(|g| g == group), "node {id}: watching {group}: {answer:?}");
    Ok(())
}

fn post_watch(c: &Cluster, id: i32, group: &str) -> Result<TraceWatch> {
    let answer =
        crate::endpoint::post(c.node(id).http, "/raft/trace/watch", &serde_json::json!({ "group": group }))?;
    serde_json::from_str(&answer).with_context(|| format!("node {id}: watch answer {answer}"))
}

/// The event is of `group`.
fn of(e: &TraceEvent, group: &str) -> bool {
    e.group.as_ref().is_some_and(|g| g == group)
}

#[test]
fn raft_trace_records_appends_and_the_election_after_a_leader_kill() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let topic = unique("traced");
    let group = format!("{topic}-0");
    // Creates the topic; then every partition gets its leader.
    produce(ProduceSpec::new(&c.bootstrap(1), &topic, "warm-", 30))?;
    let leaders = c.wait_all_leaders(&topic, PARTITIONS)?;
    let (old_leader, old_term) = leaders[&0];
    for id in c.ids() {
        watch(&c, id, &group)?;
    }
    let bad = post_watch(&c, 1, "nodash").expect_err("a name that is no group is refused");
    ensure!(format!("{bad:#}").contains("answered 400"), "refused as a bad request: {bad:#}");

    // While it serves: the leader's appends to both followers carry entry ranges.
    let (_, leader_from) = trace_since(&c, old_leader, 0)?;
    let mut spec = ProduceSpec::new(&c.bootstrap(1), &topic, "traced-", 20);
    spec.partition = Some(0);
    produce(spec)?;
    let appends = wait_for("the leader's appends with entries to both followers", ELECTION_TIMEOUT, || {
        let (events, _) = trace_since(&c, old_leader, leader_from)?;
        let with_entries: Vec<TraceEvent> = events
            .into_iter()
            .filter(|e| of(e, &group) && matches!(e.kind, TraceKind::Append { entries: Some(_), .. }))
            .collect();
        let peers: std::collections::BTreeSet<u64> =
            with_entries.iter().filter_map(|e| e.kind.to()).collect();
        Ok((peers.len() == 2).then_some(with_entries))
    })?;
    let first = &appends[0];
    ensure!(
        first.kind.term() == Some(old_term) && first.kind.succeeded(),
        "an acknowledged append: {first:?}"
    );
    let TraceKind::Append { terms, .. } = &first.kind else { unreachable!("filtered to appends") };
    ensure!(terms.first().map(|r| r.0) == Some(old_term), "entries carry their terms as runs: {first:?}");

    // Kill the leader; the survivors elect a new one in a higher term.
    let survivors: Vec<i32> = c.ids().into_iter().filter(|id| *id != old_leader).collect();
    let mut cursors = Vec::new();
    for &id in &survivors {
        cursors.push((id, trace_since(&c, id, 0)?.1));
    }
    eprintln!("killing node {old_leader}, leader of {group} in term {old_term}");
    c.kill(old_leader)?;
    let (new_leader, new_term) = wait_for(&format!("a new leader of {group}"), ELECTION_TIMEOUT, || {
        Ok(c.leader_of(&topic, 0)?.filter(|(l, t)| *l != old_leader && *t > old_term))
    })?;
    eprintln!("node {new_leader} leads {group} in term {new_term}");
    let other = *survivors.iter().find(|id| **id != new_leader).expect("two survivors");

    // What the new leader recorded: its election driver's decision, the vote it got from the
    // other survivor in the new term, the failed request to the dead node, and the failing
    // node heartbeats that made it suspect the old leader.
    let from = cursors.iter().find(|(id, _)| *id == new_leader).map(|(_, s)| *s).unwrap_or(0);
    let events =
        wait_for("the vote requests of the election in the new leader's trace", ELECTION_TIMEOUT, || {
            let (events, _) = trace_since(&c, new_leader, from)?;
            let votes_to_dead = events.iter().any(|e| {
                of(e, &group) && matches!(e.kind, TraceKind::Vote { to, .. } if to == old_leader as u64)
            });
            Ok(votes_to_dead.then_some(events))
        })?;
    let votes: Vec<&TraceEvent> =
        events.iter().filter(|e| of(e, &group) && matches!(e.kind, TraceKind::Vote { .. })).collect();
    let granted = votes
        .iter()
        .find(|e| e.kind.to() == Some(other as u64) && e.kind.term() == Some(new_term) && e.kind.succeeded())
        .with_context(|| format!("no granted vote from n{other} in term {new_term}: {events:?}"))?;
    eprintln!("granted: {granted:?}");
    let to_dead = votes.iter().find(|e| e.kind.to() == Some(old_leader as u64)).expect("seen above");
    ensure!(
        !to_dead.kind.succeeded(),
        "the vote request to the killed node cannot have been granted: {to_dead:?}"
    );
    let candidate = events
        .iter()
        .find_map(|e| match &e.kind {
            TraceKind::Campaign { candidate, .. } if of(e, &group) => Some(*candidate),
            _ => None,
        })
        .with_context(|| format!("no campaign decision: {events:?}"))?;
    ensure!(candidate == new_leader as u64, "the new leader decided to campaign, not n{candidate}");
    ensure!(
        events.iter().any(|e| matches!(&e.kind,
            TraceKind::NodeHeartbeat { to, outcome, .. } if *to == old_leader as u64 && *outcome != Outcome::Ok)),
        "node heartbeats to the killed node failed"
    );
    ensure!(new_term > old_term, "the term went up: {old_term} -> {new_term}");
    // Once it leads, it appends in the new term (its first, empty, entry at least).
    wait_for("an append in the new term", ELECTION_TIMEOUT, || {
        let (events, _) = trace_since(&c, new_leader, from)?;
        Ok(events
            .iter()
            .any(|e| of(e, &group) && matches!(e.kind, TraceKind::Append { term, .. } if term == new_term))
            .then_some(()))
    })?;
    // The replica state rides along: the new leader's log ends in the new term.
    let answer: TraceAnswer = c.get(new_leader, "/raft/trace?since=0&limit=1")?;
    let replica = answer.replica.context("the new leader's trace carries no replica")?;
    ensure!(replica.group == group && replica.role == Role::Leader, "replica: {replica:?}");
    let last_run = replica.tail.last().copied();
    ensure!(
        last_run.map(|r| r.0) == Some(new_term),
        "the log tail ends with the new term's entries: {replica:?}"
    );
    let votes = answer.page.counters.votes;
    ensure!(votes >= 2, "counters count every vote: {:?}", answer.page.counters);
    Ok(())
}

/// Where the first entry of `term` sits in a replica's log tail (runs of term, first, last), if
/// the tail shows one.
fn first_index_of_term(replica: Option<&ReplicaLog>, term: u64) -> Option<u64> {
    replica?.tail.iter().find(|r| r.0 == term).map(|r| r.1)
}

/// A leader cut off from its majority keeps appending what a producer sends it, but cannot commit;
/// the majority elects a new leader whose first entry takes the same index. When the link heals,
/// the old leader's trace shows its uncommitted entries of the old term being discarded.
#[test]
fn raft_trace_records_the_rollback_of_an_isolated_leaders_uncommitted_entries() -> Result<()> {
    let mut c = Cluster::start_with_links(3)?;
    for rep in 1..=3 {
        let topic = unique("rollback");
        let group = format!("{topic}-0");
        produce(ProduceSpec::new(&c.bootstrap_all(), &topic, "warm-", 30))?;
        let (l, term) = c.wait_all_leaders(&topic, PARTITIONS)?[&0];
        for id in c.ids() {
            watch(&c, id, &group)?;
        }
        // A steady producer to the leader's own address: what it appends after the cut stays
        // uncommitted in its log.
        let mut spec = ProduceSpec::new(&c.bootstrap(l), &topic, &format!("r{rep}-"), 400)
            .set("enable.idempotence", "false")
            .set("message.timeout.ms", "3000")
            .set("request.timeout.ms", "2500");
        spec.partition = Some(0);
        spec.window = 5;
        spec.pace = Duration::from_millis(5);
        let producer = crate::clients::ProducerRun::spawn(spec)?;
        let from = trace_since(&c, l, 0)?.1;
        wait_for("the producer's appends on the leader", ELECTION_TIMEOUT, || {
            let (events, _) = trace_since(&c, l, from)?;
            Ok(events
                .iter()
                .any(|e| matches!(e.kind, TraceKind::Append { entries: Some(_), .. }))
                .then_some(()))
        })?;
        let others: Vec<i32> = c.ids().into_iter().filter(|id| *id != l).collect();
        c.links.as_ref().expect("links").isolate(l, true);
        let (nl, nterm) =
            wait_for(&format!("a new leader of {group} among {others:?}"), ELECTION_TIMEOUT, || {
                for &id in &others {
                    if let Some(g) = c.group_on(id, &group)? {
                        if g.role == Role::Leader && g.term > term {
                            return Ok(Some((id, g.term)));
                        }
                    }
                }
                Ok(None)
            })?;
        let new_first = wait_for("the new leader's first entry of its term", ELECTION_TIMEOUT, || {
            Ok(first_index_of_term(trace_state(&c, nl)?.replica.as_ref(), nterm))
        })?;
        let old = trace_state(&c, l)?;
        let old_entries = old.replica.as_ref().context("isolated leader's replica")?.entries;
        let cursor = old.page.next;
        eprintln!("rep {rep}: n{l} (term {term}) isolated with {old_entries} entries; n{nl} leads term {nterm} from index {new_first}");
        c.links.as_ref().expect("links").isolate(l, false);
        let _ = producer.join();
        if old_entries <= new_first {
            eprintln!("rep {rep}: nothing uncommitted on the isolated leader to roll back; again");
            continue;
        }
        let truncate = wait_for(
            &format!("n{l} to discard its uncommitted entries of term {term}"),
            ELECTION_TIMEOUT,
            || {
                let (events, _) = trace_since(&c, l, cursor)?;
                Ok(events.into_iter().find_map(|e| match e.kind {
                    TraceKind::Truncate { from, discarded, terms } if of(&e, &group) => {
                        Some((from, discarded, terms))
                    }
                    _ => None,
                }))
            },
        )?;
        let (from, discarded, terms) = &truncate;
        eprintln!("truncate: {truncate:?}");
        ensure!(*from <= new_first, "cut at or before the new term's first entry: {truncate:?}");
        ensure!(
            terms.first().map(|r| r.0) == Some(term),
            "the discarded entries are of the old term {term}: {truncate:?}"
        );
        ensure!(
            *discarded >= old_entries - new_first,
            "every entry past the new leader's first one went ({old_entries} - {new_first}): {truncate:?}"
        );
        let counters = trace_state(&c, l)?.page.counters;
        ensure!(counters.truncations >= 1, "counted too: {counters:?}");
        return Ok(());
    }
    anyhow::bail!("in 3 tries the isolated leader never held an uncommitted entry when the majority moved on")
}
