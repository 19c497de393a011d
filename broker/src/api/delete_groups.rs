//! DeleteGroups: removes groups without members and their committed offsets (Kafka's
//! `kafka-consumer-groups --delete`). A group with members answers NON_EMPTY_GROUP, an unknown
//! one GROUP_ID_NOT_FOUND; the removal is as durable as a commit (same queue, same backend).

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::DeleteGroups, min: 0, max: 2 };

pub async fn handle(
    node: &Arc<NodeState>,
    _ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for id in req.groups_names {
        let code = match node.coordinator() {
            None => ResponseError::NotCoordinator.code(),
            Some(coordinator) => {
                let group = id.to_string();
                // The removal blocks on its write (fsync or replication): the blocking pool.
                // Awaited here; if the request is dropped, the task still ends with its one write.
                tokio::task::spawn_blocking(move || coordinator.delete_group(&group)).await.unwrap_or_else(
                    |e| {
                        tracing::error!(error = %e, "group deletion task failed");
                        ResponseError::CoordinatorNotAvailable.code()
                    },
                )
            }
        };
        results.push(DeletableGroupResult::default().with_group_id(id).with_error_code(code));
    }
    DeleteGroupsResponse::default().with_results(results)
}
