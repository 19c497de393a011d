//! AlterConfigs: replaces every explicitly set config of a topic (Kafka's legacy semantics:
//! what the request does not name goes back to its default). Broker configs are static here.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::ResponseError;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;
use crate::topic_config::{self, ConfigError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::AlterConfigs, min: 0, max: 2 };

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let name = r.resource_name.to_string();
        let outcome = match r.resource_type {
            RESOURCE_TOPIC => {
                let pairs = r.configs.iter().map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())));
                match topic_config::from_pairs(pairs) {
                    Err(e) => Err(e),
                    Ok(_) if node.topic_configs(&name).is_none() => Err(no_topic(&name)),
                    Ok(_) if req.validate_only => Ok(()),
                    Ok(configs) => node.set_topic_configs(&name, configs).await,
                }
            }
            other => Err(not_alterable(other)),
        };
        let resp = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        responses.push(match outcome {
            Ok(()) => resp,
            Err((code, msg)) => resp.with_error_code(code.code()).with_error_message(Some(str_bytes(msg))),
        });
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub(super) fn no_topic(name: &str) -> ConfigError {
    (ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist"))
}

/// Why a resource other than a topic cannot be altered here.
pub(super) fn not_alterable(resource_type: i8) -> ConfigError {
    if resource_type == RESOURCE_BROKER {
        (
            ResponseError::InvalidConfig,
            "broker configs are static here: set them in the broker's config file or flags and restart"
                .into(),
        )
    } else {
        (ResponseError::InvalidRequest, format!("resource type {resource_type} has no configs here"))
    }
}
