//! DescribeAcls: the stored ACL bindings a filter matches (Kafka's `kafka-acls --list`), grouped
//! by resource pattern as Kafka answers. Matching rules: `crate::acls::AclFilter::matches`.

use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::acls::{AclBinding, AclFilter};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeAcls, min: 1, max: 3 };

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let filter = AclFilter {
        resource_type: req.resource_type_filter,
        resource_name: req.resource_name_filter.map(|s| s.to_string()),
        pattern_type: req.pattern_type_filter,
        principal: req.principal_filter.map(|s| s.to_string()),
        host: req.host_filter.map(|s| s.to_string()),
        operation: req.operation,
        permission: req.permission_type,
    };
    let found = match filter.validate() {
        Err(why) => Err((ResponseError::InvalidRequest, why)),
        Ok(()) => node.topology.describe_acls(node, &filter).await,
    };
    match found {
        Ok(bindings) => DescribeAclsResponse::default().with_resources(by_resource(bindings)),
        Err((code, why)) => {
            tracing::debug!(error = %why, "DescribeAcls refused");
            DescribeAclsResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(str_bytes(why)))
        }
    }
}

/// One entry per resource pattern; `bindings` come sorted by pattern first (`AclSet` order).
fn by_resource(bindings: Vec<AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    for b in bindings {
        let acl = AclDescription::default()
            .with_principal(str_bytes(b.principal))
            .with_host(str_bytes(b.host))
            .with_operation(b.operation)
            .with_permission_type(b.permission);
        match resources.last_mut() {
            Some(r)
                if r.resource_type == b.resource_type
                    && r.pattern_type == b.pattern_type
                    && r.resource_name.as_str() == b.resource_name =>
            {
                r.acls.push(acl)
            }
            _ => resources.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type)
                    .with_resource_name(str_bytes(b.resource_name))
                    .with_pattern_type(b.pattern_type)
                    .with_acls(vec![acl]),
            ),
        }
    }
    resources
}
