//! The consumer-group workload: members of one group that poll, commit offsets themselves (sync
//! and async in turn), and leave and rejoin during the run so the group rebalances under faults.
//!
//! Member 0 stays for the whole run (someone must drain the topic at the end); the others each
//! stay `churn` long, leave (a sync commit, then close), wait half a churn and join again. Every
//! assignment and every acknowledged commit is recorded, so the checker can tell a rebalance
//! re-delivery (fine) from a skip or a committed offset that went backwards (not fine).
//!
//! rdkafka's `BaseConsumer` runs on a blocking thread per member: a sync commit blocks, and the
//! rebalance and commit callbacks then run on the same thread as `poll`, so the recorded order
//! is the order the member saw.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::consumer::{close_within, poll_op, CLOSE_LIMIT};
use super::{Recorder, WorkloadConfig};
use crate::history::{Op, OpKind, OpType};
use crate::LabError;

/// How often a member commits its position: often enough that a rebalance re-delivers little,
/// rarely enough that commits do not crowd the controller's log.
const COMMIT_EVERY: Duration = Duration::from_millis(500);
/// One poll's wait: also how quickly a member notices the stop.
const POLL: Duration = Duration::from_millis(100);

/// Records what the group coordinator told this member.
struct MemberContext {
    recorder: Recorder,
    process: u32,
}

impl ClientContext for MemberContext {}

impl ConsumerContext for MemberContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            for e in tpl.elements() {
                let mut op = Op::new(self.process, OpType::Ok, OpKind::Assign, e.topic());
                op.partition = Some(e.partition());
                self.recorder.record(op);
            }
        }
        tracing::debug!(process = self.process, ?rebalance, "group rebalance");
    }

    /// The answer to an async commit (sync commits are recorded where they return: librdkafka
    /// sends no commit event for them).
    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.record_commits(offsets),
            Err(e) => tracing::debug!(process = self.process, error = %e, "async commit failed"),
        }
    }
}

impl MemberContext {
    fn record_commits(&self, offsets: &TopicPartitionList) {
        self.record(OpType::Ok, offsets);
    }

    fn record_attempts(&self, offsets: &TopicPartitionList) {
        self.record(OpType::Invoke, offsets);
    }

    fn record(&self, op_type: OpType, offsets: &TopicPartitionList) {
        for e in offsets.elements() {
            if let Offset::Offset(o) = e.offset() {
                let op = Op::new(self.process, op_type, OpKind::Commit, e.topic()).at(e.partition(), o);
                self.recorder.record(op);
            }
        }
    }
}

/// Commits the member's position. Each partition's attempt is recorded before it is sent (an
/// `invoke`: librdkafka may re-send an attempt after a newer one was acknowledged, and the
/// checker must know which offsets were ever asked for); a sync commit is recorded once the
/// coordinator acknowledged it, an async one in `commit_callback`.
fn commit(consumer: &BaseConsumer<MemberContext>, mode: CommitMode, process: u32) {
    let Ok(position) = consumer.position() else { return };
    consumer.context().record_attempts(&position);
    let sent = match mode {
        CommitMode::Sync => consumer.commit_consumer_state(mode),
        CommitMode::Async => commit_async(consumer),
    };
    match sent {
        Ok(()) if matches!(mode, CommitMode::Sync) => consumer.context().record_commits(&position),
        Ok(()) => {}
        Err(e) => tracing::debug!(process, error = %e, ?mode, "commit failed"),
    }
}

/// An async commit of the consumer's positions whose answer reaches `commit_callback`.
///
/// librdkafka reports the result of `rd_kafka_commit(async)` only to an `offset_commit_cb`,
/// which rust-rdkafka 0.39 does not set (its issue 856), so `commit_callback` never ran and no
/// async commit was ever recorded as acknowledged. `rd_kafka_commit_queue` with the consumer's
/// own queue makes librdkafka post the result there, where `poll` hands it to the callback.
fn commit_async(consumer: &BaseConsumer<MemberContext>) -> KafkaResult<()> {
    use rdkafka::bindings as rdsys;
    let rk = consumer.client().native_ptr();
    // SAFETY: `rk` is this live consumer's handle. The queue handle taken here is released
    // right after: the queued commit keeps its own reference to the queue until it answers.
    let err = unsafe {
        let queue = rdsys::rd_kafka_queue_get_consumer(rk);
        if queue.is_null() {
            return Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::UnknownGroup));
        }
        // Null offsets: commit the current positions of the assignment, as commit_consumer_state.
        let err = rdsys::rd_kafka_commit_queue(rk, std::ptr::null(), queue, None, std::ptr::null_mut());
        rdsys::rd_kafka_queue_destroy(queue);
        err
    };
    match RDKafkaErrorCode::from(err) {
        RDKafkaErrorCode::NoError => Ok(()),
        code => Err(KafkaError::ConsumerCommit(code)),
    }
}

fn join(
    config: &WorkloadConfig,
    process: u32,
    recorder: &Recorder,
) -> crate::Result<BaseConsumer<MemberContext>> {
    let context = MemberContext { recorder: recorder.clone(), process };
    let consumer: BaseConsumer<MemberContext> = super::client_config()
        .set("bootstrap.servers", &config.bootstrap)
        .set("group.id", format!("clusterlab-{}", config.topic))
        .set("client.id", format!("clusterlab-member-{process}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "1000")
        // A sync commit to an unreachable coordinator must give up, so a member can leave.
        .set("socket.timeout.ms", "10000")
        .set("reconnect.backoff.max.ms", "500")
        .create_with_context(context)
        .map_err(|source| LabError::Kafka { what: format!("creating group member {process}"), source })?;
    let topics = config.topics();
    consumer
        .subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())
        .map_err(|source| LabError::Kafka { what: format!("subscribing group member {process}"), source })?;
    Ok(consumer)
}

/// One member's life until `stop`: join, poll and commit, leave after `churn` (unless it is the
/// one that stays), wait, join again. Blocking: run it on a blocking thread.
pub fn run_member(
    config: WorkloadConfig,
    process: u32,
    stays: bool,
    churn: Duration,
    recorder: Recorder,
    stop: CancellationToken,
) {
    let mut sync = process.is_multiple_of(2);
    while !stop.is_cancelled() {
        let consumer = match join(&config, process, &recorder) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(process, error = %e, "group member could not join; retrying");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let leave_at = (!stays).then(|| Instant::now() + churn);
        let mut committed_at = Instant::now();
        while !stop.is_cancelled() && leave_at.is_none_or(|t| Instant::now() < t) {
            match consumer.poll(POLL) {
                Some(Ok(m)) => {
                    recorder.record(poll_op(process, m.topic(), m.payload(), m.partition(), m.offset()))
                }
                // Errors during faults are expected (coordinator moves); the client retries.
                Some(Err(e)) => tracing::debug!(process, error = %e, "group member poll error"),
                None => {}
            }
            if committed_at.elapsed() >= COMMIT_EVERY {
                commit(&consumer, if sync { CommitMode::Sync } else { CommitMode::Async }, process);
                sync = !sync;
                committed_at = Instant::now();
            }
        }
        // Leaving: hand the position over, then leave the group (close runs on drop).
        commit(&consumer, CommitMode::Sync, process);
        consumer.unsubscribe();
        close_within(consumer, process, CLOSE_LIMIT);
        tracing::debug!(process, "group member left");
        let back_at = Instant::now() + churn / 2;
        while !stop.is_cancelled() && Instant::now() < back_at {
            std::thread::sleep(POLL);
        }
    }
}
