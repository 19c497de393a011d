//! AlterConfigs: replaces every explicitly set config of a topic, or every dynamic config of this
//! broker (Kafka's legacy semantics: what the request does not name goes back to its default).
//! A broker's static configs cannot be altered (`broker_configs`).

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use kafka_protocol::ResponseError;

use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, ApiSpec, RequestContext};
use crate::broker_configs::{self, DYNAMIC};
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
                match topic_config::TOPIC.from_pairs(pairs) {
                    Err(e) => Err(e),
                    Ok(_) if node.topic_configs(&name).is_none() => Err(no_topic(&name)),
                    Ok(_) if req.validate_only => Ok(()),
                    Ok(configs) => node.set_topic_configs(&name, configs).await,
                }
            }
            RESOURCE_BROKER => {
                let pairs =
                    || r.configs.iter().map(|c| (c.name.as_str(), c.value.as_ref().map(|v| v.as_str())));
                broker_configs::check_alter(&node.config, &name, pairs().map(|(n, _)| n))
                    .and_then(|()| DYNAMIC.from_pairs(pairs()))
                    .and_then(|values| set_dynamic(node, values, req.validate_only))
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

/// Stores a broker's dynamic configs (unless the request only validates).
pub(super) fn set_dynamic(
    node: &NodeState,
    values: topic_config::ConfigValues,
    validate_only: bool,
) -> Result<(), ConfigError> {
    if validate_only {
        return Ok(());
    }
    node.dynamic_configs.replace(values).map_err(|e| {
        (ResponseError::KafkaStorageError, format!("storing the dynamic broker configs failed: {e}"))
    })
}

/// Why a resource other than a topic or a broker cannot be altered here.
pub(super) fn not_alterable(resource_type: i8) -> ConfigError {
    (ResponseError::InvalidRequest, format!("resource type {resource_type} has no configs here"))
}
