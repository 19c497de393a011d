//! ListOffsets: earliest (-2), latest (-1) or the first offset at or after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use super::{topic_name, ApiSpec, RequestContext};
use crate::state::NodeState;

/// v1 is the first with single offsets; v8+ add tiered-storage specials we have no use for.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ListOffsets, min: 1, max: 7 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

pub fn handle(node: &NodeState, ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1);
                    let log = match node.readable_log(&name, p.partition_index) {
                        Ok(log) => log,
                        Err((code, _)) => return r.with_error_code(code.code()).with_offset(-1),
                    };
                    let o = log.offsets();
                    let offset = match p.timestamp {
                        LATEST => o.high_watermark,
                        EARLIEST => o.log_start_offset,
                        ts if ts >= 0 => log
                            .offset_for_timestamp(ts)
                            .filter(|&off| off < o.high_watermark)
                            .unwrap_or(o.high_watermark),
                        // -3 (max timestamp) and future specials: answer the end, a safe place to start.
                        _ => o.high_watermark,
                    };
                    let r = r.with_offset(offset);
                    if ctx.api_version >= 4 {
                        r.with_leader_epoch(node.leader_epoch(&name, p.partition_index))
                    } else {
                        r
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
