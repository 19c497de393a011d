//! FindCoordinator: this node coordinates every group. Transactions are not coordinated here.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::FindCoordinator, min: 0, max: 4 };

const GROUP_KEY: i8 = 0;

pub fn handle(
    node: &NodeState,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    // The controller coordinates every group (a single node is its own controller).
    let coordinator = node.topology.controller(node);
    let addr = coordinator
        .and_then(|c| node.topology.brokers(node).into_iter().find(|(id, _)| *id == c))
        .map_or_else(|| node.advertised(), |(_, addr)| addr);
    let (code, message) = if req.key_type != GROUP_KEY {
        (
            ResponseError::CoordinatorNotAvailable.code(),
            Some(str_bytes("only group coordinators exist here; transactions are not supported")),
        )
    } else if coordinator.is_none() {
        (
            ResponseError::CoordinatorNotAvailable.code(),
            Some(str_bytes("no controller leader this node can reach yet")),
        )
    } else {
        (0, None)
    };
    let node_id = coordinator.unwrap_or(-1);
    let r = FindCoordinatorResponse::default();
    if ctx.api_version >= 4 {
        // v4 batches keys: one coordinator entry per key.
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node_id))
                    .with_host(str_bytes(addr.ip().to_string()))
                    .with_port(addr.port() as i32)
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        return r.with_coordinators(coordinators);
    }
    r.with_error_code(code)
        .with_error_message(message)
        .with_node_id(BrokerId(node_id))
        .with_host(str_bytes(addr.ip().to_string()))
        .with_port(addr.port() as i32)
}
