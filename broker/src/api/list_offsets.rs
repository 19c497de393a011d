//! ListOffsets: earliest (-2), latest (-1), the record with the largest timestamp (-3, v7+)
//! or the first record at or after a timestamp.

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use super::{topic_name, ApiSpec, RequestContext};
use crate::state::NodeState;

/// v1 is the first with single offsets; v8+ add tiered-storage specials we have no use for.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ListOffsets, min: 1, max: 7 };

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

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
                    // As Kafka: until a new leader has applied an entry of its own term, its high
                    // watermark may lag the committed end, and an answer from it could send a
                    // consumer back to an older offset (OFFSET_NOT_AVAILABLE is retried).
                    if !node.topology.high_watermark_established(&name, p.partition_index) {
                        return r.with_error_code(ResponseError::OffsetNotAvailable.code()).with_offset(-1);
                    }
                    let o = log.offsets();
                    let r = match p.timestamp {
                        LATEST => r.with_offset(o.high_watermark),
                        EARLIEST => r.with_offset(o.log_start_offset),
                        // As Kafka: the first record at or after the time, with its timestamp;
                        // offset and timestamp -1 when every record is older.
                        ts if ts >= 0 => {
                            match found(log.offset_for_timestamp(ts, o.high_watermark), &name, &p) {
                                Ok(at) => at_record(r, at),
                                Err(code) => return r.with_error_code(code).with_offset(-1),
                            }
                        }
                        // KIP-734: the record with the largest timestamp, -1 in an empty partition.
                        MAX_TIMESTAMP if ctx.api_version >= 7 => {
                            match found(log.offset_of_max_timestamp(o.high_watermark), &name, &p) {
                                Ok(at) => at_record(r, at),
                                Err(code) => return r.with_error_code(code).with_offset(-1),
                            }
                        }
                        // Future specials: answer the end, a safe place to start.
                        _ => r.with_offset(o.high_watermark),
                    };
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

/// The answer naming a found record's offset and timestamp, or offset -1 when none was found.
fn at_record(r: ListOffsetsPartitionResponse, at: Option<(i64, i64)>) -> ListOffsetsPartitionResponse {
    match at {
        Some((offset, timestamp)) => r.with_offset(offset).with_timestamp(timestamp),
        None => r.with_offset(-1),
    }
}

/// A log search's outcome, or KAFKA_STORAGE_ERROR when the log could not be read.
fn found(
    outcome: crate::error::Result<Option<(i64, i64)>>,
    topic: &str,
    p: &kafka_protocol::messages::list_offsets_request::ListOffsetsPartition,
) -> Result<Option<(i64, i64)>, i16> {
    outcome.map_err(|e| {
        tracing::warn!(topic, partition = p.partition_index, error = %e, "ListOffsets could not read the log");
        ResponseError::KafkaStorageError.code()
    })
}
