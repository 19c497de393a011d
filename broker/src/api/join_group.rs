//! JoinGroup: parks until the group's rebalance completes (see `groups`).

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{ApiKey, JoinGroupRequest, JoinGroupResponse};

use super::{str_bytes, ApiSpec, RequestContext};
use crate::groups::JoinRequest;
use crate::state::NodeState;

/// v4 introduced MEMBER_ID_REQUIRED; v7 returns the protocol type. librdkafka 2.x uses v5.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::JoinGroup, min: 0, max: 7 };

pub async fn handle(node: &NodeState, ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let join = JoinRequest {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout; Kafka uses the session timeout for it.
        rebalance_timeout_ms: if ctx.api_version == 0 {
            req.session_timeout_ms
        } else {
            req.rebalance_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.into_iter().map(|p| (p.name.to_string(), p.metadata)).collect(),
        require_known_member_id: ctx.api_version >= 4,
    };
    let Some(coordinator) = node.coordinator() else {
        let response = JoinGroupResponse::default()
            .with_error_code(kafka_protocol::ResponseError::NotCoordinator.code())
            .with_generation_id(-1);
        return if ctx.api_version < 7 { response.with_protocol_name(Some(str_bytes(""))) } else { response };
    };
    let r = coordinator.join(join).await;
    let members = r
        .members
        .into_iter()
        .map(|m| {
            JoinGroupResponseMember::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(if ctx.api_version >= 5 {
                    m.group_instance_id.map(str_bytes)
                } else {
                    None
                })
                .with_metadata(m.metadata)
        })
        .collect();
    let v = ctx.api_version;
    let response = JoinGroupResponse::default()
        .with_error_code(r.error_code)
        .with_generation_id(r.generation_id)
        // Before v7 the protocol name is not nullable: an error answer carries "".
        .with_protocol_name(if v >= 7 {
            r.protocol_name.map(str_bytes)
        } else {
            Some(str_bytes(r.protocol_name.unwrap_or_default()))
        })
        .with_leader(str_bytes(r.leader))
        .with_member_id(str_bytes(r.member_id))
        .with_members(members);
    if v >= 7 {
        response.with_protocol_type(r.protocol_type.map(str_bytes))
    } else {
        response
    }
}
