//! DescribeCluster (KIP-700): the brokers, the controller and the cluster id, as Metadata gives
//! them, for admin clients that ask this instead.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;

use super::metadata::CLUSTER_ID;
use super::{str_bytes, ApiSpec, RequestContext};
use crate::acls::authorized;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DescribeCluster, min: 0, max: 1 };

/// `endpoint_type` 1: the brokers' client endpoints (2, controllers, exists in KRaft only).
const BROKERS: i8 = 1;

pub fn handle(
    node: &NodeState,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let r = DescribeClusterResponse::default().with_cluster_id(str_bytes(CLUSTER_ID));
    let r = if ctx.api_version >= 1 { r.with_endpoint_type(req.endpoint_type) } else { r };
    if ctx.api_version >= 1 && req.endpoint_type != BROKERS {
        return r.with_error_code(ResponseError::UnsupportedEndpointType.code()).with_error_message(Some(
            str_bytes(format!("endpoint type {} is not served; 1 (brokers) is", req.endpoint_type)),
        ));
    }
    let entry = |id: i32, addr: std::net::SocketAddr| {
        DescribeClusterBroker::default()
            .with_broker_id(BrokerId(id))
            .with_host(str_bytes(addr.ip().to_string()))
            .with_port(i32::from(addr.port()))
    };
    let brokers = node.topology.brokers(node).into_iter().map(|(id, addr)| entry(id, addr)).collect();
    let controller = node.topology.controller(node).unwrap_or(-1);
    let r = r.with_brokers(brokers).with_controller_id(BrokerId(controller));
    if req.include_cluster_authorized_operations {
        r.with_cluster_authorized_operations(authorized::CLUSTER)
    } else {
        r
    }
}
