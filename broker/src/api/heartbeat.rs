//! Heartbeat: keeps a member's session alive and tells it when to rejoin.

use kafka_protocol::messages::{ApiKey, HeartbeatRequest, HeartbeatResponse};

use super::{ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::Heartbeat, min: 0, max: 4 };

pub fn handle(node: &NodeState, _ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let code = match node.coordinator() {
        Some(c) => c.heartbeat(req.group_id.as_str(), req.generation_id, req.member_id.as_str()),
        None => kafka_protocol::ResponseError::NotCoordinator.code(),
    };
    HeartbeatResponse::default().with_error_code(code)
}
