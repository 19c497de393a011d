//! OffsetCommit: durable before the answer (the coordinator persists with fsync).

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse, ResponseKind};
use kafka_protocol::ResponseError;

use super::{later, ApiSpec, Reply, RequestContext};
use crate::groups::{GroupCoordinator, OffsetCommit, PendingCommit};
use crate::state::NodeState;

/// v2 is the crate's oldest; v9+ are for the new consumer protocol (KIP-848).
pub const SPEC: ApiSpec = ApiSpec { key: ApiKey::OffsetCommit, min: 2, max: 8 };

/// Checked and queued now, at dispatch — in the order the connection received its commits, so
/// a consumer's async commits of 48 then 52 never end at 48 (librdkafka's test 0030 saw it when
/// two blocking tasks raced for the queue) — then made durable on the blocking pool: the write
/// fsyncs (or replicates), which must not hold the connection.
pub fn handle(node: &Arc<NodeState>, ctx: &RequestContext, req: OffsetCommitRequest) -> Reply {
    let (codes, pending) = start(node, &req);
    if tracing::enabled!(tracing::Level::DEBUG) {
        // Which member sent which offsets in which generation: what a chaos timeline needs to
        // tell a client's retried commit from the broker applying one twice.
        let offsets: Vec<String> = req
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(move |p| format!("{}-{}@{}", t.name.as_str(), p.partition_index, p.committed_offset))
            })
            .collect();
        tracing::debug!(
            client = %ctx.client_id,
            group = req.group_id.as_str(),
            member = req.member_id.as_str(),
            generation = req.generation_id_or_member_epoch,
            offsets = %offsets.join(","),
            codes = ?codes,
            "offset commit received"
        );
    }
    later(async move {
        let codes = match pending {
            Some((coordinator, pending)) => {
                // Awaited here; if the request is dropped, the task still ends with its one write.
                match tokio::task::spawn_blocking(move || coordinator.finish_commit(pending)).await {
                    Ok(committed) => merge(codes, committed),
                    Err(e) => {
                        tracing::error!(error = %e, "offset commit task failed");
                        Vec::new() // every partition answers COORDINATOR_NOT_AVAILABLE; clients retry
                    }
                }
            }
            None => codes,
        };
        ResponseKind::OffsetCommit(respond(req, codes))
    })
}

/// One error code per requested partition, in request order (unknown partitions answered now),
/// and the queued commit of the known ones.
fn start(
    node: &NodeState,
    req: &OffsetCommitRequest,
) -> (Vec<i16>, Option<(Arc<GroupCoordinator>, PendingCommit)>) {
    let mut codes = Vec::new();
    let mut known = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let exists = node.partition_exists(t.name.as_str(), p.partition_index);
            codes.push(if exists { 0 } else { ResponseError::UnknownTopicOrPartition.code() });
            if exists {
                known.push(OffsetCommit {
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    leader_epoch: p.committed_leader_epoch,
                });
            }
        }
    }
    let Some(coordinator) = node.commit_coordinator() else {
        return (vec![ResponseError::NotCoordinator.code(); codes.len()], None);
    };
    let pending = coordinator.start_commit(
        req.group_id.as_str(),
        req.generation_id_or_member_epoch,
        req.member_id.as_str(),
        &known,
    );
    (codes, Some((coordinator, pending)))
}

/// The known partitions' codes, from the commit, into their places.
fn merge(mut codes: Vec<i16>, committed: Vec<i16>) -> Vec<i16> {
    let mut committed = committed.into_iter();
    for code in codes.iter_mut().filter(|c| **c == 0) {
        *code = committed.next().unwrap_or(ResponseError::CoordinatorNotAvailable.code());
    }
    codes
}

fn respond(req: OffsetCommitRequest, codes: Vec<i16>) -> OffsetCommitResponse {
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.next().unwrap_or(ResponseError::CoordinatorNotAvailable.code());
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
