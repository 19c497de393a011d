//! IncrementalAlterConfigs: SET / DELETE / APPEND / SUBTRACT on a topic's configs; the rest of
//! its configs stay as they are. Broker configs are static here.

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use super::alter_configs::{no_topic, not_alterable};
use super::describe_configs::RESOURCE_TOPIC;
use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;
use crate::topic_config::{self, AlterOp};

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::IncrementalAlterConfigs, min: 0, max: 1 };

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let name = r.resource_name.to_string();
        let outcome = match r.resource_type {
            RESOURCE_TOPIC => {
                let ops: Result<Vec<_>, _> = r
                    .configs
                    .iter()
                    .map(|c| {
                        let op = AlterOp::from_code(c.config_operation)?;
                        Ok((c.name.to_string(), op, c.value.as_ref().map(|v| v.to_string())))
                    })
                    .collect();
                match (ops, node.topic_configs(&name)) {
                    (Err(e), _) => Err(e),
                    (_, None) => Err(no_topic(&name)),
                    (Ok(ops), Some(current)) => match topic_config::alter(&current, &ops) {
                        Err(e) => Err(e),
                        Ok(_) if req.validate_only => Ok(()),
                        Ok(configs) => node.set_topic_configs(&name, configs).await,
                    },
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
