//! InitProducerId: a fresh producer id for an idempotent producer (no transactions).

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::state::NodeState;

/// v3+ lets a producer bump its epoch after an error (KIP-360); v5+ are for transactions.
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::InitProducerId, min: 0, max: 4 };

pub async fn handle(
    node: &NodeState,
    _ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let r = InitProducerIdResponse::default();
    if req.transactional_id.is_some() {
        return r
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    // A producer that already has an id asks for a bumped epoch: its sequences restart at 0.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX {
        tracing::warn!(
            producer_id = req.producer_id.0,
            epoch = req.producer_epoch + 1,
            "producer bumped its epoch (it gave up on in-flight batches)"
        );
        return r.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch + 1);
    }
    let allocated = node.topology.allocate_producer_id(node).await;
    match allocated {
        Ok((id, epoch)) => {
            tracing::info!(producer_id = id, "producer id allocated");
            r.with_producer_id(ProducerId(id)).with_producer_epoch(epoch)
        }
        Err(e) => {
            tracing::error!(error = %e, "could not allocate a producer id");
            r.with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        }
    }
}
