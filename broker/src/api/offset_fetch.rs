//! OffsetFetch: the committed offsets of a group (-1 where none). v8+ batch several groups.
//!
//! Cluster mode: answered only by the coordinator of the current controller term, and only
//! after a majority confirmed that leadership. A controller leader cut off from the others
//! keeps its role until it hears of a new term; answering from its applied offsets then handed
//! a member an offset older than one the new coordinator had acknowledged.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse};

use kafka_protocol::ResponseError;

use super::{str_bytes, topic_name, ApiSpec, RequestContext};
use crate::groups::{CommittedOffset, GroupCoordinator};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetFetch, min: 1, max: 8 };

/// How long the controller's Raft leader waits to count as coordinator again before it answers
/// NOT_COORDINATOR: long enough for a stall of the machine, short against a real failover.
const BLIP_WAIT: Duration = Duration::from_millis(500);
/// How often that wait looks again (liveness changes without an event to await).
const BLIP_RECHECK: Duration = Duration::from_millis(10);

pub async fn handle(node: &NodeState, ctx: &RequestContext, req: OffsetFetchRequest) -> OffsetFetchResponse {
    let coordinator = match coordinator_after_blip(node).await {
        None => None,
        Some((c, term)) => match node.topology.confirm_coordinator(term).await {
            Ok(()) => Some(c),
            Err(e) => {
                tracing::info!(error = %e, "offset fetch refused");
                None
            }
        },
    };
    respond(coordinator.as_deref(), ctx, req)
}

/// The coordinator that may answer, waiting up to `BLIP_WAIT` while this node leads the
/// controller in Raft but does not count as its coordinator at this moment (its peers unheard
/// for a few heartbeats in a stall of the machine, or its new term's first entry not applied
/// yet). NOT_COORDINATOR answered in such a blip of ~25 ms failed librdkafka's `committed()`,
/// which does not retry it (its test 0030, 2 of 20 runs).
async fn coordinator_after_blip(node: &NodeState) -> Option<(Arc<GroupCoordinator>, Option<u64>)> {
    let deadline = Instant::now() + BLIP_WAIT;
    loop {
        let found = node.coordinator_with_term();
        if found.is_some() || !node.topology.coordinator_may_return() || Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(BLIP_RECHECK).await;
    }
}

fn respond(
    coordinator: Option<&GroupCoordinator>,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if ctx.api_version >= 8 {
        let groups = req.groups.iter().map(|g| group_offsets(coordinator, g)).collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    respond_single_group(coordinator, ctx.api_version, &req)
}

/// One group of a v8+ request: its offsets by topic, or NOT_COORDINATOR in its error code.
fn group_offsets(
    coordinator: Option<&GroupCoordinator>,
    g: &OffsetFetchRequestGroup,
) -> OffsetFetchResponseGroup {
    let wanted = g.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect::<Vec<_>>()
    });
    let topics = by_topic(coordinator, g.group_id.as_str(), wanted)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts.into_iter().map(grouped_partition).collect();
            OffsetFetchResponseTopics::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    let code = if coordinator.is_some() { 0 } else { ResponseError::NotCoordinator.code() };
    OffsetFetchResponseGroup::default()
        .with_group_id(g.group_id.clone())
        .with_topics(topics)
        .with_error_code(code)
}

fn grouped_partition(o: CommittedOffset) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(o.partition)
        .with_committed_offset(o.offset)
        .with_committed_leader_epoch(o.leader_epoch)
        .with_metadata(o.metadata.map(str_bytes))
        .with_error_code(o.error_code)
}

/// Before v8 the same data has a single group and differently named types.
fn respond_single_group(
    coordinator: Option<&GroupCoordinator>,
    api_version: i16,
    req: &OffsetFetchRequest,
) -> OffsetFetchResponse {
    let wanted = req.topics.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partition_indexes.iter().map(|p| (t.name.to_string(), *p)))
            .collect::<Vec<_>>()
    });
    let topics = by_topic(coordinator, req.group_id.as_str(), wanted)
        .into_iter()
        .map(|(name, parts)| {
            let partitions = parts.into_iter().map(|o| single_group_partition(o, api_version)).collect();
            OffsetFetchResponseTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    // v2+ has a top-level code: the one a client looks at when it asked for every partition
    // (no partitions to carry the code).
    match (coordinator, api_version >= 2) {
        (None, true) => response.with_error_code(ResponseError::NotCoordinator.code()),
        _ => response,
    }
}

fn single_group_partition(o: CommittedOffset, api_version: i16) -> OffsetFetchResponsePartition {
    OffsetFetchResponsePartition::default()
        .with_partition_index(o.partition)
        .with_committed_offset(o.offset)
        .with_committed_leader_epoch(if api_version >= 5 { o.leader_epoch } else { -1 })
        .with_metadata(o.metadata.map(str_bytes))
        .with_error_code(o.error_code)
}

/// The group's committed offsets (all of them, or the wanted ones), grouped by topic.
fn by_topic(
    coordinator: Option<&GroupCoordinator>,
    group: &str,
    wanted: Option<Vec<(String, i32)>>,
) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut out: Vec<(String, Vec<CommittedOffset>)> = Vec::new();
    let offsets = match coordinator {
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
                leader_epoch: -1,
                error_code: ResponseError::NotCoordinator.code(),
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
