//! Produce: validate batches, check idempotent sequences, append, and answer when the write is as
//! durable as the fsync policy promises.
//!
//! The append happens synchronously, while the connection still reads in arrival order; only the
//! wait for the fsync is deferred, so pipelined requests keep their order in the log and share
//! fsyncs (group commit).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name, ApiSpec, Reply, RequestContext};
use crate::config::FsyncPolicy;
use crate::log::{split_batches, BatchHeader, PartitionLog};
use crate::producers::{lock, SequenceCheck};
use crate::state::NodeState;

/// v3 is the first with record batch v2; v12+ address topics by id, which we do not implement.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::Produce, min: 3, max: 11 };

/// The single-node leader epoch (becomes the Raft term with replication).
const LEADER_EPOCH: i32 = 0;

/// One partition's outcome before the durability wait.
struct Outcome {
    partition: i32,
    result: Result<(i64, i64), (ResponseError, String)>,
    /// Wait until the log is flushed up to here before answering (policy `always`).
    flush_to: Option<(Arc<PartitionLog>, i64)>,
}

pub fn handle(node: &Arc<NodeState>, ctx: &RequestContext, req: ProduceRequest) -> Reply {
    let acks = req.acks;
    let mut topics: Vec<(String, Vec<Outcome>)> = Vec::new();
    for topic in req.topic_data {
        let name = topic.name.to_string();
        let outcomes = topic
            .partition_data
            .into_iter()
            .map(|p| {
                if !matches!(acks, -1 | 0 | 1) {
                    let msg = format!("acks must be -1, 0 or 1, got {acks}");
                    return Outcome { partition: p.index, result: Err((ResponseError::InvalidRequiredAcks, msg)), flush_to: None };
                }
                if req.transactional_id.is_some() {
                    let msg = "transactions are not supported by this broker".to_string();
                    return Outcome { partition: p.index, result: Err((ResponseError::TransactionalIdAuthorizationFailed, msg)), flush_to: None };
                }
                append_partition(node, &name, p.index, p.records)
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
    Reply::Later(Box::pin(async move { ResponseKind::Produce(answer(&node, topics, timeout, version).await) }))
}

fn append_partition(node: &NodeState, topic: &str, partition: i32, records: Option<Bytes>) -> Outcome {
    let fail = |code, msg: String| Outcome { partition, result: Err((code, msg)), flush_to: None };
    let Some(log) = node.topics.partition(topic, partition) else {
        return fail(ResponseError::UnknownTopicOrPartition, format!("{topic}-{partition} does not exist"));
    };
    let Some(records) = records else {
        return fail(ResponseError::InvalidRecord, "produce request without records".into());
    };
    let batches = match split_batches(&records) {
        Ok(b) if !b.is_empty() => b,
        Ok(_) => return fail(ResponseError::InvalidRecord, "produce request with an empty record set".into()),
        Err(e) => return fail(ResponseError::CorruptMessage, e.to_string()),
    };
    let mut headers = Vec::with_capacity(batches.len());
    for b in &batches {
        match BatchHeader::parse(b) {
            Ok(h) => headers.push(h),
            Err(e) => return fail(ResponseError::CorruptMessage, e.to_string()),
        }
    }
    // Hold this partition's producer state across check -> append -> record so that two
    // connections of one producer (a retry after a reconnect) cannot interleave.
    let state = node.producers.partition(topic, partition);
    let mut state = lock(&state);
    match state.check(&headers[0]) {
        SequenceCheck::Append => {}
        SequenceCheck::Duplicate { base_offset } => {
            tracing::info!(topic, partition, offset = base_offset, producer_id = headers[0].producer_id, "duplicate batch answered with its original offset");
            let last = base_offset + headers[0].last_offset_delta as i64;
            // Durability of the original append is what the retry asks about.
            return Outcome { partition, result: Ok((base_offset, last)), flush_to: flush_target(node, &log, last + 1) };
        }
        SequenceCheck::Reject(code, msg) => {
            tracing::warn!(topic, partition, reason = %msg, "batch refused");
            return fail(code, msg);
        }
    }
    match log.append(&batches, LEADER_EPOCH) {
        Ok(out) => {
            let mut offset = out.base_offset;
            for h in &headers {
                state.record(h, offset);
                offset += h.record_count_i64();
            }
            Outcome { partition, result: Ok((out.base_offset, out.last_offset)), flush_to: flush_target(node, &log, out.last_offset + 1) }
        }
        Err(e) => {
            tracing::error!(topic, partition, error = %e, "append failed");
            fail(ResponseError::KafkaStorageError, e.to_string())
        }
    }
}

fn flush_target(node: &NodeState, log: &Arc<PartitionLog>, end: i64) -> Option<(Arc<PartitionLog>, i64)> {
    (node.store.policy() == FsyncPolicy::Always).then(|| (Arc::clone(log), end))
}

/// `version` gates fields: the codec refuses to encode a field the version does not have.
async fn answer(node: &NodeState, topics: Vec<(String, Vec<Outcome>)>, timeout: Duration, version: i16) -> ProduceResponse {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut responses = Vec::with_capacity(topics.len());
    for (name, outcomes) in topics {
        let mut partitions = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            let mut result = o.result;
            if let (Ok(_), Some((log, end))) = (&result, o.flush_to) {
                match tokio::time::timeout_at(deadline, log.wait_flushed(end)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => result = Err((ResponseError::KafkaStorageError, e.to_string())),
                    Err(_) => result = Err((ResponseError::RequestTimedOut, format!("not fsynced within {} ms", timeout.as_millis()))),
                }
            }
            let mut r = PartitionProduceResponse::default().with_index(o.partition);
            if version >= 5 {
                let log_start = node.topics.partition(&name, o.partition).map(|l| l.offsets().log_start_offset).unwrap_or(-1);
                r = r.with_log_start_offset(log_start);
            }
            match result {
                Ok((base, _last)) => r = r.with_base_offset(base),
                Err((code, msg)) => {
                    r = r.with_error_code(code.code()).with_base_offset(-1);
                    if version >= 8 {
                        r = r.with_error_message(Some(str_bytes(msg)));
                    }
                }
            }
            partitions.push(r);
        }
        responses.push(TopicProduceResponse::default().with_name(topic_name(&name)).with_partition_responses(partitions));
    }
    ProduceResponse::default().with_responses(responses)
}
