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
                        // Epochs are Raft terms. A client compares the end of its epoch with its
                        // position to detect truncation, so the end comes from the leader's log
                        // (where the next term starts, or its end), as Kafka's epoch cache does,
                        // never from the high watermark: a new leader's lags until it applies an
                        // entry of its term, and answering it rewound a consumer by 104 offsets
                        // in the seed-7 soak (a nonmonotonic poll).
                        Ok(log) if p.leader_epoch >= 0 => {
                            let (term, end) = log.epoch_end(p.leader_epoch as u64);
                            let term = term.map_or(-1, |t| t.min(i32::MAX as u64) as i32);
                            r.with_leader_epoch(term).with_end_offset(end)
                        }
                        Ok(log) => r
                            .with_leader_epoch(node.leader_epoch(&name, p.partition))
                            .with_end_offset(log.offsets().log_end_offset),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
