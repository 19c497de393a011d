//! IncrementalAlterConfigs: SET / DELETE / APPEND / SUBTRACT on a topic's configs or this
//! broker's dynamic configs; the rest stay as they are. A broker's static configs cannot be
//! altered (`broker_configs`).

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{no_topic, not_alterable, set_dynamic};
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{str_bytes, ApiSpec, RequestContext};
use crate::broker_configs::{self, DYNAMIC};
use crate::state::NodeState;
use crate::topic_config::{self, AlterOp, ConfigError};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::IncrementalAlterConfigs, min: 0, max: 1 };

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let name = r.resource_name.to_string();
        let ops: Result<Vec<_>, ConfigError> = r
            .configs
            .iter()
            .map(|c| {
                let op = AlterOp::from_code(c.config_operation)?;
                Ok((c.name.to_string(), op, c.value.as_ref().map(|v| v.to_string())))
            })
            .collect();
        let outcome = match (ops, r.resource_type) {
            (Err(e), _) => Err(e),
            (Ok(ops), RESOURCE_TOPIC) => match node.topic_configs(&name) {
                None => Err(no_topic(&name)),
                Some(current) => match topic_config::TOPIC.alter(&current, &ops) {
                    Err(e) => Err(e),
                    Ok(_) if req.validate_only => Ok(()),
                    Ok(configs) => node.set_topic_configs(&name, configs).await,
                },
            },
            (Ok(ops), RESOURCE_BROKER) => {
                broker_configs::check_alter(&node.config, &name, ops.iter().map(|o| o.0.as_str()))
                    .and_then(|()| DYNAMIC.alter(&node.dynamic_configs.get(), &ops))
                    .and_then(|values| set_dynamic(node, values, req.validate_only))
            }
            (Ok(_), other) => Err(not_alterable(other)),
        };
        let resp = AlterConfigsResourceResponse::default()
            .with_resource_type(r.resource_type)
            .with_resource_name(r.resource_name);
        responses.push(match outcome {
            Ok(()) => resp,
            Err((code, msg)) => resp.with_error_code(code.code()).with_error_message(Some(str_bytes(msg))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
