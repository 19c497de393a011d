//! Consumer groups: exactly-once reading of what was produced, and committed offsets that
//! survive a restart.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::TopicPartitionList;

use crate::clients::{create_topic, group_consumer, producer, receive, send_one, Record, CLIENT_TIMEOUT};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};

const CYCLES: usize = 10;
const MESSAGES_PER_CYCLE: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_messages_three_partitions_ten_cycles() -> Result<()> {
    let dir = data_dir();
    let broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let mut failures = Vec::new();
    for cycle in 0..CYCLES {
        let started = Instant::now();
        match one_cycle(&broker, cycle).await {
            Ok(()) => println!("cycle {cycle}: ok in {:?}", started.elapsed()),
            Err(e) => {
                println!("cycle {cycle}: FAILED: {e:#}");
                failures.push(format!("cycle {cycle}: {e:#}"));
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "{}/{CYCLES} cycles failed:\n{}\nbroker stderr:\n{}",
        failures.len(),
        failures.join("\n"),
        broker.stderr()
    );
    Ok(())
}

async fn one_cycle(broker: &Broker, cycle: usize) -> Result<()> {
    let topic = unique(&format!("cycle{cycle}"));
    let group = unique(&format!("group{cycle}"));
    create_topic(&broker.bootstrap(), &topic, 3).await?;
    let p = producer(&broker.bootstrap(), &[("acks", "all"), ("enable.idempotence", "true")])?;
    let payloads: Vec<String> =
        (0..MESSAGES_PER_CYCLE).map(|i| format!("c{cycle}-m{i:04}-{topic}")).collect();
    // join_all polls the sends in order on its first poll, so enqueue order == index order.
    let sends = payloads.iter().enumerate().map(|(i, payload)| {
        let key = format!("key-{}", i % 37);
        let (p, topic) = (&p, &topic);
        async move {
            let d = p.send(FutureRecord::to(topic).key(&key).payload(payload), CLIENT_TIMEOUT).await;
            d.map_err(|(e, _)| anyhow::anyhow!("message {i} not acked: {e}"))
        }
    });
    let acks = futures::future::join_all(sends).await.into_iter().collect::<Result<Vec<_>>>()?;

    let consumer = group_consumer(&broker.bootstrap(), &topic, &group)?;
    let got = receive(&consumer, MESSAGES_PER_CYCLE, Duration::from_secs(60)).await?;
    drop(consumer);

    let mut seen = HashSet::new();
    for r in &got {
        ensure!(seen.insert(r.payload.clone()), "payload {} received twice", r.payload);
    }
    let missing: Vec<&String> = payloads.iter().filter(|p| !seen.contains(*p)).take(5).collect();
    ensure!(missing.is_empty(), "payloads never received (first 5): {missing:?}");

    // Per partition: offsets strictly increase, payloads arrive in produce order, at the acked offset.
    let index_of: BTreeMap<&str, usize> = payloads.iter().enumerate().map(|(i, p)| (p.as_str(), i)).collect();
    let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for r in &got {
        by_partition.entry(r.partition).or_default().push(r);
    }
    for (partition, records) in &by_partition {
        for w in records.windows(2) {
            ensure!(
                w[0].offset < w[1].offset,
                "p{partition}: offset {} followed by {}",
                w[0].offset,
                w[1].offset
            );
            let (a, b) = (index_of[w[0].payload.as_str()], index_of[w[1].payload.as_str()]);
            ensure!(a < b, "p{partition}: message {a} read after message {b}, produced the other way round");
        }
        for r in records {
            let ack = &acks[index_of[r.payload.as_str()]];
            ensure!(
                ack.partition == r.partition && ack.offset == r.offset,
                "{} acked at p{}@{} but read at p{}@{}",
                r.payload,
                ack.partition,
                ack.offset,
                r.partition,
                r.offset
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_restart() -> Result<()> {
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let topic = unique("commits");
    let group = unique("resume");
    create_topic(&broker.bootstrap(), &topic, 3).await?;
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let mut all = HashSet::new();
    for i in 0..60 {
        let ack = send_one(&p, &topic, &format!("k{i}"), &format!("commit-{i:02}")).await?;
        all.insert(ack.payload);
    }
    drop(p);

    let first = {
        let consumer = group_consumer(&broker.bootstrap(), &topic, &group)?;
        let first = receive(&consumer, 30, Duration::from_secs(60)).await?;
        // Commit exactly what was processed: per partition, one past the last offset read.
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        for r in &first {
            let n = next.entry(r.partition).or_insert(0);
            *n = (*n).max(r.offset + 1);
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in &next {
            tpl.add_partition_offset(&topic, *partition, rdkafka::Offset::Offset(*offset))?;
        }
        consumer.commit(&tpl, CommitMode::Sync).context("synchronous commit")?;
        let committed = consumer.committed(CLIENT_TIMEOUT).context("reading the commit back")?;
        println!("committed before restart: {committed:?}");
        first
    };
    let first_payloads: HashSet<String> = first.iter().map(|r| r.payload.clone()).collect();
    ensure!(first_payloads.len() == 30, "first consumer read duplicates: {first:?}");

    broker.stop_gracefully()?;
    broker.restart()?;

    let consumer = group_consumer(&broker.bootstrap(), &topic, &group)?;
    let rest = receive(&consumer, 30, Duration::from_secs(60)).await?;
    let reread: Vec<&String> =
        rest.iter().map(|r| &r.payload).filter(|p| first_payloads.contains(*p)).collect();
    if !reread.is_empty() {
        bail!("after restart the group re-read {} already committed messages: {reread:?}\ncommitted positions came back wrong", reread.len());
    }
    let rest_payloads: HashSet<String> = rest.iter().map(|r| r.payload.clone()).collect();
    let expected: HashSet<String> = all.difference(&first_payloads).cloned().collect();
    ensure!(
        rest_payloads == expected,
        "after restart read {rest_payloads:?}, expected the other 30: {expected:?}"
    );
    Ok(())
}
