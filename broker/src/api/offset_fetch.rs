//! OffsetFetch: the committed offsets of a group (-1 where none). v8+ batch several groups.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse};

use super::{str_bytes, topic_name, ApiSpec, RequestContext};
use crate::groups::CommittedOffset;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetFetch, min: 1, max: 8 };

pub fn handle(node: &NodeState, ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if ctx.api_version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
                        .collect::<Vec<_>>()
                });
                let topics = by_topic(node, g.group_id.as_str(), wanted)
                    .into_iter()
                    .map(|(name, parts)| {
                        let partitions = parts
                            .into_iter()
                            .map(|o| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(o.partition)
                                    .with_committed_offset(o.offset)
                                    .with_metadata(o.metadata.map(str_bytes))
                                    .with_error_code(o.error_code)
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&name))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    // Before v8 the same data has a single group and differently named types.
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect::<Vec<_>>()
    });
    let topics = by_topic(node, req.group_id.as_str(), wanted)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts
                .into_iter()
                .map(|o| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(o.partition)
                        .with_committed_offset(o.offset)
                        .with_metadata(o.metadata.map(str_bytes))
                        .with_error_code(o.error_code)
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// The group's committed offsets (all of them, or the wanted ones), grouped by topic.
fn by_topic(
    node: &NodeState,
    group: &str,
    wanted: Option<Vec<(String, i32)>>,
) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut out: Vec<(String, Vec<CommittedOffset>)> = Vec::new();
    let offsets = match node.coordinator() {
        Some(c) => c.fetch_offsets(group, wanted.as_deref()),
        // Not the coordinator: every asked partition answers NOT_COORDINATOR so the client
        // looks the coordinator up again.
        None => wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(topic, partition)| CommittedOffset {
                topic,
                partition,
                offset: -1,
                metadata: None,
                error_code: kafka_protocol::ResponseError::NotCoordinator.code(),
            })
            .collect(),
    };
    for o in offsets {
        match out.iter_mut().find(|(t, _)| *t == o.topic) {
            Some((_, v)) => v.push(o),
            None => out.push((o.topic.clone(), vec![o])),
        }
    }
    out
}
