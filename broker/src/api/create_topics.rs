//! CreateTopics.

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::CreateTopics, min: 2, max: 7 };

pub fn handle(node: &NodeState, ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.to_string();
            let partitions = if t.num_partitions == -1 { node.config.default_partitions } else { t.num_partitions };
            let mut base = CreatableTopicResult::default().with_name(t.name.clone());
            if ctx.api_version >= 5 {
                base = base.with_num_partitions(partitions).with_replication_factor(1);
            }
            // A single node holds one replica of everything; asking for more is an error, as Kafka says.
            if !matches!(t.replication_factor, -1 | 1) {
                let msg = format!("replication factor {} is larger than the 1 broker of this cluster", t.replication_factor);
                return base.with_error_code(ResponseError::InvalidReplicationFactor.code()).with_error_message(Some(str_bytes(msg)));
            }
            if req.validate_only {
                let exists = node.topics.get(&name).is_some();
                return if exists {
                    base.with_error_code(ResponseError::TopicAlreadyExists.code())
                } else {
                    base
                };
            }
            match node.create_topic(&name, partitions) {
                Ok(info) if ctx.api_version >= 7 => base.with_topic_id(uuid::Uuid::from_bytes(info.id)),
                Ok(_) => base,
                Err((code, msg)) => base.with_error_code(code.code()).with_error_message(Some(str_bytes(msg))),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}
