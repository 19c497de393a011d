//! An idempotent producer's sequence with a gap at the partition leader (docs/chaos.md bug 2).
//!
//! Of two pipelined batches the first can be refused without reaching the leader's producer
//! state (NOT_LEADER_OR_FOLLOWER: a leader whose majority missed a heartbeat says so for a
//! moment without losing its term) while the second reaches it. Answering the second
//! OUT_OF_ORDER_SEQUENCE_NUMBER made librdkafka drain, bump its epoch and re-send every
//! unacknowledged message of every partition as new data: chaos seed 1 stored 41 values twice.
//! Here the first batch goes to a follower instead, which leaves the leader's state the same
//! way, deterministically; raw requests show the leader's answer to the batch after the gap.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceResponse};
use kafka_protocol::ResponseError;

use crate::admin::{one_record_produce, round_trip};
use crate::clients::read_all;
use crate::harness::{unique, wait_for, Cluster, CLUSTER_TIMEOUT};
use crate::scale::create_topic;

const PRODUCE_VERSION: i16 = 9;

/// One single-record idempotent batch `value` with sequence `sequence`, sent to node `to`:
/// (error code, base offset).
fn send(
    c: &Cluster,
    to: i32,
    topic: &str,
    producer: (i64, i16),
    sequence: i32,
    value: &str,
) -> Result<(i16, i64)> {
    let request = one_record_produce(topic, producer, sequence, value.as_bytes(), 10_000)?;
    let answer: ProduceResponse = round_trip(&c.bootstrap(to), ApiKey::Produce, PRODUCE_VERSION, &request)?;
    let p = &answer.responses.first().context("no topic answered")?.partition_responses[0];
    Ok((p.error_code, p.base_offset))
}

fn code_name(code: i16) -> String {
    format!("{code} ({:?})", ResponseError::try_from_code(code))
}

#[test]
fn a_batch_after_a_gap_is_retried_not_refused_out_of_order() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let topic = unique("seqgap");
    create_topic(&c.bootstrap_all(), &topic, 1)?;
    let (leader, _) = c.wait_all_leaders(&topic, 1)?[&0];
    let follower = c.running().into_iter().find(|id| *id != leader).context("no follower")?;
    let init: InitProducerIdResponse = round_trip(
        &c.bootstrap(leader),
        ApiKey::InitProducerId,
        1,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    )?;
    ensure!(init.error_code == 0, "InitProducerId answered {}", code_name(init.error_code));
    let producer = (init.producer_id.0, init.producer_epoch);

    let first = wait_for("sequence 0 written through the leader", CLUSTER_TIMEOUT, || {
        let (code, offset) = send(&c, leader, &topic, producer, 0, "gap-0")?;
        Ok((code == 0).then_some(offset))
    })?;
    let (code, _) = send(&c, follower, &topic, producer, 1, "gap-1")?;
    ensure!(
        code == ResponseError::NotLeaderOrFollower.code(),
        "follower {follower} answered {}",
        code_name(code)
    );

    // Sequence 1 never reached the leader; 2 does. OUT_OF_ORDER here is what renumbered the
    // client's unacknowledged messages; a retriable answer makes it send 1 again first.
    let (code, _) = send(&c, leader, &topic, producer, 2, "gap-2")?;
    println!("[sequence gap] leader {leader} answered sequence 2 after a gap with {}", code_name(code));
    ensure!(
        code == ResponseError::RequestTimedOut.code(),
        "leader {leader} answered the batch after the gap with {}, expected REQUEST_TIMED_OUT (retriable)",
        code_name(code)
    );

    // The client's retries, in order, and a retry of a retry.
    let (code, second) = send(&c, leader, &topic, producer, 1, "gap-1")?;
    ensure!(code == 0, "sequence 1 retried: {}", code_name(code));
    let (code, third) = send(&c, leader, &topic, producer, 2, "gap-2")?;
    ensure!(code == 0, "sequence 2 retried: {}", code_name(code));
    let (code, again) = send(&c, leader, &topic, producer, 2, "gap-2")?;
    ensure!(
        code == 0 && again == third,
        "a second retry of sequence 2 answered {} at {again}",
        code_name(code)
    );
    ensure!(
        (second, third) == (first + 1, first + 2),
        "offsets {first}, {second}, {third} for sequences 0, 1, 2"
    );

    let expected: HashSet<String> = ["gap-0", "gap-1", "gap-2"].iter().map(|s| s.to_string()).collect();
    let read = read_all(&c.bootstrap_all(), &topic, 1, &expected, Duration::from_secs(30))?;
    let stored: Vec<(i64, &str)> = read.iter().map(|r| (r.offset, r.payload.as_str())).collect();
    ensure!(
        stored == vec![(first, "gap-0"), (first + 1, "gap-1"), (first + 2, "gap-2")],
        "partition 0 holds {stored:?}"
    );
    Ok(())
}
