//! `POST /faults/fsync-fail`: from then on every fsync fails with EIO, as a dying disk's do.
//! After a failed fsync the kernel may have dropped the dirty pages, so the node must not
//! acknowledge what it could not fsync and must stop at once (exit 74) rather than hang in a
//! graceful flush; restarted (the disk "replaced"), it serves everything it acknowledged before.

use std::time::Duration;

use anyhow::{ensure, Context, Result};

use crate::checker;
use crate::clients::{create_topic, producer, read_all_partitions, send_one, Ack};
use crate::endpoint;
use crate::harness::{data_dir, unique, Broker, BrokerOpts, EXIT_TIMEOUT};

const BEFORE: usize = 50;
/// The send made after fsync started failing: never acknowledged, but it may have reached the
/// file before its fsync failed, so after the restart it may or may not be there.
const AFTER: &str = "after the disk failed";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_the_node_and_loses_nothing_it_acknowledged() -> Result<()> {
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()).fsync("always"))?;
    let topic = unique("fsync-fail");
    create_topic(&broker.bootstrap(), &topic, 1).await?;
    let p = producer(&broker.bootstrap(), &[("acks", "all"), ("message.timeout.ms", "5000")])?;
    let mut acks: Vec<Ack> = Vec::new();
    for i in 0..BEFORE {
        acks.push(send_one(&p, &topic, "k", &format!("before-{i:02}")).await?);
    }

    endpoint::post(broker.http, "/faults/fsync-fail", &serde_json::json!({}))
        .context("POST /faults/fsync-fail")?;
    let after = send_one(&p, &topic, "k", AFTER).await;
    ensure!(after.is_err(), "a write was acknowledged after every fsync started failing: {after:?}");
    drop(p);
    let exit = broker.wait_exit(EXIT_TIMEOUT).context("the node must stop after a failed fsync")?;
    ensure!(exit.code == Some(74), "exit after a failed fsync: {exit}, expected status 74");
    ensure!(broker.stderr().contains("fsync failed"), "its last words should name the fsync failure");

    broker.restart().context("restart after the disk failure")?;
    let read = read_all_partitions(&broker.bootstrap(), &topic, Duration::from_secs(30))?;
    // Every acknowledged record at its offset (lost or elsewhere fails the test).
    checker::check(&acks, &[AFTER.to_string()], read.values().flatten())
        .assert_ok("acknowledged before the disk failed, after the restart")
}
