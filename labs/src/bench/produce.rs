//! The produce half of a case: topic creation, warm-up and the measured, latency-recorded run.
//!
//! Every message's ack latency is measured from just before it is handed to librdkafka to the
//! moment its delivery report resolves. The run is closed-loop with at most `max_in_flight`
//! unacknowledged messages, so latency includes client-side batching (linger) and queueing
//! behind that window: it is latency under saturation, as `kafka-producer-perf-test` reports it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::{mpsc, Semaphore};

use crate::error::{LabError, Result};

/// Highest latency the histogram tracks (µs); a message slower than this is a failed case anyway.
pub const MAX_TRACKED_LATENCY_US: u64 = 120_000_000;

/// What the producer is configured with; printed in the setup so results are reproducible.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProducerSettings {
    pub linger_ms: u32,
    pub max_in_flight: usize,
    pub message_timeout_ms: u32,
}

impl ProducerSettings {
    /// The librdkafka properties beyond bootstrap and acks, as `(key, value)`.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        vec![
            ("linger.ms", self.linger_ms.to_string()),
            // Idempotence would force acks=all; off so acks=1 and acks=all measure just acks.
            ("enable.idempotence", "false".into()),
            ("compression.type", "none".into()),
            ("message.timeout.ms", self.message_timeout_ms.to_string()),
            // Larger than the in-flight window so enqueueing never hits QueueFull.
            ("queue.buffering.max.messages", (self.max_in_flight * 2).max(100_000).to_string()),
        ]
    }
}

/// The result of one measured produce run.
pub struct ProduceOutcome {
    pub messages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latency_us: Histogram<u64>,
}

pub use crate::workload::admin::create_topic;

/// A producer bound to one topic and message size.
pub struct BenchProducer {
    producer: FutureProducer,
    topic: String,
    payload: Arc<Vec<u8>>,
    max_in_flight: usize,
}

impl BenchProducer {
    pub fn new(
        bootstrap: &str,
        topic: &str,
        size: usize,
        acks: &str,
        settings: &ProducerSettings,
    ) -> Result<Self> {
        Self::with_overrides(bootstrap, topic, size, acks, settings, &[])
    }

    /// As [`BenchProducer::new`], with librdkafka properties that replace the settings' ones
    /// (e.g. `enable.idempotence=true` for the cluster cases).
    pub fn with_overrides(
        bootstrap: &str,
        topic: &str,
        size: usize,
        acks: &str,
        settings: &ProducerSettings,
        overrides: &[(&str, &str)],
    ) -> Result<Self> {
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", bootstrap).set("acks", acks).set("client.id", "clusterlab-bench");
        for (k, v) in settings.properties() {
            cfg.set(k, v);
        }
        for (k, v) in overrides {
            cfg.set(*k, *v);
        }
        let producer: FutureProducer = cfg.create().map_err(LabError::kafka("creating the producer"))?;
        // Constant payload: compression is off, so the bytes' content does not matter.
        let payload = Arc::new(vec![b'x'; size]);
        Ok(BenchProducer {
            producer,
            topic: topic.to_string(),
            payload,
            max_in_flight: settings.max_in_flight.max(1),
        })
    }

    /// Produces `count` messages and waits for every ack; fails on the first delivery error or
    /// when `timeout` passes.
    pub async fn run(&self, count: u64, timeout: Duration) -> Result<ProduceOutcome> {
        let what = format!("producing {count} messages to {}", self.topic);
        tokio::time::timeout(timeout, self.run_unbounded(count))
            .await
            .map_err(|_| LabError::Timeout { what, secs: timeout.as_secs_f64() })?
    }

    async fn run_unbounded(&self, count: u64) -> Result<ProduceOutcome> {
        let window = Arc::new(Semaphore::new(self.max_in_flight));
        // Each delivery is awaited in its own task so its latency is taken when it resolves,
        // not when a sequential loop gets round to it (partitions complete out of order).
        // The waiters are owned by this set: when the run ends early (an error, or its timeout
        // drops this future) the ones still waiting are aborted with it.
        let mut waiters = tokio::task::JoinSet::new();
        let (tx, mut rx) = mpsc::unbounded_channel::<std::result::Result<u64, KafkaError>>();
        let started = Instant::now();
        for _ in 0..count {
            let permit = window.clone().acquire_owned().await.expect("semaphore is never closed");
            while waiters.try_join_next().is_some() {} // reap the finished ones
            let sent_at = Instant::now();
            let delivery = self.enqueue().await?;
            let tx = tx.clone();
            waiters.spawn(async move {
                let r = match delivery.await {
                    Ok(Ok(_)) => Ok(sent_at.elapsed().as_micros() as u64),
                    Ok(Err((e, _))) => Err(e),
                    Err(_) => Err(KafkaError::Canceled),
                };
                drop(permit);
                let _ = tx.send(r);
            });
        }
        drop(tx);
        let mut latency_us = Histogram::<u64>::new_with_bounds(1, MAX_TRACKED_LATENCY_US, 3)
            .map_err(|e| LabError::Histogram(e.to_string()))?;
        let mut acked = 0u64;
        while let Some(r) = rx.recv().await {
            let us = r.map_err(LabError::kafka(format!("delivering to {}", self.topic)))?;
            latency_us.saturating_record(us.max(1));
            acked += 1;
        }
        let elapsed = started.elapsed();
        tracing::debug!(acked, ?elapsed, topic = %self.topic, "produce run done");
        Ok(ProduceOutcome { messages: acked, bytes: acked * self.payload.len() as u64, elapsed, latency_us })
    }

    /// Hands one message to librdkafka, yielding while its queue is full (it should not be:
    /// the queue is sized above the in-flight window).
    async fn enqueue(&self) -> Result<rdkafka::producer::DeliveryFuture> {
        loop {
            let record: FutureRecord<'_, (), [u8]> =
                FutureRecord::to(&self.topic).payload(self.payload.as_slice());
            match self.producer.send_result(record) {
                Ok(f) => return Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => return Err(LabError::kafka(format!("enqueueing to {}", self.topic))(e)),
            }
        }
    }
}
