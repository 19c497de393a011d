//! CreateTopics.

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::CreateTopics, min: 2, max: 7 };

pub async fn handle(
    node: &NodeState,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        topics.push({
            let name = t.name.to_string();
            let partitions =
                if t.num_partitions == -1 { node.config.default_partitions } else { t.num_partitions };
            let mut base = CreatableTopicResult::default().with_name(t.name.clone());
            if ctx.api_version >= 5 {
                base = base.with_num_partitions(partitions).with_replication_factor(1);
            }
            // Replicas come from the cluster's configured factor; asking for more than there are
            // brokers is an error, as Kafka says.
            let brokers = node.cluster.as_ref().map_or(1, |c| c.kafka_addrs.len() as i16);
            let created = if t.replication_factor != -1 && !(1..=brokers).contains(&t.replication_factor) {
                let msg = format!(
                    "replication factor {} is outside 1..={brokers} (the brokers of this cluster)",
                    t.replication_factor
                );
                Err((ResponseError::InvalidReplicationFactor, msg))
            } else if req.validate_only {
                let exists = node.topics.get(&name).is_some()
                    || node.cluster.as_ref().is_some_and(|c| c.metadata().topics.contains_key(&name));
                if exists {
                    Err((ResponseError::TopicAlreadyExists, format!("topic '{name}' already exists")))
                } else {
                    Ok(None)
                }
            } else {
                match &node.cluster {
                    None => node.create_topic(&name, partitions).map(|info| Some(info.id)),
                    Some(c) => c.create_topic(&name, partitions).await.map(|a| Some(a.id)),
                }
            };
            match created {
                Ok(Some(id)) if ctx.api_version >= 7 => base.with_topic_id(uuid::Uuid::from_bytes(id)),
                Ok(_) => base,
                Err((code, msg)) => {
                    base.with_error_code(code.code()).with_error_message(Some(str_bytes(msg)))
                }
            }
        });
    }
    CreateTopicsResponse::default().with_topics(topics)
}
