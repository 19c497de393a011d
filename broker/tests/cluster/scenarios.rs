//! The seed scenarios. Each is repeated in one test on the same cluster (fresh topic each time),
//! with an idempotent acks=all producer and the exactly-once/in-order checker.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use broker::telemetry::wire::Role;

use crate::checker::check;
use crate::clients::{
    commit_consumed, drain_to_eof, eof_state, group_consumer, poll_n, produce, read_all, Ack, ProduceLog,
    ProduceSpec, ProducerRun, Record,
};
use crate::harness::{unique, wait_for, Cluster, CLUSTER_TIMEOUT};

const PARTITIONS: i32 = 3;
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `body`; on failure appends the tail of every node's stderr to the error.
fn with_logs(c: &mut Cluster, body: impl FnOnce(&mut Cluster) -> Result<()>) -> Result<()> {
    let r = body(c);
    if let Err(e) = &r {
        eprintln!("FAILED: {e:#}\n{}", c.logs(40));
    }
    r
}

fn read_and_check(
    bootstrap: &str,
    topic: &str,
    acks: &[Ack],
    prefix: &str,
    label: &str,
    t0: Instant,
) -> Result<()> {
    let expected: HashSet<String> = acks.iter().map(|a| a.payload.clone()).collect();
    let read = read_all(bootstrap, topic, PARTITIONS, &expected, READ_TIMEOUT)?;
    check(acks, &read, prefix).assert_ok(label, t0.elapsed())?;
    records_numbered_from_0_without_gaps(&read, label)
}

/// As on Kafka: a new partition's records are at 0, 1, 2, ... and elections leave no gap;
/// Raft's own entries take no offset (decision 46).
fn records_numbered_from_0_without_gaps(read: &[Record], label: &str) -> Result<()> {
    for p in 0..PARTITIONS {
        let mut offsets: Vec<i64> = read.iter().filter(|r| r.partition == p).map(|r| r.offset).collect();
        offsets.sort_unstable();
        let gap = offsets.iter().enumerate().find(|(i, o)| **o != *i as i64);
        ensure!(
            gap.is_none(),
            "{label}: partition {p} read {} records, the record at position {} has offset {} (want 0, 1, 2, ...)",
            offsets.len(),
            gap.map_or(0, |g| g.0),
            gap.map_or(0, |g| *g.1)
        );
    }
    Ok(())
}

fn ensure_all_acked(log: &ProduceLog, what: &str) -> Result<()> {
    ensure!(
        log.errors.is_empty(),
        "{what}: {} failed deliveries, first: {:?}",
        log.errors.len(),
        log.errors.first()
    );
    ensure!(log.acks.len() == log.sent, "{what}: {} acks for {} sent", log.acks.len(), log.sent);
    Ok(())
}

#[test]
fn formation_produce_through_one_consume_through_another() -> Result<()> {
    let mut c = Cluster::start(3)?;
    with_logs(&mut c, |c| {
        for rep in 1..=3 {
            let t0 = Instant::now();
            let topic = unique("formation");
            let prefix = format!("f{rep}-");
            let log = produce(ProduceSpec::new(&c.bootstrap(1), &topic, &format!("{prefix}m"), 100))?;
            ensure_all_acked(&log, "produce via node 1")?;
            let consumer = group_consumer(&c.bootstrap(2), &topic, &unique("formation-group"))?;
            let mut eof = eof_state(PARTITIONS);
            let mut read =
                poll_n(&consumer, 100, READ_TIMEOUT, &mut eof).context("group consumer via node 2")?;
            read.extend(drain_to_eof(&consumer, READ_TIMEOUT, &mut eof)?);
            check(&log.acks, &read, &prefix).assert_ok(&format!("formation rep {rep}"), t0.elapsed())?;
        }
        Ok(())
    })
}

/// Last ack at or before `t` and first ack after it on partition `p`: the gap a client saw.
fn ack_gap(acks: &[Ack], p: i32, t: Instant) -> Option<Duration> {
    let before = acks.iter().filter(|a| a.partition == p && a.at <= t).map(|a| a.at).max()?;
    let after = acks.iter().filter(|a| a.partition == p && a.at > t).map(|a| a.at).min()?;
    Some(after - before)
}

/// Longest time between consecutive acks on partition `p` from `since` on.
fn max_ack_gap(acks: &[Ack], p: i32, since: Instant) -> Duration {
    let mut times: Vec<Instant> =
        acks.iter().filter(|a| a.partition == p && a.at >= since).map(|a| a.at).collect();
    times.sort();
    let mut prev = since;
    let mut max = Duration::ZERO;
    for t in times {
        max = max.max(t - prev);
        prev = t;
    }
    max
}

#[test]
fn leader_crash_during_produce() -> Result<()> {
    let mut c = Cluster::start(3)?;
    with_logs(&mut c, |c| {
        for rep in 1..=3 {
            let t0 = Instant::now();
            let topic = unique("leadercrash");
            let prefix = format!("lc{rep}-");
            let mut spec = ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 2000);
            spec.window = 20;
            spec.pace = Duration::from_millis(1);
            let run = ProducerRun::spawn(spec)?;
            wait_for("300 acks before the kill", Duration::from_secs(60), || {
                Ok((run.acks() >= 300).then_some(()))
            })?;
            let (leader, term) = c.leader_of(&topic, 0)?.context("no leader of p0 after 300 acks")?;
            let killed_at = Instant::now();
            c.kill(leader)?;
            let acks_at_kill = run.acks();
            let (new_leader, new_term) = wait_for(
                &format!("a new leader of {topic}-0 with a term above {term}"),
                CLUSTER_TIMEOUT,
                || Ok(c.leader_of(&topic, 0)?.filter(|(l, t)| *l != leader && *t > term)),
            )?;
            let elected_in = killed_at.elapsed();
            // Producing continues through the failover: wait for acks on p0 after the kill.
            wait_for(
                "acks on p0 after the kill (or the producer to finish)",
                Duration::from_secs(60),
                || {
                    let s = run.snapshot();
                    Ok((s.acks.iter().filter(|a| a.partition == 0 && a.at > killed_at).count() >= 50
                        || run.is_finished())
                    .then_some(()))
                },
            )?;
            c.restart(leader)?;
            let log = run.join()?;
            let gap = ack_gap(&log.acks, 0, killed_at);
            c.digests_equal(&topic, PARTITIONS, Duration::from_secs(60))?;
            println!(
                "[leader crash rep {rep}] killed node {leader} (p0 leader, term {term}) at {acks_at_kill} acks; new p0 leader node {new_leader} term {new_term} seen after {:.0} ms; client-observed p0 ack gap {}; delivery errors {}",
                elected_in.as_secs_f64() * 1000.0,
                gap.map(|g| format!("{:.0} ms", g.as_secs_f64() * 1000.0)).unwrap_or("n/a".into()),
                log.errors.len()
            );
            read_and_check(
                &c.bootstrap_all(),
                &topic,
                &log.acks,
                &prefix,
                &format!("leader crash rep {rep}"),
                t0,
            )?;
        }
        Ok(())
    })
}

#[test]
fn follower_crash_and_rejoin_then_consume_through_it() -> Result<()> {
    let mut c = Cluster::start(3)?;
    with_logs(&mut c, |c| {
        for rep in 1..=3 {
            let t0 = Instant::now();
            let topic = unique("followercrash");
            let prefix = format!("fc{rep}-");
            let mut log = produce(ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}a"), 100))?;
            ensure_all_acked(&log, "produce before the crash")?;
            let leaders = c.wait_all_leaders(&topic, PARTITIONS)?;
            let p0_leader = leaders[&0].0;
            let ctl = c.wait_controller(CLUSTER_TIMEOUT)?;
            let followers: Vec<i32> = c.ids().into_iter().filter(|id| *id != p0_leader).collect();
            let victim = followers.iter().copied().find(|id| *id != ctl).unwrap_or(followers[0]);
            c.kill(victim)?;
            let survivors: Vec<i32> = c.ids().into_iter().filter(|id| *id != victim).collect();
            let during =
                produce(ProduceSpec::new(&c.bootstrap_of(&survivors), &topic, &format!("{prefix}b"), 500))?;
            ensure_all_acked(&during, "produce while a follower is down")?;
            log.acks.extend(during.acks);
            c.restart(victim)?;
            let digests = c
                .digests_equal(&topic, PARTITIONS, Duration::from_secs(60))
                .with_context(|| format!("rejoined node {victim} catching up"))?;
            println!("[follower crash rep {rep}] killed follower node {victim} (p0 leader {p0_leader}, controller {ctl}); digests equal after rejoin: {}", serde_json::to_string(&digests)?);
            read_and_check(
                &c.bootstrap(victim),
                &topic,
                &log.acks,
                &prefix,
                &format!("follower crash rep {rep} (read via node {victim} only)"),
                t0,
            )?;
        }
        Ok(())
    })
}

#[test]
fn rolling_restart_with_sigterm_causes_no_client_error() -> Result<()> {
    let mut c = Cluster::start(3)?;
    with_logs(&mut c, |c| {
        for rep in 1..=2 {
            let t0 = Instant::now();
            let topic = unique("rolling");
            let prefix = format!("rr{rep}-");
            let mut spec = ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 30_000);
            spec.window = 20;
            spec.pace = Duration::from_millis(2);
            let run = ProducerRun::spawn(spec)?;
            wait_for("100 acks before the rolling restart", Duration::from_secs(60), || {
                Ok((run.acks() >= 100).then_some(()))
            })?;
            let mut steps = Vec::new();
            for id in c.ids() {
                let ts = Instant::now();
                c.stop(id).with_context(|| format!("graceful stop of node {id}"))?;
                let stopped_in = ts.elapsed();
                c.restart(id)?;
                c.wait_caught_up(id, Duration::from_secs(60))?;
                let base = run.acks();
                wait_for(
                    &format!("producer progress after node {id} rejoined"),
                    Duration::from_secs(60),
                    || Ok((run.acks() >= base + 50 || run.is_finished()).then_some(())),
                )?;
                let snap = run.snapshot();
                let gaps: Vec<String> = (0..PARTITIONS)
                    .map(|p| format!("p{p} {:.0} ms", max_ack_gap(&snap.acks, p, ts).as_secs_f64() * 1000.0))
                    .collect();
                let drain_limit_hit =
                    c.node(id).last_stderr.contains("connections still open after the drain limit");
                steps.push(format!(
                    "node {id}: SIGTERM->exit {:.0} ms (drain limit hit: {drain_limit_hit}), stop->caught up->progress {:.0} ms, max ack gap {}, errors so far {}",
                    stopped_in.as_secs_f64() * 1000.0,
                    ts.elapsed().as_secs_f64() * 1000.0,
                    gaps.join(" "),
                    snap.errors.len()
                ));
            }
            run.stop();
            let log = run.join()?;
            for st in &steps {
                println!("[rolling restart rep {rep}] {st}");
            }
            ensure!(
                log.errors.is_empty(),
                "rolling restart: the producer saw {} failed deliveries, first: {:?}",
                log.errors.len(),
                log.errors.first()
            );
            ensure!(log.acks.len() == log.sent, "{} acks for {} sent", log.acks.len(), log.sent);
            c.digests_equal(&topic, PARTITIONS, Duration::from_secs(60))?;
            read_and_check(
                &c.bootstrap_all(),
                &topic,
                &log.acks,
                &prefix,
                &format!("rolling restart rep {rep}"),
                t0,
            )?;
        }
        Ok(())
    })
}

#[test]
fn node_started_while_peers_down_joins_when_they_appear() -> Result<()> {
    for rep in 1..=3 {
        let t0 = Instant::now();
        let (mut c, mut reserved) = Cluster::configure(3, false)?;
        // Nodes 2 and 3 start seconds later: their ports stay held until then (released, one was
        // taken by another process in a loaded CI run and node 2 could not bind its Raft port).
        let later = reserved.split_off(3);
        drop(reserved);
        with_logs(&mut c, |c| {
            let ts = Instant::now();
            c.start_nodes(&[1]).context("node 1 alone must print its ready line")?;
            let alone_ready = ts.elapsed();
            // Stay alone until node 1 has tried to get elected (its controller term moved) or 5 s.
            let alone_view =
                wait_for("node 1 alone to campaign for the controller", Duration::from_secs(5), || {
                    let g = c.group_on(1, "controller")?.context("no controller group in /state")?;
                    Ok((g.term >= 2 && g.role != Role::Leader).then_some(g))
                })
                .or_else(|_| {
                    c.group_on(1, "controller").and_then(|g| g.context("no controller group in /state"))
                })?;
            let s = c.snapshot(1).context("/state of the lone node")?;
            let alone_ctl = s.raft.and_then(|r| r.controller_leader);
            ensure!(
                alone_ctl.is_none(),
                "node 1 alone claims a controller leader: {alone_ctl:?} (its controller group: {alone_view:?})"
            );
            ensure!(
                alone_view.role != Role::Leader,
                "node 1 alone became controller Leader without a quorum: {alone_view:?}"
            );
            let alone_for = ts.elapsed();
            drop(later);
            c.start_nodes(&[2, 3])?;
            let ctl = c.wait_controller(CLUSTER_TIMEOUT)?;
            let ctl_in = ts.elapsed() - alone_for;
            let topic = unique("latejoin");
            let prefix = format!("lj{rep}-");
            let tp = Instant::now();
            let log = produce(ProduceSpec::new(&c.bootstrap(1), &topic, &format!("{prefix}m"), 100))?;
            ensure_all_acked(&log, "produce via node 1")?;
            let produce_in = tp.elapsed();
            let consumer = group_consumer(&c.bootstrap(3), &topic, &unique("latejoin-group"))?;
            let mut eof = eof_state(PARTITIONS);
            let mut read = poll_n(&consumer, 100, READ_TIMEOUT, &mut eof)?;
            let consume_in = tp.elapsed() - produce_in;
            read.extend(drain_to_eof(&consumer, READ_TIMEOUT, &mut eof)?);
            println!("[late join rep {rep}] node 1 alone ready in {:.0} ms; alone for {:.0} ms with controller role {:?} term {} (controller_leader {alone_ctl:?}); controller leader node {ctl} agreed {:.0} ms after peers started; produce 100 took {:.0} ms, group consume {:.0} ms", alone_ready.as_secs_f64() * 1000.0, alone_for.as_secs_f64() * 1000.0, alone_view.role, alone_view.term, ctl_in.as_secs_f64() * 1000.0, produce_in.as_secs_f64() * 1000.0, consume_in.as_secs_f64() * 1000.0);
            check(&log.acks, &read, &prefix).assert_ok(&format!("late join rep {rep}"), t0.elapsed())
        })?;
    }
    Ok(())
}

#[test]
fn partitioned_away_leader_cannot_commit_and_steps_down() -> Result<()> {
    let mut c = Cluster::start_with_links(3)?;
    with_logs(&mut c, |c| {
        let mut step_down_failures = Vec::new();
        for rep in 1..=3 {
            let t0 = Instant::now();
            let topic = unique("partitioned");
            let prefix = format!("pl{rep}-");
            let mut log = produce(ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}a"), 50))?;
            ensure_all_acked(&log, "produce before the partition")?;
            let leaders = c.wait_all_leaders(&topic, PARTITIONS)?;
            let (l, term) = leaders[&0];
            let others: Vec<i32> = c.ids().into_iter().filter(|id| *id != l).collect();
            let cut_at = Instant::now();
            c.links.as_ref().expect("links").isolate(l, true);

            // A produce sent straight to L for p0 (in the background, while we watch the elections)
            // must not be acknowledged.
            let mut probe = ProduceSpec::new(&c.bootstrap(l), &topic, &format!("{prefix}probe"), 1)
                .set("enable.idempotence", "false")
                .set("message.timeout.ms", "3000")
                .set("request.timeout.ms", "2500");
            probe.partition = Some(0);
            let probe_run = ProducerRun::spawn(probe)?;

            // The majority elects a new p0 leader with a higher term.
            let group = format!("{topic}-0");
            let (nl, nterm) = wait_for(
                &format!("nodes {others:?} to elect a new leader of {group} above term {term}"),
                CLUSTER_TIMEOUT,
                || {
                    for &id in &others {
                        if let Some(g) = c.group_on(id, &group)? {
                            let t = g.term;
                            if g.role == Role::Leader && t > term {
                                let agreed = others.iter().all(|o| {
                                    c.group_on(*o, &group)
                                        .ok()
                                        .flatten()
                                        .is_some_and(|x| x.leader == Some(id as u64))
                                });
                                if agreed {
                                    return Ok(Some((id, t)));
                                }
                            }
                        }
                    }
                    Ok(None)
                },
            )?;
            let elected_in = cut_at.elapsed();

            // L must stop considering itself the leader of p0.
            let stepped = wait_for(
                &format!("node {l} to stop being Leader of {group} while isolated"),
                Duration::from_secs(10),
                || {
                    let g = c.group_on(l, &group)?.context("group missing")?;
                    Ok((g.role != Role::Leader).then_some(g))
                },
            );
            let l_view = c.group_on(l, &group)?;
            let probe_log = probe_run.join()?;
            // Only Raft links are cut: the probe's client may learn the majority's new leader
            // from L's broker list and deliver there, which is correct. What must never happen is
            // an acknowledgement that is not durable: an acked probe must be in the log after the
            // heal (checked below), an unacknowledged one must not be.
            let probe_acked = !probe_log.acks.is_empty();
            let probe_err = probe_log.errors.first().map(|e| e.1.clone()).unwrap_or_default();
            match &stepped {
                Ok(g) => println!("[partitioned rep {rep}] isolated node {l} stepped down from {group} after {:.0} ms: role {:?} term {}", cut_at.elapsed().as_secs_f64() * 1000.0, g.role, g.term),
                Err(e) => {
                    let msg = format!("rep {rep}: isolated node {l} still reports role Leader of {group} {:.1} s after the cut (majority elected node {nl} at term {nterm}); its view: {}; {e:#}", cut_at.elapsed().as_secs_f64(), serde_json::to_string(&l_view)?);
                    println!("[partitioned rep {rep}] STEP-DOWN FAILURE: {msg}");
                    step_down_failures.push(msg);
                }
            }

            // Heal: L rejoins as a follower of the new leader and the replicas converge.
            c.links.as_ref().expect("links").isolate(l, false);
            wait_for(
                &format!("node {l} to follow the new leader of {group} after the heal"),
                CLUSTER_TIMEOUT,
                || {
                    let g = c.group_on(l, &group)?.context("group missing")?;
                    Ok((g.role == Role::Follower
                        && g.term >= nterm
                        && g.leader.is_some_and(|x| x as i32 != l))
                    .then_some(()))
                },
            )?;
            c.wait_controller(CLUSTER_TIMEOUT)?;
            let after = produce(ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}c"), 50))?;
            ensure_all_acked(&after, "produce after the heal")?;
            log.acks.extend(after.acks);
            c.digests_equal(&topic, PARTITIONS, Duration::from_secs(60))?;
            let expected: HashSet<String> = log.acked_payloads();
            let read = read_all(&c.bootstrap_all(), &topic, PARTITIONS, &expected, READ_TIMEOUT)?;
            let probe_stored = read.iter().any(|r| r.payload.starts_with(&format!("{prefix}probe")));
            println!(
                "[partitioned rep {rep}] isolated p0 leader node {l} (term {term}); probe acked {probe_acked} (error {probe_err:?}); majority elected node {nl} term {nterm} after {:.0} ms; probe value stored after heal: {probe_stored}",
                elected_in.as_secs_f64() * 1000.0
            );
            if probe_acked {
                ensure!(probe_stored, "the probe was acknowledged (by the majority's leader) but is not in the log after the heal");
            } else {
                ensure!(!probe_stored, "the probe sent to the isolated leader node {l} (never acknowledged, never replicated) is in the log after the heal");
            }
            check(&log.acks, &read, &prefix)
                .assert_ok(&format!("partitioned leader rep {rep}"), t0.elapsed())?;
        }
        if !step_down_failures.is_empty() {
            bail!("an isolated leader kept the Leader role:\n{}", step_down_failures.join("\n"));
        }
        Ok(())
    })
}

#[test]
fn consumer_group_offsets_survive_controller_leader_loss() -> Result<()> {
    let mut c = Cluster::start(3)?;
    with_logs(&mut c, |c| {
        for rep in 1..=3 {
            let t0 = Instant::now();
            let topic = unique("groupoffsets");
            let group = unique("offsets-group");
            let prefix = format!("go{rep}-");
            let log = produce(ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 100))?;
            ensure_all_acked(&log, "produce")?;
            let first = {
                let consumer = group_consumer(&c.bootstrap_all(), &topic, &group)?;
                let first = poll_n(&consumer, 50, READ_TIMEOUT, &mut eof_state(PARTITIONS))
                    .context("first group member")?;
                let committed = commit_consumed(&consumer, &topic, &first)?;
                println!("[group offsets rep {rep}] consumed 50, committed {committed:?}");
                first
            }; // dropping the consumer closes it (leaves the group)
            let ctl = c.wait_controller(CLUSTER_TIMEOUT)?;
            c.kill(ctl)?;
            let new_ctl = c.wait_controller(CLUSTER_TIMEOUT)?;
            ensure!(new_ctl != ctl, "controller leader still node {ctl} after it was killed");
            let survivor = c.running()[0];
            let consumer = group_consumer(&c.bootstrap(survivor), &topic, &group)?;
            let mut eof = eof_state(PARTITIONS);
            let mut rest = poll_n(&consumer, 50, READ_TIMEOUT, &mut eof)
                .context("second group member after the controller leader loss")?;
            rest.extend(drain_to_eof(&consumer, READ_TIMEOUT, &mut eof)?);
            drop(consumer);
            let first_set: HashSet<&str> = first.iter().map(|r| r.payload.as_str()).collect();
            let reread: Vec<&str> = rest
                .iter()
                .filter(|r| first_set.contains(r.payload.as_str()))
                .map(|r| r.payload.as_str())
                .collect();
            println!("[group offsets rep {rep}] killed controller leader node {ctl}, new controller node {new_ctl}; second member (bootstrap node {survivor}) read {} (re-read of the first 50: {})", rest.len(), reread.len());
            ensure!(
                reread.is_empty(),
                "the second member re-read {} committed messages, e.g. {:?}",
                reread.len(),
                &reread[..reread.len().min(5)]
            );
            ensure!(
                rest.len() == 50,
                "the second member read {} messages, expected exactly the remaining 50",
                rest.len()
            );
            let mut all = first.clone();
            all.extend(rest);
            check(&log.acks, &all, &prefix).assert_ok(&format!("group offsets rep {rep}"), t0.elapsed())?;
            c.restart(ctl)?;
            c.wait_controller(CLUSTER_TIMEOUT)?;
        }
        Ok(())
    })
}

/// A node that returns takes back the partitions it is preferred leader of even while a producer
/// keeps every partition busy (they are never quiet, so the hand-off comes after the rebalancer's
/// busy limit, 15 s), and nothing acknowledged is lost or duplicated across the moves.
#[test]
fn returning_node_takes_back_its_preferred_leaders_under_load() -> Result<()> {
    let mut c = Cluster::start(3)?;
    with_logs(&mut c, |c| {
        let t0 = Instant::now();
        let topic = unique("preferred");
        let prefix = "pl-";
        let mut spec = ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 1_000_000);
        spec.window = 10;
        spec.pace = Duration::from_millis(5);
        let run = ProducerRun::spawn(spec)?;
        wait_for("100 acks", Duration::from_secs(60), || Ok((run.acks() >= 100).then_some(())))?;
        c.wait_all_leaders(&topic, PARTITIONS)?;
        let meta = c.snapshot(1)?.raft.and_then(|r| r.metadata).context("node 1 without metadata")?;
        let replicas = meta.topics.get(&topic).map(|t| t.replicas.clone()).unwrap_or_default();
        let preferred = |p: i32| replicas.get(p as usize).and_then(|r| r.first()).map(|n| *n as i32);
        let victim = preferred(0).context("no replica assignment for partition 0")?;
        let mine: Vec<i32> = (0..PARTITIONS).filter(|p| preferred(*p) == Some(victim)).collect();
        c.kill(victim)?;
        wait_for(&format!("partition 0 led by a node other than {victim}"), CLUSTER_TIMEOUT, || {
            Ok(c.leader_of(&topic, 0)?.filter(|(l, _)| *l != victim))
        })?;
        c.restart(victim)?;
        c.wait_caught_up(victim, Duration::from_secs(60))?;
        let back = Instant::now();
        wait_for(
            &format!("node {victim} to lead its preferred partitions {mine:?} again while the producer runs"),
            Duration::from_secs(60),
            || {
                for p in &mine {
                    if c.leader_of(&topic, *p)?.map(|(l, _)| l) != Some(victim) {
                        return Ok(None);
                    }
                }
                Ok(Some(()))
            },
        )?;
        let acks_before = run.acks();
        wait_for("producer progress after the hand-back", Duration::from_secs(30), || {
            Ok((run.acks() >= acks_before + 50).then_some(()))
        })?;
        run.stop();
        let log = run.join()?;
        println!(
            "[preferred leader] node {victim} led {mine:?} again {:.1} s after it caught up; {} acked, {} delivery errors",
            back.elapsed().as_secs_f64(),
            log.acks.len(),
            log.errors.len()
        );
        read_and_check(&c.bootstrap_all(), &topic, &log.acks, prefix, "preferred leader under load", t0)
    })
}
