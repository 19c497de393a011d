//! The deferred half of Produce: what a partition's answer waits for before it is true (an
//! fsync, a Raft commit, a retry's first attempt, a majority confirming a refusal), one function
//! per kind of wait.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::ResponseError;
use tokio::time::Instant;

use super::identity::{replaced, stored_at, AtOffset, BatchId};
use super::{Committed, KafkaError, Outcome};
use crate::cluster::raft_group::{ProposeError, RaftGroup};
use crate::log::PartitionLog;
use crate::producers::{lock, PartitionProducers, PENDING_OFFSET};
use crate::raft::typ::CommandResult;
use crate::state::NodeState;

/// How often a retry waiting for its first attempt's commit looks again.
const ORIGINAL_POLL: Duration = Duration::from_millis(5);
/// Bound on confirming leadership with a majority before refusing a batch (`Wait::Refused`).
const CONFIRM_LIMIT: Duration = Duration::from_secs(1);

/// What must happen before a partition's answer is true.
pub(super) enum Wait {
    Nothing,
    /// Single node, fsync `always`: the log flushed up to this end offset.
    Flush(Arc<PartitionLog>, i64),
    /// Cluster: a retry of a batch this leader's log already holds at `base`; the answer waits
    /// until the group has committed past it (a new leader's log may hold entries not yet
    /// committed), and stands only if the committed entry there is still that batch.
    Committed {
        group: Arc<RaftGroup>,
        base: i64,
        batch: BatchId,
    },
    /// Cluster: a retry of a batch whose first attempt is still being replicated; answer with the
    /// first attempt's offsets once it has them.
    /// If this node stops leading meanwhile, the first attempt may never resolve here.
    Original {
        producers: Arc<Mutex<PartitionProducers>>,
        batch: BatchId,
        group: Arc<RaftGroup>,
    },
    /// Cluster: every proposed batch committed (`resolve_on_commit` records the offsets).
    Commit {
        receivers: Vec<Committed>,
        group: Arc<RaftGroup>,
    },
    /// Cluster: a batch the producer state refuses. The refusal stands only if a majority still
    /// confirms this node's leadership in its term; otherwise the answer is
    /// NOT_LEADER_OR_FOLLOWER. An idempotent client answers OUT_OF_ORDER_SEQUENCE_NUMBER for its
    /// oldest in-flight batch by re-sending every in-flight batch under a new epoch: duplicates
    /// of those already written. A deposed leader is where such a refusal comes from by mistake:
    /// cut off while its successor took the batch before this one, it is confirmed again by the
    /// node heartbeats after the heal, still in its old term, and its producer state lacks what
    /// the new leader appended.
    Refused {
        group: Arc<RaftGroup>,
        code: ResponseError,
        msg: String,
    },
}

/// Waits for one partition's durability condition; the final result.
pub(super) async fn settle(
    node: &NodeState,
    o: Outcome,
    deadline: Instant,
    timeout: Duration,
) -> Result<(i64, i64), KafkaError> {
    let result = o.result?;
    match o.wait {
        Wait::Nothing => Ok(result),
        Wait::Flush(log, end) => flushed(&log, end, deadline, timeout).await.map(|()| result),
        Wait::Committed { group, base, batch } => {
            retry_committed(node, &group, base, &batch, deadline).await.map(|()| result)
        }
        Wait::Original { producers, batch, group } => {
            first_attempt(node, &producers, &batch, &group, deadline, timeout).await
        }
        Wait::Refused { group, code, msg } => Err(confirm_refusal(node, &group, code, msg, deadline).await),
        Wait::Commit { receivers, group } => all_committed(node, receivers, &group, deadline, timeout).await,
    }
}

fn timed_out(timeout: Duration) -> KafkaError {
    (ResponseError::RequestTimedOut, format!("not durable within {} ms", timeout.as_millis()))
}

async fn flushed(
    log: &PartitionLog,
    end: i64,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), KafkaError> {
    match tokio::time::timeout_at(deadline, log.wait_flushed(end)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err((ResponseError::KafkaStorageError, e.to_string())),
        Err(_) => Err(timed_out(timeout)),
    }
}

/// A retry of a batch this leader's log holds at `base`: waits until the group has committed
/// that far, then checks the committed entry there is still that batch.
async fn retry_committed(
    node: &NodeState,
    group: &RaftGroup,
    base: i64,
    batch: &BatchId,
    deadline: Instant,
) -> Result<(), KafkaError> {
    let node_id = node.config.node_id as u64;
    let end = base + batch.last_offset_delta as i64 + 1;
    let mut rx = group.log.subscribe();
    loop {
        if rx.borrow_and_update().high_watermark >= end {
            // Committed up to `end`, but not necessarily with this batch: the entry the
            // producer state saw may have been replaced. Unknown outcome then, so the
            // client retries the same sequence (at whichever node leads by then).
            return match stored_at(&group.log, base, batch)? {
                AtOffset::Committed => Ok(()),
                _ => Err(replaced(group, base, batch)),
            };
        }
        let unknown =
            || (ResponseError::RequestTimedOut, format!("the batch at {base} is not committed yet"));
        tokio::select! {
            changed = tokio::time::timeout_at(deadline, rx.changed()) => match changed {
                Ok(Ok(())) => {}
                _ => return Err(unknown()),
            },
            _ = group.leadership_lost(node_id) => return Err(unknown()),
            _ = node.shutdown.cancelled() => return Err(unknown()),
        }
    }
}

/// A retry of a batch whose first attempt is still being replicated: the first attempt's
/// offsets, once its commit resolves them.
async fn first_attempt(
    node: &NodeState,
    producers: &Mutex<PartitionProducers>,
    batch: &BatchId,
    group: &RaftGroup,
    deadline: Instant,
    timeout: Duration,
) -> Result<(i64, i64), KafkaError> {
    loop {
        let resolved = lock(producers).offset_of(batch.producer_id, batch.base_sequence);
        match resolved {
            // Resolved by its commit, or named by a producer state rebuilt meanwhile from
            // this node's log, uncommitted tail included: answered once committed there.
            Some(base) if base != PENDING_OFFSET => match stored_at(&group.log, base, batch)? {
                AtOffset::Committed => return Ok((base, base + batch.last_offset_delta as i64)),
                AtOffset::Other => return Err(replaced(group, base, batch)),
                AtOffset::NotCommitted => {}
            },
            // Gone from the recent batches, or never resolved: its fate is unknown.
            None => {
                return Err((ResponseError::RequestTimedOut, "the first attempt's outcome is unknown".into()))
            }
            Some(_) => {}
        }
        if Instant::now() >= deadline || node.shutdown.is_cancelled() {
            return Err(timed_out(timeout));
        }
        // A zombie leader (paused, then resumed in an old term) holds first attempts that
        // will never resolve here; waiting out the whole request timeout stalled the
        // connection for 30 s. Unknown fate: the client retries with the same sequence.
        if !group.is_leader(node.config.node_id as u64) {
            return Err((
                ResponseError::RequestTimedOut,
                format!(
                    "node {} stopped leading {}; the first attempt's outcome is unknown here",
                    node.config.node_id, group.id
                ),
            ));
        }
        // Commits take milliseconds; a short poll keeps this simple and bounded.
        tokio::time::sleep(ORIGINAL_POLL).await;
    }
}

/// The refusal `code` stands only if a majority confirms this node still leads; otherwise
/// NOT_LEADER_OR_FOLLOWER.
async fn confirm_refusal(
    node: &NodeState,
    group: &RaftGroup,
    code: ResponseError,
    msg: String,
    deadline: Instant,
) -> KafkaError {
    let limit = deadline.saturating_duration_since(Instant::now()).min(CONFIRM_LIMIT);
    let outcome = tokio::time::timeout(limit, group.raft.ensure_linearizable()).await;
    let why = match outcome {
        Ok(Ok(_)) if group.is_leader(node.config.node_id as u64) => return (code, msg),
        Err(_) => format!("no majority confirmed it within {} ms", limit.as_millis()),
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(_)) => "it no longer leads".into(),
    };
    tracing::info!(group = %group.id, %why, refused = %msg, "a refused batch met an unconfirmed leader: not leader");
    (
        ResponseError::NotLeaderOrFollower,
        format!("node {} could not confirm it leads {} ({why})", node.config.node_id, group.id),
    )
}

/// Every proposed batch of the partition committed: the offsets from the first's base to the
/// last's end.
async fn all_committed(
    node: &NodeState,
    receivers: Vec<Committed>,
    group: &RaftGroup,
    deadline: Instant,
    timeout: Duration,
) -> Result<(i64, i64), KafkaError> {
    let mut first: Option<(i64, i64)> = None;
    let mut last = None;
    let node_id = node.config.node_id as u64;
    // A proposal may stay pending after this node stops leading: the entry can still
    // commit under the next leader, or be dropped. Its fate is unknown, so the answer is
    // REQUEST_TIMED_OUT, not NOT_LEADER_OR_FOLLOWER: the latter tells the client the batch
    // was not written, and an idempotent librdkafka then re-sends it under a bumped epoch
    // as new data — a duplicate if it did commit. After a timeout the client retries with
    // the same sequence numbers, which the new leader recognises.
    let not_leader = || {
        (
            ResponseError::RequestTimedOut,
            format!(
                "node {node_id} stopped leading {} before the commit; the batch may or may not be written",
                group.id
            ),
        )
    };
    for rx in receivers {
        let waited = tokio::select! {
            r = tokio::time::timeout_at(deadline, rx) => r,
            _ = group.leadership_lost(node_id) => return Err(not_leader()),
            _ = node.shutdown.cancelled() => return Err(not_leader()),
        };
        let committed = match waited {
            Err(_) => return Err(timed_out(timeout)),
            Ok(Err(_)) => Err(ProposeError::Stopped),
            Ok(Ok(r)) => r,
        };
        if let CommandResult::Batch { base_offset, last_offset } = committed.map_err(proposal_failed)? {
            first.get_or_insert((base_offset, last_offset));
            last = Some(last_offset);
        }
    }
    match (first, last) {
        (Some((base, _)), Some(last)) => Ok((base, last)),
        _ => Err((ResponseError::UnknownServerError, "commit answered without offsets".into())),
    }
}

/// The Kafka answer for a proposal that did not commit.
fn proposal_failed(e: ProposeError) -> KafkaError {
    match e {
        ProposeError::Stopped => (ResponseError::NotLeaderOrFollower, "the partition group stopped".into()),
        ProposeError::NotLeader { leader } => {
            (ResponseError::NotLeaderOrFollower, format!("leadership moved to {leader:?}"))
        }
        ProposeError::Failed(e) => (ResponseError::KafkaStorageError, e),
    }
}
