//! An idempotent producer whose connections are cut mid-stream retries, and the broker's sequence
//! checks keep every acknowledged message exactly once.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::producer::FutureRecord;

use crate::clients::{create_topic, producer, read_all_partitions, Ack};
use crate::fabric::TestFabric;
use crate::harness::{data_dir, unique, Broker, BrokerOpts};
use labs::fabric::Endpoint;

const MESSAGES: usize = 2000;
const SEVER_EVERY_ACKS: usize = 150;
const SEVERS: usize = 5;
/// Messages outstanding at once: small enough that severs land while requests are in flight.
const WINDOW: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producer_retries_after_dropped_connections_make_no_duplicates() -> Result<()> {
    let dir = data_dir();
    let (fabric, kafka) = TestFabric::for_one_broker()?;
    let proxy = fabric.client_proxy(1)?;
    let mut opts = BrokerOpts::new(dir.path()).advertised(proxy);
    opts.kafka_port = kafka.port();
    let _broker = tokio::task::block_in_place(|| Broker::start(opts))?;
    let bootstrap = proxy.to_string();
    let topic = unique("idempotent");
    create_topic(&bootstrap, &topic, 3).await?;

    let p = producer(
        &bootstrap,
        &[
            ("enable.idempotence", "true"),
            ("acks", "all"),
            ("retries", "2147483647"),
            ("message.timeout.ms", "30000"),
            ("retry.backoff.ms", "20"),
            ("reconnect.backoff.ms", "10"),
            ("batch.num.messages", "25"),
        ],
    )?;
    let send = |i: usize| {
        let (p, topic) = (&p, &topic);
        async move {
            let payload = format!("idem-{i:05}");
            let r = p
                .send(
                    FutureRecord::to(topic).key(&format!("k{}", i % 11)).payload(&payload),
                    Duration::from_secs(30),
                )
                .await;
            (payload, r.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e))
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let (mut next, mut acks, mut failures, mut severed) = (0, Vec::<Ack>::new(), Vec::new(), Vec::new());
    loop {
        while next < MESSAGES && in_flight.len() < WINDOW {
            in_flight.push(send(next));
            next += 1;
        }
        let Some((payload, result)) =
            tokio::time::timeout(Duration::from_secs(60), in_flight.next()).await.map_err(|_| {
                anyhow!("no delivery report within 60 s ({} acks, {} severs)", acks.len(), severed.len())
            })?
        else {
            break;
        };
        match result {
            Ok((partition, offset)) => acks.push(Ack { partition, offset, payload }),
            Err(e) => failures.push(format!("{payload}: {e}")),
        }
        if severed.len() < SEVERS && acks.len() >= SEVER_EVERY_ACKS * (severed.len() + 1) {
            severed.push(fabric.sever_dialed(Endpoint::Client, Endpoint::Node(1))?);
        }
    }
    drop(in_flight);
    drop(p);
    println!(
        "acked {}/{MESSAGES}, failed {}, connections cut per sever: {severed:?}",
        acks.len(),
        failures.len()
    );
    ensure!(severed.len() == SEVERS, "only {} severs happened", severed.len());
    ensure!(severed.iter().all(|&n| n > 0), "a sever found no open connection to cut: {severed:?}");
    ensure!(
        failures.is_empty(),
        "{} sends failed despite unlimited retries, first: {:?}",
        failures.len(),
        failures.first()
    );

    let read =
        tokio::task::block_in_place(|| read_all_partitions(&bootstrap, &topic, Duration::from_secs(60)))?;
    let mut copies: HashMap<&str, Vec<(i32, i64)>> = HashMap::new();
    for r in read.values().flatten() {
        copies.entry(r.payload.as_str()).or_default().push((r.partition, r.offset));
    }
    let duplicated: Vec<String> =
        copies.iter().filter(|(_, at)| at.len() > 1).map(|(p, at)| format!("{p} at {at:?}")).collect();
    ensure!(
        duplicated.is_empty(),
        "{} payloads stored more than once (idempotence broken), e.g. {:?}",
        duplicated.len(),
        &duplicated[..duplicated.len().min(5)]
    );
    for a in &acks {
        let at = copies.get(a.payload.as_str()).cloned().unwrap_or_default();
        ensure!(
            at == vec![(a.partition, a.offset)],
            "{} acked at p{}@{} but stored at {at:?}",
            a.payload,
            a.partition,
            a.offset
        );
    }
    Ok(())
}
