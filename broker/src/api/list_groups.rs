//! ListGroups (with the v4 state filter).

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ApiKey, GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::ListGroups, min: 0, max: 4 };

pub fn handle(node: &NodeState, ctx: &RequestContext, req: ListGroupsRequest) -> ListGroupsResponse {
    let filter: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    // Only the coordinator knows groups; other nodes (cluster mode) honestly list none.
    let listed = node.coordinator().map(|c| c.list()).unwrap_or_default();
    let groups = listed
        .into_iter()
        .filter(|g| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(&g.state)))
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(g.group_id)))
                .with_protocol_type(str_bytes(g.protocol_type));
            if ctx.api_version >= 4 {
                listed.with_group_state(str_bytes(g.state))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
