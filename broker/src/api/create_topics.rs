//! CreateTopics.

use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::raft::typ::NodeId;
use crate::state::NodeState;
use crate::topic_config::TopicConfigs;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::CreateTopics, min: 2, max: 7 };

pub async fn handle(
    node: &NodeState,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        topics.push(create_one(node, ctx, t, req.validate_only).await);
    }
    if !req.validate_only {
        let created: Vec<(String, i32)> = topics
            .iter()
            .filter(|t| t.error_code == 0)
            .map(|t| (t.name.to_string(), node.topology.partition_count(node, t.name.as_str()).unwrap_or(0)))
            .collect();
        wait_for_leaders(node, &created, req.timeout_ms).await;
    }
    CreateTopicsResponse::default().with_topics(topics)
}

/// One topic's result: checked, then created (or, validating only, looked up).
async fn create_one(
    node: &NodeState,
    ctx: &RequestContext,
    t: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let name = t.name.to_string();
    // Explicit replica assignments (one list per partition) give the partition count.
    let manual = manual_assignment(&t.assignments, t.num_partitions, t.replication_factor);
    let partitions = match &manual {
        Ok(Some(lists)) => lists.len() as i32,
        _ if t.num_partitions == -1 => node.config.default_partitions,
        _ => t.num_partitions,
    };
    // Kafka's -1 is "the broker's default" (`default.replication.factor`).
    let replication_factor = (t.replication_factor != -1).then_some(t.replication_factor);
    let mut base = CreatableTopicResult::default().with_name(t.name.clone());
    if ctx.api_version >= 5 {
        let default = node.config.cluster.as_ref().map_or(1, |c| c.replication_factor);
        base = base
            .with_num_partitions(partitions)
            .with_replication_factor(manual_rf(&manual).or(replication_factor).unwrap_or(default));
    }
    let created = match checked(node, &t, manual) {
        Err(e) => Err(e),
        Ok(_) if validate_only => {
            if node.topology.topic_exists(node, &name) {
                Err((ResponseError::TopicAlreadyExists, format!("topic '{name}' already exists")))
            } else {
                Ok(None)
            }
        }
        Ok((configs, manual)) => node
            .topology
            .create_topic(node, &name, partitions, replication_factor, configs, manual)
            .await
            .map(Some),
    };
    match created {
        Ok(Some(id)) if ctx.api_version >= 7 => base.with_topic_id(uuid::Uuid::from_bytes(id)),
        Ok(_) => base,
        Err((code, msg)) => base.with_error_code(code.code()).with_error_message(Some(str_bytes(msg))),
    }
}

/// The topic's configs and replica assignment, once they pass Kafka's checks in its order:
/// configs, then the assignment, then the replication factor.
fn checked(
    node: &NodeState,
    t: &CreatableTopic,
    manual: Result<ManualAssignment, KafkaError>,
) -> Result<(TopicConfigs, ManualAssignment), KafkaError> {
    // Asking for more replicas than there are brokers is an error, as Kafka says.
    let brokers = node.topology.brokers(node).len() as i16;
    // Configs are checked before anything is created: a typo is INVALID_CONFIG, not a
    // topic with a setting silently dropped.
    let configs = crate::topic_config::TOPIC
        .from_pairs(t.configs.iter().map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str()))))?;
    let manual = manual?;
    if t.replication_factor != -1 && !(1..=brokers).contains(&t.replication_factor) {
        let msg = format!(
            "replication factor {} is outside 1..={brokers} (the brokers of this cluster)",
            t.replication_factor
        );
        return Err((ResponseError::InvalidReplicationFactor, msg));
    }
    Ok((configs, manual))
}

/// Waits, up to the request's timeout (at most 30 s), until the new partitions have leaders. A
/// partition still leaderless then does not fail the request: the topic exists and its
/// election ends soon, which clients retry through (Kafka's KRaft answers likewise).
pub(super) async fn wait_for_leaders(node: &NodeState, topics: &[(String, i32)], timeout_ms: i32) {
    const MAX_WAIT_MS: i32 = 30_000;
    if timeout_ms <= 0 || topics.is_empty() {
        return;
    }
    let timeout = std::time::Duration::from_millis(timeout_ms.min(MAX_WAIT_MS) as u64);
    if !node.wait_for_leaders(topics, timeout).await {
        tracing::info!(?topics, timeout_ms, "answering before every new partition has a leader");
    }
}

type KafkaError = (ResponseError, String);

/// Explicit replica lists from the request, one per partition (`None`: none given).
type ManualAssignment = Option<Vec<Vec<NodeId>>>;

/// The replicas per partition of an explicit assignment.
fn manual_rf(manual: &Result<ManualAssignment, KafkaError>) -> Option<i16> {
    match manual {
        Ok(Some(lists)) => lists.first().map(|l| l.len() as i16),
        _ => None,
    }
}

/// Explicit replica assignments, in partition order; Kafka refuses them together with a
/// partition count or replication factor, and with gaps in the partition indexes.
fn manual_assignment(
    assignments: &[CreatableReplicaAssignment],
    num_partitions: i32,
    replication_factor: i16,
) -> Result<ManualAssignment, KafkaError> {
    if assignments.is_empty() {
        return Ok(None);
    }
    if num_partitions != -1 || replication_factor != -1 {
        return Err((
            ResponseError::InvalidRequest,
            "give either replica assignments or a partition count and replication factor, not both".into(),
        ));
    }
    let mut sorted: Vec<&CreatableReplicaAssignment> = assignments.iter().collect();
    sorted.sort_by_key(|a| a.partition_index);
    let mut lists = Vec::with_capacity(sorted.len());
    for (expected, a) in sorted.into_iter().enumerate() {
        if a.partition_index != expected as i32 {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("assignments must cover partitions 0..{} without gaps", assignments.len()),
            ));
        }
        let ids: Result<Vec<NodeId>, _> = a.broker_ids.iter().map(|b| NodeId::try_from(b.0)).collect();
        lists.push(
            ids.map_err(|_| (ResponseError::InvalidReplicaAssignment, "negative broker id".to_string()))?,
        );
    }
    Ok(Some(lists))
}
