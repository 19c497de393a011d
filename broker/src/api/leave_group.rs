//! LeaveGroup: v0-2 name one member; v3+ a list (with static instance ids).

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{ApiKey, LeaveGroupRequest, LeaveGroupResponse};

use super::{str_bytes, ApiSpec, RequestContext};
use crate::groups::LeaveMember;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::LeaveGroup, min: 0, max: 5 };

pub fn handle(node: &NodeState, ctx: &RequestContext, req: LeaveGroupRequest) -> LeaveGroupResponse {
    let members: Vec<LeaveMember> = if ctx.api_version < 3 {
        vec![LeaveMember { member_id: req.member_id.to_string(), group_instance_id: None }]
    } else {
        req.members
            .iter()
            .map(|m| LeaveMember {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    };
    let (code, per_member) = match node.coordinator() {
        Some(c) => c.leave(req.group_id.as_str(), &members),
        None => (
            kafka_protocol::ResponseError::NotCoordinator.code(),
            vec![kafka_protocol::ResponseError::NotCoordinator.code(); members.len()],
        ),
    };
    let r = LeaveGroupResponse::default().with_error_code(code);
    if ctx.api_version < 3 {
        // Older versions have only the top-level code: surface the member's own error there.
        return r.with_error_code(if code != 0 { code } else { per_member.first().copied().unwrap_or(0) });
    }
    let responses = members
        .into_iter()
        .zip(per_member)
        .map(|(m, c)| {
            MemberResponse::default()
                .with_member_id(str_bytes(m.member_id))
                .with_group_instance_id(m.group_instance_id.map(str_bytes))
                .with_error_code(c)
        })
        .collect();
    r.with_members(responses)
}
