//! DescribeGroups.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{ApiKey, DescribeGroupsRequest, DescribeGroupsResponse};

use super::{str_bytes, ApiSpec, RequestContext};
use crate::acls::authorized;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeGroups, min: 0, max: 5 };

pub fn handle(node: &NodeState, ctx: &RequestContext, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let Some(coordinator) = node.coordinator() else {
                return DescribedGroup::default()
                    .with_error_code(kafka_protocol::ResponseError::NotCoordinator.code())
                    .with_group_id(id);
            };
            let d = coordinator.describe(id.as_str());
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(if ctx.api_version >= 4 {
                            m.group_instance_id.map(str_bytes)
                        } else {
                            None
                        })
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            let authorized_operations = if ctx.api_version >= 3 && req.include_authorized_operations {
                authorized::GROUP
            } else {
                i32::MIN
            };
            DescribedGroup::default()
                .with_authorized_operations(authorized_operations)
                .with_error_code(d.error_code)
                .with_group_id(id)
                .with_group_state(str_bytes(d.state))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}
