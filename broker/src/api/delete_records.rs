//! DeleteRecords: moves partitions' log start offsets up (Kafka's `kafka-delete-records`).
//!
//! Sent to each partition's leader. The offset must lie within the log (-1: the high
//! watermark); one at or below the current start changes nothing. Single node: the catalogue
//! keeps the start and whole segments below it are deleted. Cluster: the controller's metadata
//! keeps it and every replica applies it; files stay (the log is the Raft log, see
//! `PartitionLog::delete_segments_below`).

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteRecords, min: 0, max: 2 };

/// "Delete everything below the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.to_string();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(match delete(node, &name, p.partition_index, p.offset).await {
                Ok(low_watermark) => r.with_low_watermark(low_watermark),
                Err((code, msg)) => {
                    tracing::debug!(
                        topic = %name,
                        partition = p.partition_index,
                        offset = p.offset,
                        error = %msg,
                        "DeleteRecords refused"
                    );
                    r.with_low_watermark(-1).with_error_code(code.code())
                }
            });
        }
        topics.push(DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions));
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// The partition's log start after the request.
async fn delete(
    node: &NodeState,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, (ResponseError, String)> {
    let o = node.readable_log(topic, partition)?.offsets();
    let target = if offset == HIGH_WATERMARK { o.high_watermark } else { offset };
    if target < 0 || target > o.high_watermark {
        return Err((
            ResponseError::OffsetOutOfRange,
            format!("offset {offset} is outside {topic}-{partition}'s log 0..={}", o.high_watermark),
        ));
    }
    if target <= o.log_start_offset {
        return Ok(o.log_start_offset);
    }
    let start = node.topology.delete_records(node, topic, partition, target).await?;
    tracing::info!(topic, partition, offset = target, log_start = start, "records deleted");
    Ok(start)
}
