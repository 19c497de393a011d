//! Many partitions on three nodes: every group gets a leader, leaders are spread, a node's death
//! re-leads all of its groups at term +1, and a real client loses and duplicates nothing.
//!
//! CI runs a few hundred partitions (debug build, 2 cores); `clusterlab bench --scale` runs the
//! full counts.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use broker::cluster::RaftSummary;
use broker::telemetry::wire::{GroupState, Role};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::checker::check;
use crate::clients::{read_all, ProduceSpec, ProducerRun};
use crate::harness::{unique, wait_for, Cluster};

const PARTITIONS: i32 = 300;
const LEAD_TIMEOUT: Duration = Duration::from_secs(90);

pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    create_topic_with(bootstrap, topic, partitions, 3)
}

/// Creates `topic` through the admin API with `replication_factor` replicas per partition.
pub fn create_topic_with(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication_factor: i32,
) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication_factor));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for r in rt.block_on(admin.create_topics([&new], &opts))? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

/// Grows `topic` to `total` partitions through the admin API (CreatePartitions).
pub fn create_partitions(bootstrap: &str, topic: &str, total: usize) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("admin client")?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for r in rt.block_on(admin.create_partitions(&[NewPartitions::new(topic, total)], &opts))? {
        r.map_err(|(t, e)| anyhow::anyhow!("growing {t} to {total} partitions: {e}"))?;
    }
    Ok(())
}

/// Partitions of `topic` each running node leads (confirmed), from `/raft/summary`.
fn leading(c: &mut Cluster, topic: &str) -> Result<BTreeMap<i32, u64>> {
    let mut out = BTreeMap::new();
    for id in c.running() {
        let s: RaftSummary = c.get(id, "/raft/summary")?;
        out.insert(id, s.topics.get(topic).map_or(0, |t| t.leading as u64));
    }
    Ok(out)
}

fn wait_all_led(c: &mut Cluster, topic: &str, what: &str) -> Result<BTreeMap<i32, u64>> {
    let led = wait_for(what, LEAD_TIMEOUT, || {
        let l = leading(c, topic)?;
        Ok((l.values().sum::<u64>() == PARTITIONS as u64).then_some(l))
    });
    if led.is_err() {
        for id in c.running() {
            let s: Result<RaftSummary> = c.get(id, "/raft/summary");
            eprintln!("node {id} /raft/summary: {s:?}");
        }
    }
    led
}

/// group -> term, for the groups `id` leads.
fn led_terms(c: &Cluster, id: i32, topic: &str) -> Result<BTreeMap<String, u64>> {
    let groups: Vec<GroupState> = c.get(id, &format!("/raft/groups?topic={topic}"))?;
    Ok(groups.into_iter().filter(|g| g.role == Role::Leader).map(|g| (g.group.to_string(), g.term)).collect())
}

#[test]
fn hundreds_of_partitions_are_led_spread_and_re_led_after_a_node_dies() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let topic = unique("scale");
    let t0 = Instant::now();
    create_topic(&c.bootstrap_all(), &topic, PARTITIONS)?;
    let spread = wait_all_led(&mut c, &topic, "every partition led after creation")?;
    println!(
        "[scale] {PARTITIONS} partitions led in {:.1} s, per node {spread:?}",
        t0.elapsed().as_secs_f64()
    );
    let fair = PARTITIONS as u64 / 3;
    ensure!(
        spread.values().all(|n| n.abs_diff(fair) <= fair / 5),
        "leaders are not spread over the nodes: {spread:?} (each should lead about {fair})"
    );

    // A producer spread over every partition (distinct keys), running across the failure.
    let prefix = "sc-";
    let mut spec = ProduceSpec::new(&c.bootstrap_all(), &topic, &format!("{prefix}m"), 6_000);
    spec.keys = 100_000;
    spec.window = 200;
    let run = ProducerRun::spawn(spec)?;
    wait_for("1,000 acks before the kill", LEAD_TIMEOUT, || Ok((run.acks() >= 1_000).then_some(())))?;

    let (&victim, _) = spread.iter().max_by_key(|(_, n)| **n).context("no node leads anything")?;
    let before = led_terms(&c, victim, &topic)?;
    let killed_at = Instant::now();
    c.kill(victim)?;
    wait_all_led(&mut c, &topic, "every partition led again after the kill")?;
    let relead = killed_at.elapsed();
    let mut after: BTreeMap<String, u64> = BTreeMap::new();
    for id in c.running() {
        after.extend(led_terms(&c, id, &topic)?);
    }
    let jumps: Vec<u64> = before.iter().map(|(g, t)| after.get(g).map_or(u64::MAX, |n| n - t)).collect();
    let plus_one = jumps.iter().filter(|j| **j == 1).count();
    println!(
        "[scale] node {victim} led {} groups; all re-led in {:.0} ms; term +1 for {plus_one}, max jump {:?}",
        before.len(),
        relead.as_secs_f64() * 1000.0,
        jumps.iter().max()
    );
    ensure!(
        plus_one * 10 >= before.len() * 9,
        "a leader storm should cost one term per group: only {plus_one} of {} moved by exactly 1 ({:?})",
        before.len(),
        jumps
    );

    let log = run.join()?;
    ensure!(log.errors.is_empty(), "{} failed deliveries, first: {:?}", log.errors.len(), log.errors.first());
    ensure!(log.acks.len() == log.sent, "{} acks for {} sent", log.acks.len(), log.sent);
    c.restart(victim)?;
    let expected: HashSet<String> = log.acks.iter().map(|a| a.payload.clone()).collect();
    let read = read_all(&c.bootstrap_all(), &topic, PARTITIONS, &expected, Duration::from_secs(120))?;
    let partitions_used: HashSet<i32> = read.iter().map(|r| r.partition).collect();
    ensure!(
        partitions_used.len() as i32 > PARTITIONS / 2,
        "the workload reached only {} partitions",
        partitions_used.len()
    );
    check(&log.acks, &read, prefix).assert_ok("scale", t0.elapsed())?;
    // The restarted node learns every leader (quiet groups included) without an election.
    wait_for("the restarted node to see a live leader for every partition", LEAD_TIMEOUT, || {
        let s: RaftSummary = c.get(victim, "/raft/summary")?;
        let t = s.topics.get(&topic);
        Ok(t.is_some_and(|t| t.hosted == PARTITIONS as usize && t.leaderless == 0).then_some(()))
    })?;
    Ok(())
}
