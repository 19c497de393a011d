//! OffsetDelete: removes some committed offsets of a consumer group (Kafka's
//! `kafka-consumer-groups --delete-offsets`, librdkafka's DeleteConsumerGroupOffsets). Offsets
//! of a topic that a member still subscribes to stay (GROUP_SUBSCRIBED_TO_TOPIC); the removal is
//! as durable as a commit (same queue, same backend). Rules: `GroupCoordinator::delete_offsets`.

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetDeleteRequest, OffsetDeleteResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::groups::codes;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetDelete, min: 0, max: 0 };

pub async fn handle(
    node: &Arc<NodeState>,
    _ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let Some(coordinator) = node.coordinator() else {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::NotCoordinator.code());
    };
    // Partitions that do not exist answer UNKNOWN_TOPIC_OR_PARTITION, as Kafka's do; the
    // others go to the coordinator in one removal.
    let asked: Vec<(String, i32, bool)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index)))
        .map(|(t, p)| {
            let exists = node.partition_exists(&t, p);
            (t, p, exists)
        })
        .collect();
    let known: Vec<(String, i32)> = asked.iter().filter(|a| a.2).map(|(t, p, _)| (t.clone(), *p)).collect();
    let group = req.group_id.to_string();
    // The removal blocks on its write (fsync or replication): the blocking pool.
    let outcome = tokio::task::spawn_blocking(move || coordinator.delete_offsets(&group, &known))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "offset deletion task failed");
            Err(codes::COORDINATOR_NOT_AVAILABLE)
        });
    let mut known_codes = match outcome {
        Ok(codes) => codes.into_iter(),
        Err(code) => return OffsetDeleteResponse::default().with_error_code(code),
    };
    let mut topics: Vec<OffsetDeleteResponseTopic> = Vec::new();
    for (topic, partition, exists) in asked {
        let code = if exists {
            known_codes.next().unwrap_or(codes::NONE)
        } else {
            codes::UNKNOWN_TOPIC_OR_PARTITION
        };
        let answer =
            OffsetDeleteResponsePartition::default().with_partition_index(partition).with_error_code(code);
        match topics.last_mut() {
            Some(t) if t.name.as_str() == topic => t.partitions.push(answer),
            _ => topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(str_bytes(topic).into())
                    .with_partitions(vec![answer]),
            ),
        }
    }
    OffsetDeleteResponse::default().with_topics(topics)
}
