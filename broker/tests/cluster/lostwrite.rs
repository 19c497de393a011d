//! Issue 15, an acknowledged write lost (chaos seed 7, docs/chaos.md): a leader restarted with a
//! batch it had written but never committed, and acknowledged the producer's retry of that batch
//! at once, at offsets where another leader's blank entry was committed later.
//!
//! The cause: a replicated log reported a single node's high watermark (everything fsynced) from
//! start-up until its group first applied an entry, so a restarted node counted its uncommitted
//! tail as committed. Here a leader writes a batch while both followers are paused, is killed and
//! restarted, and must not report that batch below its high watermark; then every acknowledgement
//! of the producer (its retry included) must name offsets that hold exactly that batch.

use std::collections::BTreeMap;

use anyhow::{bail, ensure, Context, Result};
use broker::log::batch_builder::{build, ProducerFields, Record};
use broker::log::{split_batches, BatchHeader, PartitionOffsets};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::admin::round_trip;
use crate::harness::{unique, wait_for, Cluster, CLUSTER_TIMEOUT};
use crate::scale::create_topic;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 11;

struct Producer {
    id: i64,
    epoch: i16,
}

fn init_producer(c: &Cluster, on: i32) -> Result<Producer> {
    let request =
        InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000);
    let r: InitProducerIdResponse = round_trip(&c.bootstrap(on), ApiKey::InitProducerId, 1, &request)?;
    ensure!(r.error_code == 0, "InitProducerId on node {on}: error {}", r.error_code);
    Ok(Producer { id: r.producer_id.0, epoch: r.producer_epoch })
}

/// One idempotent batch of one record, `value`, at `sequence`.
fn batch(p: &Producer, sequence: i32, value: &str) -> Bytes {
    let records = [Record { key: None, value: Some(value.as_bytes()) }];
    build(
        &records,
        0,
        1_000,
        ProducerFields { producer_id: p.id, producer_epoch: p.epoch, base_sequence: sequence },
    )
}

/// Sends `batch` to partition 0 on node `to`: (error code, base offset).
fn produce(c: &Cluster, to: i32, topic: &str, batch: &Bytes, timeout_ms: i32) -> Result<(i16, i64)> {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(timeout_ms).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.clone()))]),
    ]);
    let r: ProduceResponse = round_trip(&c.bootstrap(to), ApiKey::Produce, PRODUCE_VERSION, &request)?;
    let p =
        r.responses.first().and_then(|t| t.partition_responses.first()).context("no partition answered")?;
    Ok((p.error_code, p.base_offset))
}

/// The node does not serve the partition (yet): a restarted node knows its partitions once the
/// cluster metadata is replayed, and leads once confirmed.
fn not_serving(code: i16) -> bool {
    [ResponseError::NotLeaderOrFollower.code(), ResponseError::UnknownTopicOrPartition.code()].contains(&code)
}

/// Sends `batch` to whichever node leads partition 0 until one answers without a retriable
/// error (as an idempotent client does, same sequence every time): the acknowledged offset.
fn produce_until_answered(c: &mut Cluster, topic: &str, batch: &Bytes) -> Result<i64> {
    let mut answers = Vec::new();
    wait_for("an answer to the batch", CLUSTER_TIMEOUT, || {
        let Some((leader, _)) = c.leader_of(topic, 0)? else { return Ok(None) };
        let (code, offset) = produce(c, leader, topic, batch, 5_000)?;
        answers.push((leader, code));
        match code {
            0 => Ok(Some(offset)),
            code if code == ResponseError::RequestTimedOut.code() || not_serving(code) => Ok(None),
            code => bail!("node {leader} refused the batch with error {code} (answers so far: {answers:?})"),
        }
    })
}

/// The local offsets of `topic-0` in node `id`'s /state.
fn offsets_on(c: &Cluster, id: i32, topic: &str) -> Result<PartitionOffsets> {
    let state = c.snapshot(id)?;
    state
        .partitions
        .into_iter()
        .find(|p| p.topic == topic && p.partition == 0)
        .map(|p| p.offsets)
        .with_context(|| format!("node {id} has no {topic}-0"))
}

/// Every committed batch of `topic-0` read from node `from` (the leader): (base offset, header).
fn read_batches(c: &Cluster, from: i32, topic: &str) -> Result<Vec<BatchHeader>> {
    let mut out = Vec::new();
    let mut offset = 0;
    for _ in 0..1_000 {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let r: FetchResponse = round_trip(&c.bootstrap(from), ApiKey::Fetch, FETCH_VERSION, &request)?;
        let p = r.responses.first().and_then(|t| t.partitions.first()).context("no partition fetched")?;
        ensure!(p.error_code == 0, "fetch from node {from} at {offset}: error {}", p.error_code);
        let records = p.records.clone().unwrap_or_default();
        for b in split_batches(&records)? {
            let h = BatchHeader::parse(&b)?;
            offset = h.base_offset + h.last_offset_delta as i64 + 1;
            out.push(h);
        }
        if offset >= p.high_watermark {
            return Ok(out);
        }
    }
    bail!("reading {topic}-0 from node {from} did not reach its high watermark")
}

#[test]
fn a_restarted_leader_acknowledges_nothing_from_its_uncommitted_tail() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let r = restarted_leader(&mut c);
    if let Err(e) = &r {
        eprintln!("FAILED: {e:#}\n{}", c.logs(40));
    }
    r
}

fn restarted_leader(c: &mut Cluster) -> Result<()> {
    let topic = unique("lostwrite");
    create_topic(&c.bootstrap_all(), &topic, 1)?;
    let (leader, term) = c.wait_all_leaders(&topic, 1)?[&0];
    let followers: Vec<i32> = c.ids().into_iter().filter(|id| *id != leader).collect();
    let p = init_producer(c, leader)?;
    let mut acked: BTreeMap<i32, i64> = BTreeMap::new();
    acked.insert(0, produce_until_answered(c, &topic, &batch(&p, 0, "lw-0"))?);
    let committed_end = offsets_on(c, leader, &topic)?.high_watermark;

    // The leader writes (and fsyncs) batch 1 that no follower receives.
    for f in &followers {
        c.node(*f).proc.as_ref().context("follower not running")?.pause()?;
    }
    let retried = batch(&p, 1, "lw-1");
    let (code, _) = produce(c, leader, &topic, &retried, 1_000)?;
    ensure!(code != 0, "batch 1 was acknowledged with both followers paused");
    let tail_end = wait_for("batch 1 fsynced on the leader", CLUSTER_TIMEOUT, || {
        let o = offsets_on(c, leader, &topic)?;
        let (end, flushed) = (o.log_end_offset, o.flushed_offset);
        Ok((end > committed_end && flushed >= end).then_some(end))
    })?;
    c.kill(leader)?;
    c.restart(leader)?;

    // Nothing can commit with both followers paused: batch 1 must stay above the watermark.
    let o = offsets_on(c, leader, &topic)?;
    let hw = o.high_watermark;
    println!("node {leader} (led term {term}) restarted: log end {tail_end}, high watermark {hw}, committed end before {committed_end}");
    ensure!(
        hw <= committed_end,
        "node {leader} restarted with an uncommitted tail reports high watermark {hw} above the committed \
         end {committed_end} (its log ends at {tail_end}): it would acknowledge and serve uncommitted batches"
    );

    for f in &followers {
        c.node(*f).proc.as_ref().context("paused follower gone")?.signal(libc::SIGCONT)?;
    }
    acked.insert(1, produce_until_answered(c, &topic, &retried)?);
    acked.insert(2, produce_until_answered(c, &topic, &batch(&p, 2, "lw-2"))?);

    // Every acknowledged offset holds exactly the acknowledged batch, each batch once.
    let (reader, _) = wait_for("a leader of partition 0", CLUSTER_TIMEOUT, || c.leader_of(&topic, 0))?;
    let stored = read_batches(c, reader, &topic)?;
    let at: BTreeMap<i64, &BatchHeader> = stored.iter().map(|h| (h.base_offset, h)).collect();
    for (sequence, offset) in &acked {
        let h = at.get(offset).with_context(|| {
            format!("sequence {sequence} acknowledged at {offset}: no batch starts there")
        })?;
        ensure!(
            (h.producer_id, h.producer_epoch, h.base_sequence) == (p.id, p.epoch, *sequence),
            "sequence {sequence} acknowledged at {offset}, which holds producer {} epoch {} sequence {} (attributes {:#x})",
            h.producer_id, h.producer_epoch, h.base_sequence, h.attributes
        );
        let copies = stored.iter().filter(|h| h.producer_id == p.id && h.base_sequence == *sequence).count();
        ensure!(copies == 1, "sequence {sequence} is stored {copies} times");
    }
    println!("acknowledged {acked:?}; all hold their batch");
    Ok(())
}
