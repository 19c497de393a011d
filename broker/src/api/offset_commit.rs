//! OffsetCommit: durable before the answer (the coordinator persists with fsync).

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::groups::OffsetCommit;
use crate::state::NodeState;

/// v2 is the crate's oldest; v9+ are for the new consumer protocol (KIP-848).
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetCommit, min: 2, max: 8 };

/// The commit fsyncs before it returns, so it runs on the blocking pool, not on the connection.
pub async fn handle(
    node: Arc<NodeState>,
    _ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let shape = req.clone();
    let codes = match tokio::task::spawn_blocking(move || commit(&node, &req)).await {
        Ok(codes) => codes,
        Err(e) => {
            tracing::error!(error = %e, "offset commit task failed");
            Vec::new() // every partition answers COORDINATOR_NOT_AVAILABLE below; clients retry
        }
    };
    respond(shape, codes)
}

/// One error code per requested partition, in request order.
fn commit(node: &NodeState, req: &OffsetCommitRequest) -> Vec<i16> {
    let mut codes = Vec::new();
    let mut known = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let exists = node.partition_exists(t.name.as_str(), p.partition_index);
            codes.push(if exists { 0 } else { ResponseError::UnknownTopicOrPartition.code() });
            if exists {
                known.push(OffsetCommit {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                });
            }
        }
    }
    let Some(coordinator) = node.coordinator() else {
        return vec![ResponseError::NotCoordinator.code(); codes.len()];
    };
    let mut committed = coordinator
        .commit_offsets(
            req.group_id.as_str(),
            req.generation_id_or_member_epoch,
            req.member_id.as_str(),
            &known,
        )
        .into_iter();
    for code in codes.iter_mut().filter(|c| **c == 0) {
        *code = committed.next().unwrap_or(ResponseError::CoordinatorNotAvailable.code());
    }
    codes
}

fn respond(req: OffsetCommitRequest, codes: Vec<i16>) -> OffsetCommitResponse {
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.next().unwrap_or(ResponseError::CoordinatorNotAvailable.code());
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
