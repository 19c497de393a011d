//! DeleteRecords and DeleteGroups in a cluster, driven by librdkafka's admin client: the log
//! start moves on every replica and stays after the leader dies; only empty groups go, with
//! their committed offsets.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::clients::{eof_state, group_consumer, poll_n, produce, ProduceSpec};
use crate::harness::{unique, Cluster, CLUSTER_TIMEOUT};
use crate::scale::create_topic;
use crate::wait::wait_for;

const TIMEOUT: Duration = Duration::from_secs(15);

fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).request_timeout(Some(TIMEOUT))
}

fn plain_consumer(bootstrap: &str, group: &str) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .create()
        .context("consumer")
}

/// The log start offset node `id` reports for `topic`-0 in /state.
fn log_start_on(c: &Cluster, id: i32, topic: &str) -> Result<Option<i64>> {
    let s = c.snapshot(id)?;
    Ok(s.partitions.iter().find(|p| p.topic == topic && p.partition == 0).map(|p| p.offsets.log_start_offset))
}

#[test]
fn delete_records_moves_the_log_start_on_every_replica() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let bootstrap = c.bootstrap_all();
    let topic = unique("delrec");
    create_topic(&bootstrap, &topic, 1)?;
    c.wait_all_leaders(&topic, 1)?;
    let mut spec = ProduceSpec::new(&bootstrap, &topic, "delrec-", 100);
    spec.partition = Some(0);
    let log = produce(spec)?;
    ensure!(log.errors.is_empty(), "produce failed: {:?}", log.errors.first());

    let consumer = plain_consumer(&bootstrap, &unique("delrec-reader"))?;
    let (low, high) = consumer.fetch_watermarks(&topic, 0, TIMEOUT)?;
    ensure!(high - low >= 100, "watermarks {low}..{high} for 100 records");
    let target = high - 30;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(target))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let admin = admin(&bootstrap)?;
    let answer = rt.block_on(admin.delete_records(&tpl, &opts()))?;
    let e = answer.find_partition(&topic, 0).context("no answer for partition 0")?;
    e.error().with_context(|| format!("DeleteRecords of {topic}-0 to {target}"))?;
    ensure!(e.offset() == Offset::Offset(target), "low watermark {:?}, asked {target}", e.offset());

    // Beyond the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
    let mut beyond = TopicPartitionList::new();
    beyond.add_partition_offset(&topic, 0, Offset::Offset(high + 10))?;
    let refused = rt.block_on(admin.delete_records(&beyond, &opts()))?;
    let err = refused.find_partition(&topic, 0).context("no answer")?.error();
    ensure!(err.is_err(), "DeleteRecords beyond the high watermark was accepted");

    // ListOffsets earliest, a fetch from below the start (reset to earliest), every replica.
    ensure!(consumer.fetch_watermarks(&topic, 0, TIMEOUT)? == (target, high), "watermarks after delete");
    let mut assign = TopicPartitionList::new();
    assign.add_partition_offset(&topic, 0, Offset::Offset(low))?;
    consumer.assign(&assign)?;
    let mut eof = eof_state(1);
    let read = poll_n(&consumer, 30, Duration::from_secs(30), &mut eof)?;
    ensure!(read[0].offset == target, "first record read at {}, log start {target}", read[0].offset);
    for id in c.ids() {
        wait_for(&format!("node {id} to start {topic}-0 at {target}"), CLUSTER_TIMEOUT, || {
            Ok((log_start_on(&c, id, &topic)? == Some(target)).then_some(()))
        })?;
    }

    // The start survives the loss of the leader: the next leader answers it too.
    let (leader, _) = c.wait_all_leaders(&topic, 1)?[&0];
    c.kill(leader)?;
    let (new_leader, _) = c.wait_all_leaders(&topic, 1)?[&0];
    eprintln!("leader {leader} killed, {new_leader} leads");
    let others: Vec<i32> = c.running();
    let fresh = plain_consumer(&c.bootstrap_of(&others), &unique("delrec-after"))?;
    wait_for("the new leader to answer the moved log start", CLUSTER_TIMEOUT, || {
        Ok(match fresh.fetch_watermarks(&topic, 0, Duration::from_secs(2)) {
            Ok((l, _)) if l == target => Some(()),
            Ok((l, h)) => anyhow::bail!("new leader answers watermarks {l}..{h}, log start was {target}"),
            Err(e) => {
                eprintln!("watermarks after the leader's death: {e} (retrying)");
                None // no leader yet
            }
        })
    })
}

#[test]
fn delete_groups_removes_only_empty_groups_and_their_offsets() -> Result<()> {
    let c = Cluster::start(3)?;
    let bootstrap = c.bootstrap_all();
    let topic = unique("delgrp");
    create_topic(&bootstrap, &topic, 1)?;
    let mut spec = ProduceSpec::new(&bootstrap, &topic, "delgrp-", 10);
    spec.partition = Some(0);
    produce(spec)?;

    // An empty group: offsets committed without joining.
    let (empty, live) = (unique("delgrp-empty"), unique("delgrp-live"));
    let committer = plain_consumer(&bootstrap, &empty)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(5))?;
    committer.commit(&tpl, CommitMode::Sync).context("committing the empty group's offset")?;
    drop(committer);

    // A live group: a member that has its assignment.
    let member = group_consumer(&bootstrap, &topic, &live)?;
    let mut eof = eof_state(1);
    poll_n(&member, 1, Duration::from_secs(30), &mut eof)?;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let admin = admin(&bootstrap)?;
    let missing = unique("delgrp-missing");
    let results = rt.block_on(admin.delete_groups(&[&empty, &live, &missing], &opts()))?;
    let code = |g: &str| -> Result<Option<RDKafkaErrorCode>> {
        let r = results.iter().find(|r| r.as_ref().map_or_else(|(n, _)| n == g, |n| n == g));
        Ok(r.context("group missing from the answer")?.as_ref().err().map(|(_, e)| *e))
    };
    ensure!(code(&empty)?.is_none(), "the empty group was not deleted: {:?}", code(&empty)?);
    ensure!(code(&live)? == Some(RDKafkaErrorCode::NonEmptyGroup), "live group: {:?}", code(&live)?);
    ensure!(
        code(&missing)? == Some(RDKafkaErrorCode::GroupIdNotFound),
        "unknown group: {:?}",
        code(&missing)?
    );

    // Its offsets are gone: a new member of that group id has nothing committed.
    let after = plain_consumer(&bootstrap, &empty)?;
    let mut wanted = TopicPartitionList::new();
    wanted.add_partition(&topic, 0);
    let committed = after.committed_offsets(wanted, TIMEOUT)?;
    let offset = committed.find_partition(&topic, 0).context("no committed entry")?.offset();
    ensure!(offset == Offset::Invalid, "deleted group still has offset {offset:?}");
    // The live group is untouched and still consuming.
    poll_n(&member, 1, Duration::from_secs(30), &mut eof)?;
    Ok(())
}
