//! Produce: validate batches, check idempotent sequences, append (single node) or propose to
//! the partition's Raft group (cluster), and answer once the write is as durable as promised.
//!
//! The append or proposal happens synchronously, while the connection still reads in arrival
//! order; only the wait (fsync, Raft commit) is deferred, so pipelined requests keep their order
//! in the log and share fsyncs and replication round trips.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::{str_bytes, topic_name, ApiSpec, Reply, RequestContext};
use crate::cluster::raft_group::{ProposalOutcome, RaftGroup};
use crate::cluster::Cluster;
use crate::config::FsyncPolicy;
use crate::log::batch::CONTROL_ATTRIBUTE;
use crate::log::{split_batches, BatchHeader};
use crate::producers::{lock, PartitionProducers, SequenceCheck, PENDING_OFFSET};
use crate::raft::typ::{Command, CommandResult};
use crate::state::NodeState;

/// v3 is the first with record batch v2; v12+ address topics by id, which we do not implement.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::Produce, min: 3, max: 11 };

/// The single-node leader epoch (the Raft term in cluster mode).
const LEADER_EPOCH: i32 = 0;

type KafkaError = (ResponseError, String);
type Committed = oneshot::Receiver<ProposalOutcome>;

#[path = "produce_identity.rs"]
mod identity;
use identity::BatchId;

#[path = "produce_wait.rs"]
mod wait;
use wait::{settle, Wait};

struct Outcome {
    partition: i32,
    result: Result<(i64, i64), KafkaError>,
    wait: Wait,
    /// With INVALID_RECORD: the index in its batch of each record at fault (Produce v8+
    /// `record_errors`), so the client fails those and retries the rest of the batch.
    record_errors: Vec<i32>,
}

fn failed(partition: i32, code: ResponseError, msg: String) -> Outcome {
    Outcome { partition, result: Err((code, msg)), wait: Wait::Nothing, record_errors: Vec::new() }
}

/// Written at `offsets` (first, last), true once `wait` is over.
fn written(partition: i32, offsets: (i64, i64), wait: Wait) -> Outcome {
    Outcome { partition, result: Ok(offsets), wait, record_errors: Vec::new() }
}

/// Cluster: the offsets (or the refusal) come from `wait`.
fn pending(partition: i32, wait: Wait) -> Outcome {
    written(partition, (PENDING_OFFSET, PENDING_OFFSET), wait)
}

pub fn handle(node: &Arc<NodeState>, ctx: &RequestContext, req: ProduceRequest) -> Reply {
    let acks = req.acks;
    let mut topics: Vec<(String, Vec<Outcome>)> = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.to_string();
        let compacted = node.topic_configs(&name).is_some_and(|c| crate::topic_config::is_compacted(&c));
        let outcomes = topic
            .partition_data
            .into_iter()
            .map(|p| {
                if !(-1..=1).contains(&acks) {
                    return failed(
                        p.index,
                        ResponseError::InvalidRequiredAcks,
                        format!("acks must be -1, 0 or 1, got {acks}"),
                    );
                }
                if req.transactional_id.is_some() {
                    return failed(
                        p.index,
                        ResponseError::TransactionalIdAuthorizationFailed,
                        "transactions are not supported by this broker".into(),
                    );
                }
                let parsed = match parse(p.records) {
                    Ok(parsed) => parsed,
                    Err((code, msg)) => return failed(p.index, code, msg),
                };
                if compacted {
                    let keyless: Vec<i32> =
                        parsed.0.iter().flat_map(|b| crate::log::batch::records_without_key(b)).collect();
                    if !keyless.is_empty() {
                        let msg =
                            format!("{name} is compacted (cleanup.policy=compact): every record needs a key");
                        return Outcome {
                            record_errors: keyless,
                            ..failed(p.index, ResponseError::InvalidRecord, msg)
                        };
                    }
                }
                match &node.cluster {
                    None => append_local(node, &name, p.index, parsed),
                    Some(cluster) => propose(node, cluster, &name, p.index, parsed),
                }
            })
            .collect();
        topics.push((name, outcomes));
    }
    if acks == 0 {
        return Reply::NoResponse;
    }
    let timeout = Duration::from_millis(req.timeout_ms.max(0) as u64);
    let node = Arc::clone(node);
    let version = ctx.api_version;
    Reply::Later(Box::pin(
        async move { ResponseKind::Produce(answer(&node, topics, timeout, version).await) },
    ))
}

/// Splits the record set into batches and checks each one's CRC and header.
fn parse(records: Option<Bytes>) -> Result<(Vec<Bytes>, Vec<BatchHeader>), KafkaError> {
    let records =
        records.ok_or((ResponseError::InvalidRecord, "produce request without records".to_string()))?;
    let batches = split_batches(&records).map_err(|e| (ResponseError::CorruptMessage, e.to_string()))?;
    if batches.is_empty() {
        return Err((ResponseError::InvalidRecord, "produce request with an empty record set".into()));
    }
    let headers = batches
        .iter()
        .map(|b| BatchHeader::parse(b))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| (ResponseError::CorruptMessage, e.to_string()))?;
    // Control batches are written by the broker itself (Kafka's transaction markers, here
    // Raft's own entries, decision 46); a client's would be read back as one of those.
    if let Some(i) = headers.iter().position(|h| h.attributes & CONTROL_ATTRIBUTE != 0) {
        return Err((
            ResponseError::InvalidRecord,
            format!("batch {i} is a control batch; only the broker writes control batches"),
        ));
    }
    Ok((batches, headers))
}

/// Answers a retry of an already stored batch with its original offsets.
fn duplicate(topic: &str, partition: i32, h: &BatchHeader, base_offset: i64) -> (i64, i64) {
    tracing::info!(
        topic,
        partition,
        offset = base_offset,
        producer_id = h.producer_id,
        "duplicate batch answered with its original offset"
    );
    (base_offset, base_offset + h.last_offset_delta as i64)
}

fn append_local(
    node: &NodeState,
    topic: &str,
    partition: i32,
    (batches, headers): (Vec<Bytes>, Vec<BatchHeader>),
) -> Outcome {
    let Some(log) = node.topics.partition(topic, partition) else {
        return failed(
            partition,
            ResponseError::UnknownTopicOrPartition,
            format!("{topic}-{partition} does not exist"),
        );
    };
    let flush = |end: i64| match node.store.policy() {
        FsyncPolicy::Always => Wait::Flush(Arc::clone(&log), end),
        _ => Wait::Nothing,
    };
    // Hold this partition's producer state across check -> append -> record so that two
    // connections of one producer (a retry after a reconnect) cannot interleave.
    let state = node.producers.partition(topic, partition);
    let mut state = lock(&state);
    match state.check(&headers[0]) {
        SequenceCheck::Append => {}
        SequenceCheck::Duplicate { base_offset } => {
            let offsets = duplicate(topic, partition, &headers[0], base_offset);
            // Durability of the original append is what the retry asks about.
            return written(partition, offsets, flush(offsets.1 + 1));
        }
        SequenceCheck::Reject(code, msg) => {
            tracing::warn!(topic, partition, reason = %msg, "batch refused");
            return failed(partition, code, msg);
        }
    }
    match log.append(&batches, LEADER_EPOCH) {
        Ok(out) => {
            let mut offset = out.base_offset;
            for h in &headers {
                state.record(h, offset);
                offset += h.record_count_i64();
            }
            written(partition, (out.base_offset, out.last_offset), flush(out.last_offset + 1))
        }
        Err(e) => {
            tracing::error!(topic, partition, error = %e, "append failed");
            failed(partition, ResponseError::KafkaStorageError, e.to_string())
        }
    }
}

fn propose(
    node: &NodeState,
    cluster: &Cluster,
    topic: &str,
    partition: i32,
    (batches, headers): (Vec<Bytes>, Vec<BatchHeader>),
) -> Outcome {
    let group = match cluster.leader_group(topic, partition) {
        Ok(g) => g,
        Err((code, msg)) => return failed(partition, code, msg),
    };
    let term = group.view().term;
    let producers = node.producers.partition(topic, partition);
    let mut state = lock(&producers);
    if !state.is_built_for(term) {
        if let Err(e) = state.rebuild(term, |record| group.log.for_each_batch_header(record)) {
            return failed(partition, ResponseError::KafkaStorageError, e.to_string());
        }
    }
    match state.check(&headers[0]) {
        SequenceCheck::Append => {}
        // The first attempt is still being replicated. Any error answer here would tell an
        // idempotent client the batch was not written, and it may then re-send it under a new
        // epoch as new data; so the retry waits for the first attempt's outcome instead.
        SequenceCheck::Duplicate { base_offset: PENDING_OFFSET } => {
            drop(state);
            return pending(partition, Wait::Original { producers, batch: BatchId::of(&headers[0]), group });
        }
        SequenceCheck::Duplicate { base_offset } => {
            let offsets = duplicate(topic, partition, &headers[0], base_offset);
            // Acknowledge only what is committed: a leader rebuilt its producer state from a log
            // whose tail may still be uncommitted (and could be cut by a later leader).
            let wait = Wait::Committed { group, base: offsets.0, batch: BatchId::of(&headers[0]) };
            return written(partition, offsets, wait);
        }
        SequenceCheck::Reject(code, msg) => {
            // Not answered yet: the refusal waits for a majority to confirm this leadership
            // (`Wait::Refused` says why). A gap (a batch ahead of the expected sequence) is
            // refused as REQUEST_TIMED_OUT, not OUT_OF_ORDER (`producers` explains why).
            let h = &headers[0];
            tracing::warn!(topic, partition, term, producer_id = h.producer_id, epoch = h.producer_epoch,
                base_sequence = h.base_sequence, reason = %msg, "batch refused");
            drop(state);
            return pending(partition, Wait::Refused { group, code, msg });
        }
    }
    let receivers = propose_batches(&group, &mut state, &producers, batches, &headers);
    drop(state);
    pending(partition, Wait::Commit { receivers, group })
}

/// Proposes the batches to the group in order, each one's sequence recorded as pending
/// (`state` is `producers`, locked) until its commit says where it landed.
fn propose_batches(
    group: &RaftGroup,
    state: &mut PartitionProducers,
    producers: &Arc<Mutex<PartitionProducers>>,
    batches: Vec<Bytes>,
    headers: &[BatchHeader],
) -> Vec<Committed> {
    let mut receivers = Vec::with_capacity(batches.len());
    for (b, h) in batches.into_iter().zip(headers) {
        let resolve = resolve_on_commit(Arc::clone(producers), h.producer_id, h.base_sequence);
        receivers.push(group.propose_then(Command::Batch(b), resolve));
        state.record(h, PENDING_OFFSET);
    }
    receivers
}

/// The producer state learns where a batch landed when its proposal commits, whether or not
/// the request that proposed it is still waiting. A request gives up early when its leader
/// looks isolated; if the leader then recovers in the same term, the entry still commits, and
/// the client's retry of that sequence waits (`Wait::Original`) for exactly this resolution.
/// Without it the retry waited out the request timeout, the client bumped its epoch and wrote
/// every unanswered batch a second time (335 duplicates in one slow-disk drill).
///
/// It locks `producers` only for a committed batch: a proposal refused at once ("stopped") runs
/// it inside `propose_then`, while `propose_batches`' caller still holds that lock.
fn resolve_on_commit(
    producers: Arc<Mutex<PartitionProducers>>,
    producer_id: i64,
    base_sequence: i32,
) -> impl FnOnce(&ProposalOutcome) + Send + 'static {
    move |outcome| {
        if let Ok(CommandResult::Batch { base_offset, .. }) = outcome {
            lock(&producers).resolve(producer_id, base_sequence, *base_offset);
        }
    }
}

/// `version` gates fields: the codec refuses to encode a field the version does not have.
async fn answer(
    node: &NodeState,
    topics: Vec<(String, Vec<Outcome>)>,
    timeout: Duration,
    version: i16,
) -> ProduceResponse {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut responses = Vec::with_capacity(topics.len());
    let mut endpoints = BTreeMap::new();
    for (name, outcomes) in topics {
        let mut partitions = Vec::with_capacity(outcomes.len());
        for mut o in outcomes {
            let index = o.partition;
            let record_errors = std::mem::take(&mut o.record_errors);
            let result = settle(node, o, deadline, timeout).await;
            let mut r = PartitionProduceResponse::default().with_index(index);
            if version >= 5 {
                let log_start =
                    node.readable_log(&name, index).map(|l| l.offsets().log_start_offset).unwrap_or(-1);
                r = r.with_log_start_offset(log_start);
            }
            match result {
                Ok((base, _last)) => r = r.with_base_offset(base),
                Err((code, msg)) => {
                    r = r.with_error_code(code.code()).with_base_offset(-1);
                    if version >= 10 && code == ResponseError::NotLeaderOrFollower {
                        r = r.with_current_leader(new_leader_hint(node, &name, index, &mut endpoints));
                    }
                    if version >= 8 {
                        let errors = record_errors.iter().map(|&i| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(i)
                                .with_batch_index_error_message(Some(str_bytes(msg.clone())))
                        });
                        r = r
                            .with_error_message(Some(str_bytes(msg.clone())))
                            .with_record_errors(errors.collect());
                    }
                }
            }
            partitions.push(r);
        }
        responses.push(
            TopicProduceResponse::default().with_name(topic_name(&name)).with_partition_responses(partitions),
        );
    }
    let response = ProduceResponse::default().with_responses(responses);
    if version >= 10 {
        response.with_node_endpoints(endpoints.into_values().collect())
    } else {
        response
    }
}

/// KIP-951: a NOT_LEADER_OR_FOLLOWER answer names the leader this node knows (and its address in
/// the response's node endpoints), so a client (librdkafka >= 2.5) moves there at once instead of
/// waiting for a metadata refresh. Unknown: leader -1, as Kafka sends.
fn new_leader_hint(
    node: &NodeState,
    topic: &str,
    partition: i32,
    endpoints: &mut BTreeMap<i32, NodeEndpoint>,
) -> LeaderIdAndEpoch {
    let known = node.topology.partition_leader(node, topic, partition).and_then(|(leader, epoch)| {
        let (_, addr) = node.topology.brokers(node).into_iter().find(|(id, _)| *id == leader)?;
        Some((leader, epoch, addr))
    });
    match known {
        Some((leader, epoch, addr)) => {
            endpoints.entry(leader).or_insert_with(|| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(leader))
                    .with_host(str_bytes(addr.ip().to_string()))
                    .with_port(i32::from(addr.port()))
            });
            LeaderIdAndEpoch::default().with_leader_id(BrokerId(leader)).with_leader_epoch(epoch)
        }
        None => LeaderIdAndEpoch::default().with_leader_id(BrokerId(-1)).with_leader_epoch(-1),
    }
}

#[cfg(test)]
#[path = "produce_tests.rs"]
mod tests;
