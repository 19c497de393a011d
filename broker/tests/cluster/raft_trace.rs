//! RPC-level Raft telemetry (`GET /raft/trace`) on real processes: the watched group's appends
//! while it serves, then the election that follows a SIGKILL of its leader, as the survivors
//! recorded it message by message.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use broker::telemetry::wire::Role;
use serde_json::Value;

use crate::clients::{produce, ProduceSpec};
use crate::harness::{unique, wait_for, Cluster};

const PARTITIONS: i32 = 3;
/// A re-election after a kill takes well under a second here; generous for a loaded CI machine.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(20);

/// Events of node `id` from seq `since` on, and the seq to ask from next time.
fn trace_since(c: &Cluster, id: i32, since: u64) -> Result<(Vec<Value>, u64)> {
    let page = c.get_json(id, &format!("/raft/trace?since={since}"))?;
    let events = page["events"].as_array().cloned().unwrap_or_default();
    Ok((events, page["next"].as_u64().context("trace page without `next`")?))
}

fn watch(c: &Cluster, id: i32, group: &str) -> Result<()> {
    let body = format!(r#"{{"group":"{group}"}}"#);
    let (status, answer) = crate::http::post_json(c.node(id).http, "/raft/trace/watch", &body)?;
    ensure!(status == 200, "node {id}: watch {group} answered {status}: {answer}");
    Ok(())
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
    let bad = crate::http::post_json(c.node(1).http, "/raft/trace/watch", r#"{"group":"nodash"}"#)?;
    ensure!(bad.0 == 400, "a name that is no group is refused: {bad:?}");

    // While it serves: the leader's appends to both followers carry entry ranges.
    let (_, leader_from) = trace_since(&c, old_leader, 0)?;
    let mut spec = ProduceSpec::new(&c.bootstrap(1), &topic, "traced-", 20);
    spec.partition = Some(0);
    produce(spec)?;
    let appends = wait_for("the leader's appends with entries to both followers", ELECTION_TIMEOUT, || {
        let (events, _) = trace_since(&c, old_leader, leader_from)?;
        let with_entries: Vec<Value> = events
            .into_iter()
            .filter(|e| e["type"] == "append" && e["group"] == group.as_str() && !e["entries"].is_null())
            .collect();
        let peers: std::collections::BTreeSet<u64> =
            with_entries.iter().filter_map(|e| e["to"].as_u64()).collect();
        Ok((peers.len() == 2).then_some(with_entries))
    })?;
    let first = &appends[0];
    ensure!(first["term"] == old_term && first["outcome"]["kind"] == "ok", "an acknowledged append: {first}");
    ensure!(first["terms"][0][0] == old_term, "entries carry their terms as runs: {first}");

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
            let votes_to_dead = events
                .iter()
                .any(|e| e["type"] == "vote" && e["group"] == group.as_str() && e["to"] == old_leader as u64);
            Ok(votes_to_dead.then_some(events))
        })?;
    let g = group.as_str();
    let ours = |t: &'static str| events.iter().filter(move |e| e["type"] == t && e["group"] == g);
    let granted = ours("vote")
        .find(|e| e["to"] == other as u64 && e["term"] == new_term && e["outcome"]["kind"] == "ok")
        .with_context(|| format!("no granted vote from n{other} in term {new_term}: {events:?}"))?;
    eprintln!("granted: {granted}");
    let to_dead = ours("vote").find(|e| e["to"] == old_leader as u64).expect("seen above");
    ensure!(
        to_dead["outcome"]["kind"] != "ok",
        "the vote request to the killed node cannot have been granted: {to_dead}"
    );
    let campaign = ours("campaign").next().with_context(|| format!("no campaign decision: {events:?}"))?;
    ensure!(campaign["candidate"] == new_leader as u64, "the new leader decided to campaign: {campaign}");
    ensure!(
        events.iter().any(|e| e["type"] == "node_heartbeat"
            && e["to"] == old_leader as u64
            && e["outcome"]["kind"] != "ok"),
        "node heartbeats to the killed node failed"
    );
    ensure!(new_term > old_term, "the term went up: {old_term} -> {new_term}");
    // Once it leads, it appends in the new term (its first, empty, entry at least).
    wait_for("an append in the new term", ELECTION_TIMEOUT, || {
        let (events, _) = trace_since(&c, new_leader, from)?;
        Ok(events
            .iter()
            .any(|e| e["type"] == "append" && e["group"] == group.as_str() && e["term"] == new_term)
            .then_some(()))
    })?;
    // The replica state rides along: the new leader's log ends in the new term.
    let page = c.get_json(new_leader, "/raft/trace?since=0&limit=1")?;
    let replica = &page["replica"];
    ensure!(replica["group"] == group.as_str() && replica["role"] == "Leader", "replica: {replica}");
    let last_run = replica["tail"].as_array().and_then(|t| t.last()).cloned().unwrap_or_default();
    ensure!(last_run[0] == new_term, "the log tail ends with the new term's entries: {replica}");
    ensure!(page["counters"]["votes"].as_u64() >= Some(2), "counters count every vote: {}", page["counters"]);
    Ok(())
}

/// Where the first entry of `term` sits in a replica's log tail (`replica.tail` runs
/// `[term, first, last]`), if the tail shows one.
fn first_index_of_term(replica: &Value, term: u64) -> Option<u64> {
    replica["tail"].as_array()?.iter().find(|r| r[0] == term).and_then(|r| r[1].as_u64())
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
            Ok(events.iter().any(|e| e["type"] == "append" && !e["entries"].is_null()).then_some(()))
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
            Ok(first_index_of_term(&c.get_json(nl, "/raft/trace?limit=0")?["replica"], nterm))
        })?;
        let old = c.get_json(l, "/raft/trace?limit=0")?;
        let old_entries = old["replica"]["entries"].as_u64().context("isolated leader's replica")?;
        let cursor = old["next"].as_u64().unwrap_or(0);
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
                Ok(events.into_iter().find(|e| e["type"] == "truncate" && e["group"] == group.as_str()))
            },
        )?;
        eprintln!("truncate: {truncate}");
        ensure!(
            truncate["from"].as_u64() <= Some(new_first),
            "cut at or before the new term's first entry: {truncate}"
        );
        ensure!(
            truncate["terms"][0][0] == term,
            "the discarded entries are of the old term {term}: {truncate}"
        );
        ensure!(
            truncate["discarded"].as_u64() >= Some(old_entries - new_first),
            "every entry past the new leader's first one went ({old_entries} - {new_first}): {truncate}"
        );
        let counters = c.get_json(l, "/raft/trace?limit=0")?["counters"].clone();
        ensure!(counters["truncations"].as_u64() >= Some(1), "counted too: {counters}");
        return Ok(());
    }
    anyhow::bail!("in 3 tries the isolated leader never held an uncommitted entry when the majority moved on")
}
