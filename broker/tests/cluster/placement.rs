//! Fewer replicas than nodes: four nodes, RF 3, so every partition has a node that hosts no
//! replica of it. Every node must still name every partition's leader in its Metadata answer
//! (a client may ask any of them), before and after a leader dies, and a real client bootstrapped
//! at one node writes and reads every partition. A topic gets the replication factor it asks for,
//! on the nodes that are up, and so do partitions added later.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::checker::check;
use crate::clients::{read_all, ProduceSpec, ProducerRun};
use crate::harness::{unique, wait_for, Cluster, CLUSTER_TIMEOUT};
use crate::scale::{create_partitions, create_topic, create_topic_with};

const NODES: usize = 4;
const PARTITIONS: i32 = 8;

/// partition -> (leader, replicas) in the Metadata answer of node `id` alone.
fn metadata_of(c: &Cluster, id: i32, topic: &str) -> Result<BTreeMap<i32, (i32, Vec<i32>)>> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap(id))
        .set("group.id", "placement-metadata")
        .create()
        .context("metadata client")?;
    let md =
        client.fetch_metadata(Some(topic), Duration::from_secs(5)).with_context(|| format!("node {id}"))?;
    let t = md.topics().first().context("no topic in the answer")?;
    Ok(t.partitions().iter().map(|p| (p.id(), (p.leader(), p.replicas().to_vec()))).collect())
}

/// Waits until every running node's Metadata names, for every partition, the leader the
/// partition's own replicas report; returns partition -> leader.
fn wait_every_node_names_the_leaders(
    c: &mut Cluster,
    topic: &str,
    partitions: i32,
    what: &str,
) -> Result<BTreeMap<i32, i32>> {
    wait_for(what, CLUSTER_TIMEOUT, || {
        let running = c.running();
        let mut leaders = BTreeMap::new();
        for p in 0..partitions {
            let Some((l, _)) = c.leader_of(topic, p)? else { return Ok(None) };
            if !running.contains(&l) {
                return Ok(None);
            }
            leaders.insert(p, l);
        }
        for id in &running {
            let md = metadata_of(c, *id, topic)?;
            if md.len() != partitions as usize || md.iter().any(|(p, (l, _))| leaders.get(p) != Some(l)) {
                return Ok(None);
            }
        }
        Ok(Some(leaders))
    })
}

#[test]
fn every_node_names_the_leaders_of_partitions_it_does_not_host() -> Result<()> {
    let mut c = Cluster::start(NODES)?;
    let topic = unique("placement");
    let t0 = Instant::now();
    create_topic(&c.bootstrap_all(), &topic, PARTITIONS)?;
    let leaders =
        wait_every_node_names_the_leaders(&mut c, &topic, PARTITIONS, "every node naming every leader")?;
    println!(
        "[placement] every node names every leader {:.0} ms after creation",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let replicas: BTreeMap<i32, Vec<i32>> =
        metadata_of(&c, 1, &topic)?.into_iter().map(|(p, (_, r))| (p, r)).collect();
    ensure!(
        replicas.values().all(|r| r.len() == 3),
        "RF 3 of {NODES} nodes should give three replicas each: {replicas:?}"
    );

    // Kill the leader of a partition that node `asker` does not host; `asker` must name its
    // successor, which it can only learn from the successor itself.
    let (p, victim, asker) = replicas
        .iter()
        .find_map(|(p, r)| {
            let leader = leaders[p];
            let asker = c.ids().into_iter().find(|n| !r.contains(n))?;
            Some((*p, leader, asker))
        })
        .context("no partition with a node outside its replicas")?;
    let killed_at = Instant::now();
    c.kill(victim)?;
    let after = wait_every_node_names_the_leaders(
        &mut c,
        &topic,
        PARTITIONS,
        "every node naming the leaders after the kill",
    )?;
    ensure!(after[&p] != victim, "partition {p} still led by the killed node {victim}");
    println!(
        "[placement] node {victim} killed; node {asker} (no replica of partition {p}) names its new leader {} \
         after {:.0} ms",
        after[&p],
        killed_at.elapsed().as_secs_f64() * 1e3
    );

    // A client that knows only `asker` writes to every partition and reads it all back.
    let prefix = "pl-";
    let mut spec = ProduceSpec::new(&c.bootstrap(asker), &topic, &format!("{prefix}m"), 2_000);
    spec.keys = 10_000;
    spec.window = 100;
    let log = ProducerRun::spawn(spec)?.join()?;
    ensure!(log.errors.is_empty(), "{} failed deliveries, first: {:?}", log.errors.len(), log.errors.first());
    ensure!(log.acks.len() == log.sent, "{} acks for {} sent", log.acks.len(), log.sent);
    let used: HashSet<i32> = log.acks.iter().map(|a| a.partition).collect();
    ensure!(used.len() as i32 == PARTITIONS, "the workload reached only partitions {used:?}");
    let expected: HashSet<String> = log.acks.iter().map(|a| a.payload.clone()).collect();
    let read = read_all(&c.bootstrap(asker), &topic, PARTITIONS, &expected, Duration::from_secs(60))?;
    check(&log.acks, &read, prefix).assert_ok("placement", t0.elapsed())?;

    // The replication factor a client asks for is the one it gets: one replica, each a group
    // of a single voter, placed on the nodes that are up (the victim is still down), and every
    // node names every leader.
    let single = unique("placement-rf1");
    create_topic_with(&c.bootstrap(asker), &single, 4, 1)?;
    wait_every_node_names_the_leaders(&mut c, &single, 4, "every node naming the RF 1 leaders")?;
    let replicas: Vec<Vec<i32>> = metadata_of(&c, asker, &single)?.into_values().map(|(_, r)| r).collect();
    ensure!(replicas.iter().all(|r| r.len() == 1), "asked for one replica per partition, got {replicas:?}");
    ensure!(
        replicas.iter().all(|r| !r.contains(&victim)),
        "a replica was placed on node {victim}, which is down: {replicas:?}"
    );
    // Partitions added later go to the nodes that are up as well.
    create_partitions(&c.bootstrap(asker), &single, 7)?;
    wait_every_node_names_the_leaders(&mut c, &single, 7, "every node naming the added RF 1 leaders")?;
    let grown = metadata_of(&c, asker, &single)?;
    ensure!(
        grown.values().all(|(_, r)| r.len() == 1 && !r.contains(&victim)),
        "added partitions: one replica each, none on node {victim} (down), got {grown:?}"
    );
    Ok(())
}
