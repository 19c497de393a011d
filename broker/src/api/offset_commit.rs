//! OffsetCommit: durable before the answer (the coordinator persists with fsync).

use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};

use std::sync::Arc;

use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::groups::OffsetCommit;
use crate::state::NodeState;

/// v2 is the crate's oldest; v9+ are for the new consumer protocol (KIP-848).
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetCommit, min: 2, max: 8 };

/// The commit fsyncs before it returns, so it runs on the blocking pool, not on the connection.
pub async fn handle(node: Arc<NodeState>, _ctx: &RequestContext, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let fallback = req.clone();
    match tokio::task::spawn_blocking(move || commit(&node, req)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "offset commit task failed");
            failed(fallback)
        }
    }
}

fn failed(req: OffsetCommitRequest) -> OffsetCommitResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(ResponseError::CoordinatorNotAvailable.code()))
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

fn commit(node: &NodeState, req: OffsetCommitRequest) -> OffsetCommitResponse {
    let commits: Vec<OffsetCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| OffsetCommit {
                topic: t.name.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
        .collect();
    let codes = node.groups.commit_offsets(req.group_id.as_str(), req.generation_id_or_member_epoch, req.member_id.as_str(), &commits);
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| OffsetCommitResponsePartition::default().with_partition_index(p.partition_index).with_error_code(codes.next().unwrap_or(0)))
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
