//! CreatePartitions: grows topics. Counts only grow; explicit assignments are honoured in a
//! cluster when each names distinct brokers of the cluster, and on a single node only when they
//! name that node.

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

use super::{str_bytes, ApiSpec, RequestContext};
use crate::raft::typ::NodeId;
use crate::state::NodeState;

pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::CreatePartitions, min: 0, max: 3 };

type KafkaError = (ResponseError, String);

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(req.topics.len());
    let mut grown = Vec::new();
    for t in req.topics {
        let name = t.name.to_string();
        let manual: Option<Result<Vec<Vec<NodeId>>, KafkaError>> = t.assignments.map(|lists| {
            lists
                .into_iter()
                .map(|a| {
                    a.broker_ids
                        .into_iter()
                        .map(|b| {
                            NodeId::try_from(b.0).map_err(|_| {
                                (
                                    ResponseError::InvalidReplicaAssignment,
                                    format!("broker id {} is negative", b.0),
                                )
                            })
                        })
                        .collect()
                })
                .collect()
        });
        let outcome = match manual.transpose() {
            Err(e) => Err(e),
            Ok(manual) if req.validate_only => validate(node, &name, t.count, manual.as_deref()),
            Ok(manual) => node.topology.add_partitions(node, &name, t.count, manual).await,
        };
        if outcome.is_ok() && !req.validate_only {
            grown.push((name, t.count));
        }
        let r = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match outcome {
            Ok(()) => r,
            Err((code, msg)) => r.with_error_code(code.code()).with_error_message(Some(str_bytes(msg))),
        });
    }
    super::create_topics::wait_for_leaders(node, &grown, req.timeout_ms).await;
    CreatePartitionsResponse::default().with_results(results)
}

/// `validate_only`: the checks a real request makes, without the change.
fn validate(
    node: &NodeState,
    name: &str,
    total: i32,
    manual: Option<&[Vec<NodeId>]>,
) -> Result<(), KafkaError> {
    node.topology.check_assignment(node, manual)?;
    let current = node
        .topology
        .partition_count(node, name)
        .ok_or_else(|| (ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")))?;
    crate::topics::check_partition_growth(name, current, total)
}
