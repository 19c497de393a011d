//! One producer process of the workload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Recorder, WorkloadConfig};
use crate::history::{now_ns, Op, OpKind, OpType};
use crate::LabError;

/// Unacknowledged sends per producer: enough to keep the pipe full, few enough that a fault's
/// indeterminate window stays readable on the timeline.
const MAX_IN_FLIGHT: usize = 1000;
/// Separates the unique value from its padding in a payload.
pub const VALUE_END: u8 = b'|';

pub struct ProducerTask {
    producer: FutureProducer,
    process: u32,
    count: u64,
    config: WorkloadConfig,
    /// The topics sends go to, in turn (at least `config.topic`).
    topics: Vec<String>,
    recorder: Recorder,
    /// Held while an invocation is recorded and queued (see `send_one`).
    queue_order: std::sync::Mutex<()>,
}

impl ProducerTask {
    pub fn new(
        config: &WorkloadConfig,
        process: u32,
        count: u64,
        recorder: Recorder,
    ) -> crate::Result<ProducerTask> {
        let producer: FutureProducer = super::client_config()
            .set("bootstrap.servers", &config.bootstrap)
            .set("client.id", format!("clusterlab-producer-{process}"))
            .set("acks", &config.acks)
            .set("enable.idempotence", config.idempotence.to_string())
            .set("message.timeout.ms", config.message_timeout_ms.to_string())
            .set("linger.ms", "2")
            // Retries are what turn a leader change into a duplicate when idempotence is off.
            .set("retries", "2147483647")
            .set("retry.backoff.ms", "50")
            .set("topic.metadata.refresh.interval.ms", "1000")
            // A killed node must not keep the client in a long reconnect back-off once it is
            // back: the lab measures the cluster's failover, not librdkafka's patience.
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "500")
            .create()
            .map_err(|source| LabError::Kafka { what: format!("creating producer {process}"), source })?;
        Ok(ProducerTask {
            producer,
            process,
            count,
            config: config.clone(),
            topics: config.topics(),
            recorder,
            queue_order: Default::default(),
        })
    }

    /// Sends up to `count` values (or until the duration passes or `stop` fires), then waits
    /// for every outstanding delivery report.
    pub async fn run(self, stop: CancellationToken) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let deadline = tokio::time::Instant::now() + this.config.duration;
        let per_producer_rate =
            this.config.rate_per_sec.map(|r| (r as f64 / this.config.producers.max(1) as f64).max(1.0));
        let mut pace = per_producer_rate.map(|r| tokio::time::interval(Duration::from_secs_f64(1.0 / r)));
        let mut deliveries = tokio::task::JoinSet::new();
        for seq in 0..this.count {
            if let Some(p) = pace.as_mut() {
                tokio::select! {
                    _ = p.tick() => {}
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            if stop.is_cancelled() || tokio::time::Instant::now() >= deadline {
                break;
            }
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stop.cancelled() => break,
            };
            let value = format!("p{}-{seq:08}", this.process);
            // Every topic in turn: with several topics each gets an equal share of every
            // producer's sends (values stay unique across topics).
            let topic = this.topics[(seq % this.topics.len() as u64) as usize].clone();
            let task = Arc::clone(&this);
            deliveries.spawn(async move {
                task.send_one(value, &topic).await;
                drop(permit);
            });
            // Reap finished deliveries so the set does not grow with the run.
            while deliveries.try_join_next().is_some() {}
        }
        while deliveries.join_next().await.is_some() {}
        // flush blocks, and what it waits for passes the lab's proxies, which run on this runtime.
        let _ = tokio::task::spawn_blocking(move || this.producer.flush(Duration::from_secs(5))).await;
    }

    async fn send_one(&self, value: String, topic: &str) {
        let mut payload = value.clone().into_bytes();
        payload.push(VALUE_END);
        payload.resize(self.config.message_bytes.max(payload.len()), b'.');
        let started = Instant::now();
        let record: FutureRecord<'_, (), [u8]> = FutureRecord::to(topic).payload(&payload);
        // The history's invoke order must be the order librdkafka queued the sends in: the
        // checker holds an idempotent producer to it (nonmonotonic send). Sends run as tasks on
        // several threads, so recording and queueing happen under one lock (no await inside).
        let queued = {
            let _order = self.queue_order.lock().unwrap_or_else(|p| p.into_inner());
            self.recorder
                .record(Op::new(self.process, OpType::Invoke, OpKind::Send, topic).value(value.clone()));
            self.producer.send_result(record)
        };
        let outcome = match queued {
            Err((e, _)) => Err((OpType::Fail, e)), // never left this process
            Ok(delivery) => match delivery.await {
                Ok(Ok(d)) => Ok((d.partition, d.offset)),
                Ok(Err((e, _))) => Err((classify(&e), e)),
                Err(_) => Err((OpType::Info, KafkaError::Canceled)),
            },
        };
        let latency = started.elapsed().as_nanos() as u64;
        let op = match outcome {
            Ok((partition, offset)) => {
                let mut op =
                    Op::new(self.process, OpType::Ok, OpKind::Send, topic).value(value).latency(latency);
                op.partition = Some(partition);
                // acks=0 reports no offset: record it as unknown, not as -1.
                op.offset = (offset >= 0).then_some(offset);
                op
            }
            Err((op_type, e)) => Op::new(self.process, op_type, OpKind::Send, topic)
                .value(value)
                .latency(latency)
                .error(e.to_string()),
        };
        self.recorder.record(op.time(now_ns()));
    }
}

/// Whether a failed delivery certainly did not write (`fail`) or may have (`info`). Only errors
/// the broker returns before appending anything are certain; a timeout or a lost connection
/// may hide a write that succeeded.
fn classify(e: &KafkaError) -> OpType {
    match e.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::InvalidMessage
            | RDKafkaErrorCode::InvalidMessageSize
            | RDKafkaErrorCode::InvalidRequiredAcks
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::QueueFull,
        ) => OpType::Fail,
        _ => OpType::Info,
    }
}
