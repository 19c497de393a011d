//! A partition leader paused (SIGSTOP) while an idempotent producer writes to it: the others
//! elect a new leader, the paused one is resumed, and every acknowledged value must be in the
//! log exactly once. Chaos found a value written twice, two offsets apart, both times right
//! after a pause of the leader (docs/chaos.md, broker bug 2): the retry of a batch the paused
//! leader had replicated was not recognised as a duplicate.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use broker::telemetry::wire::Role;

use crate::checker::check;
use crate::clients::{read_all, ProduceSpec, ProducerRun};
use crate::harness::{unique, wait_for, Cluster, CLUSTER_TIMEOUT};

const PARTITIONS: i32 = 3;
const PAUSES: usize = 15;

/// The leader of `topic-0` as the nodes in `asked` report it (a paused node cannot be asked).
fn leader_seen_by(c: &Cluster, asked: &[i32], topic: &str) -> Result<Option<(i32, u64)>> {
    let mut best: Option<(i32, u64)> = None;
    for id in asked {
        if let Some(g) = c.group_on(*id, &format!("{topic}-0"))? {
            if g.role == Role::Leader && best.is_none_or(|(_, t)| g.term > t) {
                best = Some((*id, g.term));
            }
        }
    }
    Ok(best)
}

#[test]
fn retries_after_a_paused_leader_are_deduplicated() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let r = pause_leaders(&mut c);
    if let Err(e) = &r {
        eprintln!("FAILED: {e:#}\n{}", c.logs(40));
    }
    r
}

fn pause_leaders(c: &mut Cluster) -> Result<()> {
    let t0 = Instant::now();
    let topic = unique("pausedleader");
    let prefix = "pl-";
    let mut spec = ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 1_000_000);
    spec.window = 50;
    // As in the lab: a paused leader's connection stays open, so what comes back is its own
    // answer once it runs again, not a client-side timeout.
    let spec = spec.set("request.timeout.ms", "30000");
    let run = ProducerRun::spawn(spec)?;
    wait_for("200 acks", Duration::from_secs(60), || Ok((run.acks() >= 200).then_some(())))?;
    for pause in 1..=PAUSES {
        let all = c.ids();
        let (leader, term) =
            wait_for("a leader of partition 0", CLUSTER_TIMEOUT, || leader_seen_by(c, &all, &topic))?;
        let others: Vec<i32> = all.iter().copied().filter(|id| *id != leader).collect();
        let proc = c.node(leader).proc.as_ref().context("leader not running")?;
        proc.pause()?;
        let paused_at = Instant::now();
        let taken = wait_for(
            &format!("a new leader of partition 0 after pausing node {leader}"),
            CLUSTER_TIMEOUT,
            || Ok(leader_seen_by(c, &others, &topic)?.filter(|(_, t)| *t > term)),
        );
        // Resumed as soon as the others have moved on, as chaos does: the producer's requests
        // to the paused node are answered by it, not timed out by the client.
        let resumed = c.node(leader).proc.as_ref().context("paused leader gone")?.signal(libc::SIGCONT);
        let paused_for = paused_at.elapsed();
        let (new_leader, new_term) = taken?;
        resumed?;
        wait_for("acks on partition 0 after the resume", CLUSTER_TIMEOUT, || {
            let s = run.snapshot();
            Ok((s.acks.iter().filter(|a| a.partition == 0 && a.at > paused_at).count() >= 20).then_some(()))
        })?;
        c.wait_caught_up(leader, Duration::from_secs(60))?;
        println!(
            "[paused leader {pause}] node {leader} (term {term}) paused for {:.0} ms; node {new_leader} led in term {new_term}",
            paused_for.as_secs_f64() * 1000.0
        );
    }
    run.stop();
    let log = run.join()?;
    let expected = log.acked_payloads();
    let read = read_all(&c.bootstrap_all(), &topic, PARTITIONS, &expected, Duration::from_secs(60))?;
    check(&log.acks, &read, prefix).assert_ok("paused leaders", t0.elapsed())
}
