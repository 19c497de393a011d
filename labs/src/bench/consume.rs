//! The consume half of a case: read the whole topic from the beginning, as fast as possible.
//!
//! Partitions are assigned directly (no group membership), so this measures the fetch path alone
//! and does not depend on the group coordinator.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{LabError, Result};

/// Consumer properties beyond bootstrap, as `(key, value)`; printed in the setup.
pub fn consumer_properties() -> Vec<(&'static str, &'static str)> {
    vec![
        // librdkafka refuses assign() without a group id; with no subscribe() and no commits the
        // group is never joined, so the coordinator stays out of the measurement.
        ("group.id", "clusterlab-bench"),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "false"),
        ("auto.offset.reset", "earliest"),
        // librdkafka defaults, stated so the setup line is complete.
        ("fetch.max.bytes", "52428800"),
        ("max.partition.fetch.bytes", "1048576"),
        ("fetch.wait.max.ms", "500"),
    ]
}

/// The result of one consume run.
#[derive(Debug, Clone, Copy)]
pub struct ConsumeOutcome {
    pub messages: u64,
    pub bytes: u64,
    /// From the first message to the last: the steady-state read rate.
    pub elapsed: Duration,
    /// From assign() to the first message: connection, metadata and first-fetch set-up, which
    /// is a fixed cost of a few hundred ms in librdkafka and would swamp short runs.
    pub first_message_after: Duration,
}

/// Reads `expected` messages from partitions `0..partitions` of `topic`, starting at the
/// beginning; fails if they do not all arrive within `timeout`.
pub async fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: u64,
    timeout: Duration,
) -> Result<ConsumeOutcome> {
    let (bootstrap, topic) = (bootstrap.to_string(), topic.to_string());
    // If this future is dropped (Ctrl-C), the guard tells the blocking loop to give up instead
    // of polling a stopped broker until its deadline (the runtime waits for blocking threads).
    let guard = CancelOnDrop(Arc::new(AtomicBool::new(false)));
    let cancelled = guard.0.clone();
    // BaseConsumer::poll blocks, so the loop runs on a blocking thread, not a runtime worker.
    let result = tokio::task::spawn_blocking(move || {
        consume_blocking(&bootstrap, &topic, partitions, expected, timeout, &cancelled)
    })
    .await;
    drop(guard);
    result.map_err(|e| LabError::Process { what: "consumer thread".into(), detail: e.to_string() })?
}

struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn consume_blocking(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: u64,
    timeout: Duration,
    cancelled: &AtomicBool,
) -> Result<ConsumeOutcome> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap).set("client.id", "clusterlab-bench-consumer");
    for (k, v) in consumer_properties() {
        cfg.set(k, v);
    }
    let consumer: BaseConsumer = cfg.create().map_err(LabError::kafka("creating the consumer"))?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(LabError::kafka("building the assignment"))?;
    }
    let started = Instant::now();
    consumer.assign(&tpl).map_err(LabError::kafka(format!("assigning {topic}")))?;
    let deadline = started + timeout;
    let (mut messages, mut bytes, mut errors) = (0u64, 0u64, 0u64);
    let mut first: Option<Instant> = None;
    while messages < expected {
        if cancelled.load(Ordering::Relaxed) {
            return Err(LabError::Process { what: format!("consuming {topic}"), detail: "cancelled".into() });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LabError::Timeout {
                what: format!("consuming {topic}: got {messages} of {expected} messages ({errors} errors)"),
                secs: timeout.as_secs_f64(),
            });
        }
        match consumer.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(m)) => {
                first.get_or_insert_with(Instant::now);
                messages += 1;
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => {
                // Transient errors (a fetch retried) are survivable; the deadline bounds them.
                errors += 1;
                tracing::warn!(error = %e, "consumer error");
            }
            None => {}
        }
    }
    let first = first.unwrap_or(started);
    let (elapsed, first_message_after) = (first.elapsed(), first - started);
    tracing::debug!(messages, bytes, ?elapsed, ?first_message_after, errors, "consume run done");
    Ok(ConsumeOutcome { messages, bytes, elapsed, first_message_after })
}
