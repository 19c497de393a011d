//! Admin APIs in a cluster: partitions added through CreatePartitions get Raft groups, leaders
//! spread over the nodes, and take writes that a real client reads back; a follower's
//! NOT_LEADER_OR_FOLLOWER names the leader (KIP-951).

use std::collections::{BTreeSet, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use kafka_protocol::ResponseError;

use anyhow::{ensure, Context, Result};

use crate::checker::check;
use crate::clients::{read_all, ProduceSpec, ProducerRun};
use crate::harness::{unique, Cluster};
use crate::scale::{create_partitions, create_topic};

#[test]
fn create_partitions_adds_led_groups_that_take_writes() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let bootstrap = c.bootstrap_all();
    let topic = unique("grow");
    create_topic(&bootstrap, &topic, 3)?;
    c.wait_all_leaders(&topic, 3)?;
    create_partitions(&bootstrap, &topic, 6)?;
    let leaders = c.wait_all_leaders(&topic, 6)?;
    let new_leaders: BTreeSet<i32> = (3..6).map(|p| leaders[&p].0).collect();
    ensure!(new_leaders.len() == 3, "the 3 new partitions should be led by 3 different nodes: {leaders:?}");

    let t0 = Instant::now();
    let prefix = "grow-";
    let mut spec = ProduceSpec::new(&bootstrap, &topic, &format!("{prefix}m"), 600);
    spec.keys = 60;
    let log = ProducerRun::spawn(spec)?.join()?;
    let written: BTreeSet<i32> = log.acks.iter().map(|a| a.partition).collect();
    ensure!(written.len() == 6, "keyed messages should reach all 6 partitions, reached {written:?}");
    ensure!(log.errors.is_empty(), "{} failed deliveries, first: {:?}", log.errors.len(), log.errors.first());
    let expected: HashSet<String> = log.acks.iter().map(|a| a.payload.clone()).collect();
    let read = read_all(&bootstrap, &topic, 6, &expected, Duration::from_secs(60))?;
    check(&log.acks, &read, prefix).assert_ok("create partitions", t0.elapsed())
}

/// A Produce request (acks=all) of one single-record batch to partition 0 of `topic`; a
/// producer of (-1, -1) and sequence -1 is a plain, non-idempotent one.
pub(crate) fn one_record_produce(
    topic: &str,
    producer: (i64, i16),
    sequence: i32,
    value: &[u8],
    timeout_ms: i32,
) -> Result<ProduceRequest> {
    let mut batch = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut batch,
        &[Record {
            transactional: false,
            control: false,
            partition_leader_epoch: -1,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence,
            timestamp: 1,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: Default::default(),
            delete_horizon: false,
        }],
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )?;
    Ok(ProduceRequest::default().with_acks(-1).with_timeout_ms(timeout_ms).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch.freeze()))]),
    ]))
}

/// Sends one request with kafka-protocol's codec and decodes the answer.
pub(crate) fn round_trip<Req: Encodable + HeaderVersion, Resp: Decodable + HeaderVersion>(
    addr: &str,
    api_key: ApiKey,
    version: i16,
    request: &Req,
) -> Result<Resp> {
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("kip-951-test")))
        .encode(&mut body, Req::header_version(version))?;
    request.encode(&mut body, version)?;
    let mut s = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(15)))?;
    s.write_all(&(body.len() as u32).to_be_bytes())?;
    s.write_all(&body)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).context("reading the response length")?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).context("reading the response")?;
    let mut buf = Bytes::from(buf);
    ResponseHeader::decode(&mut buf, Resp::header_version(version))?;
    Resp::decode(&mut buf, version).context("decoding the response")
}

/// KIP-951: a produce sent to a follower is answered NOT_LEADER_OR_FOLLOWER with the leader's id,
/// epoch and address, so a stock client (librdkafka >= 2.5) goes there without a metadata round.
#[test]
fn a_follower_names_the_leader_in_its_not_leader_answer() -> Result<()> {
    let mut c = Cluster::start(3)?;
    let topic = unique("kip951");
    create_topic(&c.bootstrap_all(), &topic, 1)?;
    let (leader, term) = c.wait_all_leaders(&topic, 1)?[&0];
    let follower = c.running().into_iter().find(|id| *id != leader).context("no follower")?;
    let request = one_record_produce(&topic, (-1, -1), -1, b"v", 5_000)?;
    let answer: ProduceResponse = round_trip(&c.bootstrap(follower), ApiKey::Produce, 11, &request)?;
    let p = &answer.responses.first().context("no topic answered")?.partition_responses[0];
    ensure!(p.error_code == ResponseError::NotLeaderOrFollower.code(), "follower {follower} answered {p:?}");
    ensure!(
        p.current_leader.leader_id.0 == leader && i64::from(p.current_leader.leader_epoch) == term as i64,
        "current leader {:?}, expected node {leader} in term {term}",
        p.current_leader
    );
    let endpoint =
        answer.node_endpoints.iter().find(|e| e.node_id.0 == leader).context("no endpoint for the leader")?;
    let expected = c.bootstrap(leader);
    ensure!(
        format!("{}:{}", endpoint.host.as_str(), endpoint.port) == expected,
        "leader endpoint {endpoint:?}, expected {expected}"
    );
    Ok(())
}
