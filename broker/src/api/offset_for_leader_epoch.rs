//! OffsetForLeaderEpoch: a single node has one epoch (0) whose end is the high watermark.
//! Clients use this after a leader change to detect truncation; with replication the epochs
//! become Raft terms.

use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetForLeaderEpoch, min: 2, max: 4 };

pub fn handle(node: &NodeState, _ctx: &RequestContext, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.topic.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = EpochEndOffset::default().with_partition(p.partition);
                    match node.topics.partition(&name, p.partition) {
                        None => r.with_error_code(ResponseError::UnknownTopicOrPartition.code()).with_leader_epoch(-1).with_end_offset(-1),
                        Some(log) => r.with_leader_epoch(0).with_end_offset(log.offsets().high_watermark),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
