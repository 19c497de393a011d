//! DeleteAcls: removes the stored ACL bindings each filter matches (Kafka's `kafka-acls
//! --remove`) and lists them per filter. The valid filters go together (one file write, or one
//! controller command); an invalid one is answered INVALID_REQUEST alone.

use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::acls::{AclBinding, AclFilter};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteAcls, min: 1, max: 3 };

pub async fn handle(node: &NodeState, _ctx: &RequestContext, req: DeleteAclsRequest) -> DeleteAclsResponse {
    let filters: Vec<AclFilter> = req.filters.into_iter().map(filter).collect();
    let checks: Vec<Result<(), String>> = filters.iter().map(AclFilter::validate).collect();
    let valid: Vec<AclFilter> =
        filters.iter().zip(&checks).filter(|(_, c)| c.is_ok()).map(|(f, _)| f.clone()).collect();
    let deleted =
        if valid.is_empty() { Ok(Vec::new()) } else { node.topology.delete_acls(node, valid).await };
    let mut matched = match &deleted {
        Ok(m) => m.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    let results = checks
        .into_iter()
        .map(|check| {
            let error = match check {
                Err(why) => Some((ResponseError::InvalidRequest, why)),
                Ok(()) => deleted.as_ref().err().cloned(),
            };
            match error {
                Some((code, why)) => {
                    tracing::debug!(error = %why, "DeleteAcls filter refused");
                    DeleteAclsFilterResult::default()
                        .with_error_code(code.code())
                        .with_error_message(Some(str_bytes(why)))
                }
                None => DeleteAclsFilterResult::default().with_matching_acls(
                    matched.next().unwrap_or_default().into_iter().map(matching).collect(),
                ),
            }
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}

fn filter(f: DeleteAclsFilter) -> AclFilter {
    AclFilter {
        resource_type: f.resource_type_filter,
        resource_name: f.resource_name_filter.map(|s| s.to_string()),
        pattern_type: f.pattern_type_filter,
        principal: f.principal_filter.map(|s| s.to_string()),
        host: f.host_filter.map(|s| s.to_string()),
        operation: f.operation,
        permission: f.permission_type,
    }
}

fn matching(b: AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(b.resource_type)
        .with_resource_name(str_bytes(b.resource_name))
        .with_pattern_type(b.pattern_type)
        .with_principal(str_bytes(b.principal))
        .with_host(str_bytes(b.host))
        .with_operation(b.operation)
        .with_permission_type(b.permission)
}
