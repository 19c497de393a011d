//! `POST /faults/power-cut`: the node truncates its files to the last fsync and aborts. After the
//! restart it must say what was lost, and lose nothing that fsync=always acknowledged.

use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};

use crate::checker;
use crate::clients::{create_topic, producer, read_all_partitions, send_one, Ack};
use crate::endpoint;
use crate::harness::{data_dir, unique, Broker, BrokerOpts, EXIT_TIMEOUT};

const MESSAGES: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_with_fsync_never_reports_the_loss() -> Result<()> {
    let (_dir, broker, acks, lost) = produce_then_cut("never").await?;
    // Nothing was ever fsynced, so every acknowledged record is gone and must be counted.
    ensure!(
        lost == acks.len() as i64,
        "fsync=never: last_power_cut reports {lost} lost records, {} were acked and none flushed",
        acks.len()
    );
    still_serves(&broker).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_cut_with_fsync_always_loses_nothing_acked() -> Result<()> {
    let (_dir, broker, acks, lost) = produce_then_cut("always").await?;
    ensure!(lost == 0, "fsync=always: last_power_cut reports {lost} lost records");
    let read = read_all_partitions(&broker.bootstrap(), &acks_topic(&acks)?, Duration::from_secs(60))?;
    // Every acked record at its partition and offset (lost or elsewhere fails the test).
    checker::check(&acks, &[], read.values().flatten()).assert_ok("power cut with fsync=always")?;
    still_serves(&broker).await
}

/// The test topic is encoded in each payload so the fsync=always check can read it back.
fn acks_topic(acks: &[Ack]) -> Result<String> {
    let first = acks.first().ok_or_else(|| anyhow!("no acks"))?;
    Ok(first.payload.split('|').next().unwrap_or_default().to_string())
}

/// Produces MESSAGES acked records, cuts the power, restarts; returns the data dir (dropped after
/// the broker), the broker, the acks and the sum of lost_records that /state reports for the cut.
async fn produce_then_cut(fsync: &str) -> Result<(tempfile::TempDir, Broker, Vec<Ack>, i64)> {
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()).fsync(fsync))?;
    let topic = unique(&format!("power-{fsync}"));
    create_topic(&broker.bootstrap(), &topic, 3).await?;
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let sends = (0..MESSAGES).map(|i| {
        let (p, topic) = (&p, &topic);
        async move { send_one(p, topic, &format!("k{i}"), &format!("{topic}|{i:03}")).await }
    });
    let acks: Vec<Ack> = futures::future::join_all(sends).await.into_iter().collect::<Result<_>>()?;
    drop(p);

    let body = endpoint::post(broker.http, "/faults/power-cut", &serde_json::json!({}))
        .context("POST /faults/power-cut")?;
    println!("power cut report (fsync={fsync}): {body}");
    let exit = broker.wait_exit(EXIT_TIMEOUT).context("waiting for the abort after the power cut")?;
    ensure!(exit.code != Some(0), "the node exited successfully after a power cut ({exit}); it should abort");

    broker.restart().context("restart after the power cut")?;
    let state = broker.state()?;
    let cut = state.recovery.last_power_cut.as_ref().ok_or_else(|| {
        anyhow::anyhow!("recovery.last_power_cut is null after a power cut; recovery: {:?}", state.recovery)
    })?;
    let lost: i64 = cut.partitions.iter().map(|p| p.lost_records).sum();
    Ok((dir, broker, acks, lost))
}

/// After recovering, a fresh record can be produced and read back.
async fn still_serves(broker: &Broker) -> Result<()> {
    let topic = unique("after-cut");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let ack = send_one(&p, &topic, "k", "fresh after the power cut")
        .await
        .context("producing after the power cut")?;
    let read = read_all_partitions(&broker.bootstrap(), &topic, Duration::from_secs(30))?;
    checker::check(std::slice::from_ref(&ack), &[], read.values().flatten())
        .assert_ok_or("a fresh record after the power cut", || format!("read: {read:?}"))
}
