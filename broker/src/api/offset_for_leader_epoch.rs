//! OffsetForLeaderEpoch: the leader epoch is the Raft term (0 on a single node).
//! Clients use this after a leader change to detect truncation; with replication the epochs
//! become Raft terms.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{ApiKey, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetForLeaderEpoch, min: 2, max: 4 };

pub fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
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
                    match node.readable_log(&name, p.partition) {
                        Err((code, _)) => {
                            r.with_error_code(code.code()).with_leader_epoch(-1).with_end_offset(-1)
                        }
                        // Epochs are Raft terms; the current one ends at the high watermark.
                        // Clients only compare that end with their position to detect truncation.
                        Ok(log) => r
                            .with_leader_epoch(node.leader_epoch(&name, p.partition))
                            .with_end_offset(log.offsets().high_watermark),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
