//! CreateAcls: stores ACL bindings (Kafka's `kafka-acls --add`). Stored, not enforced: see
//! `crate::acls`. Each creation is answered alone: an invalid one INVALID_REQUEST with Kafka's
//! reason, the valid ones stored together (a single node's file, or one controller command).

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::acls::AclBinding;
use crate::state::NodeState;

/// v0 is gone from the codec (and from Kafka 4); librdkafka sends v1.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::CreateAcls, min: 1, max: 3 };

pub async fn handle(node: &NodeState, _ctx: &RequestContext, req: CreateAclsRequest) -> CreateAclsResponse {
    let bindings: Vec<AclBinding> = req.creations.into_iter().map(binding).collect();
    let checks: Vec<Result<(), String>> = bindings.iter().map(AclBinding::validate).collect();
    let valid: Vec<AclBinding> =
        bindings.iter().zip(&checks).filter(|(_, c)| c.is_ok()).map(|(b, _)| b.clone()).collect();
    let stored = if valid.is_empty() { Ok(()) } else { node.topology.create_acls(node, valid).await };
    let results = checks
        .into_iter()
        .map(|check| {
            let error = match check {
                Err(why) => Some((ResponseError::InvalidRequest, why)),
                Ok(()) => stored.clone().err(),
            };
            match error {
                None => AclCreationResult::default(),
                Some((code, why)) => {
                    tracing::debug!(error = %why, "ACL creation refused");
                    AclCreationResult::default()
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(why)))
                }
            }
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

fn binding(c: AclCreation) -> AclBinding {
    AclBinding {
        resource_type: c.resource_type,
        resource_name: c.resource_name.to_string(),
        pattern_type: c.resource_pattern_type,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: c.operation,
        permission: c.permission_type,
    }
}
