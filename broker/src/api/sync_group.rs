//! SyncGroup: the leader hands out assignments; everyone receives their own.

use kafka_protocol::messages::{ApiKey, SyncGroupRequest, SyncGroupResponse};

use super::{str_bytes, ApiSpec, RequestContext};
use crate::groups::SyncRequest;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::SyncGroup, min: 0, max: 5 };

pub async fn handle(node: &NodeState, ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let sync = SyncRequest {
        group_id: req.group_id.to_string(),
        generation_id: req.generation_id,
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        protocol_type: req.protocol_type.map(|s| s.to_string()),
        protocol_name: req.protocol_name.map(|s| s.to_string()),
        assignments: req.assignments.into_iter().map(|a| (a.member_id.to_string(), a.assignment)).collect(),
    };
    let Some(coordinator) = node.coordinator() else {
        return SyncGroupResponse::default()
            .with_error_code(kafka_protocol::ResponseError::NotCoordinator.code());
    };
    let r = coordinator.sync(sync).await;
    let response = SyncGroupResponse::default().with_error_code(r.error_code).with_assignment(r.assignment);
    if ctx.api_version >= 5 {
        response
            .with_protocol_type(r.protocol_type.map(str_bytes))
            .with_protocol_name(r.protocol_name.map(str_bytes))
    } else {
        response
    }
}
