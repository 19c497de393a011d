//! `clusterlab bench --burst`: a stock client queues a large burst at once to one replicated
//! partition (issue 14: 600 messages of 500 KB once stalled an RF3 partition with 0 acknowledged
//! in 60 s). Backpressure may slow the client down, never stop it.
//!
//! One fresh three-node cluster, one RF3 partition, a producer with librdkafka's defaults
//! (acks=all, idempotence on) that hands every message to librdkafka as fast as its queue takes
//! them; then a consumer reads the partition back. Reported: time until every delivery report,
//! acknowledged / failed, MB/s, ack latency percentiles (from hand-over, so queueing included),
//! the largest peak RSS of the three brokers (VmHWM), and whether every acknowledged message
//! reads back.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use serde::Serialize;

use super::cluster::{create_replicated_topic, Cluster, RaftTiming};
use crate::error::{LabError, Result};

const TOPIC: &str = "burst";

#[derive(Debug, Clone)]
pub struct BurstOptions {
    pub broker_bin: PathBuf,
    pub data_root: PathBuf,
    pub fsync: String,
    pub timing: RaftTiming,
    /// Total bytes of payload.
    pub total_bytes: u64,
    pub message_bytes: usize,
    /// Bound on the produce phase and on the read-back.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct BurstResult {
    pub messages: u64,
    pub message_bytes: usize,
    pub acked: u64,
    pub failed: u64,
    /// First hand-over to the last delivery report.
    pub seconds: f64,
    pub mb_per_sec: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub ack_max_ms: f64,
    /// The largest VmHWM of the three brokers after the burst.
    pub peak_rss_mb: f64,
    pub read_back: u64,
    pub first_error: Option<String>,
}

pub async fn measure(opts: &BurstOptions) -> Result<BurstResult> {
    let cluster = Cluster::start(&opts.broker_bin, &opts.data_root, &opts.fsync, opts.timing).await?;
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, 1, Duration::from_secs(30)).await?;
    cluster.wait_ready(Some((TOPIC, 1)), Duration::from_secs(30)).await?;

    let messages = (opts.total_bytes / opts.message_bytes as u64).max(1);
    // librdkafka's defaults, as a user who changed nothing has them (stated, not relied on).
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", opts.timeout.as_millis().to_string())
        .create()
        .map_err(LabError::kafka("creating the burst producer"))?;
    let started = Instant::now();
    let deliveries = hand_over(&producer, messages, opts, started).await?;
    let acks = Acks::of(deliveries).await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_rss_mb = cluster.pids().into_iter().filter_map(vm_hwm_kb).max().unwrap_or(0) as f64 / 1024.0;
    let read_back = if acks.acked > 0 {
        super::consume::consume_all(&bootstrap, TOPIC, 1, acks.acked, opts.timeout)
            .await
            .map(|o| o.messages)?
    } else {
        0
    };
    Ok(BurstResult {
        messages,
        message_bytes: opts.message_bytes,
        acked: acks.acked,
        failed: acks.failed,
        seconds,
        mb_per_sec: (acks.acked * opts.message_bytes as u64) as f64 / (1 << 20) as f64 / seconds,
        ack_p50_ms: acks.latency.value_at_quantile(0.5) as f64,
        ack_p99_ms: acks.latency.value_at_quantile(0.99) as f64,
        ack_max_ms: acks.latency.max() as f64,
        peak_rss_mb,
        read_back,
        first_error: acks.first_error,
    })
}

/// Hands every message over as fast as librdkafka's queue takes it: a full queue is the
/// client's own backpressure (wait a moment and try again), never a reason to drop the message.
/// Returns each delivery with its hand-over time.
async fn hand_over(
    producer: &FutureProducer,
    messages: u64,
    opts: &BurstOptions,
    started: Instant,
) -> Result<Vec<(Instant, DeliveryFuture)>> {
    let payload = vec![0x5a_u8; opts.message_bytes];
    let mut deliveries = Vec::with_capacity(messages as usize);
    for i in 0..messages {
        let key = i.to_string();
        let mut record = FutureRecord::to(TOPIC).key(&key).payload(&payload).partition(0);
        let handed = Instant::now();
        let delivery = loop {
            match producer.send_result(record) {
                Ok(d) => break d,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    if started.elapsed() > opts.timeout {
                        return Err(LabError::Timeout { what: "handing the burst over".into(), secs: 0.0 });
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(LabError::Kafka { what: "queueing the burst".into(), source: e }),
            }
        };
        deliveries.push((handed, delivery));
    }
    Ok(deliveries)
}

/// What the delivery reports said.
struct Acks {
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    /// Hand-over to delivery report, ms, of the acknowledged ones.
    latency: Histogram<u64>,
}

impl Acks {
    /// Awaits every delivery report (each bounded by the producer's message timeout).
    async fn of(deliveries: Vec<(Instant, DeliveryFuture)>) -> Result<Acks> {
        let latency = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3)
            .map_err(|e| LabError::Histogram(e.to_string()))?;
        let mut acks = Acks { acked: 0, failed: 0, first_error: None, latency };
        for (handed, d) in deliveries {
            match d.await {
                Ok(Ok(_)) => {
                    acks.acked += 1;
                    let _ = acks.latency.record(handed.elapsed().as_millis().max(1) as u64);
                }
                Ok(Err((e, _))) => {
                    acks.failed += 1;
                    acks.first_error.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    acks.failed += 1;
                    acks.first_error.get_or_insert_with(|| "delivery report dropped".into());
                }
            }
        }
        Ok(acks)
    }
}

/// Peak resident set of a process (kB), from /proc/<pid>/status.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn render(r: &BurstResult) -> String {
    format!(
        "burst: {} x {} KB to one RF3 partition: {} acknowledged, {} failed in {:.1} s ({:.1} MB/s); \
         ack latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms; broker peak RSS {:.0} MB; read back {}{}",
        r.messages,
        r.message_bytes / 1000,
        r.acked,
        r.failed,
        r.seconds,
        r.mb_per_sec,
        r.ack_p50_ms,
        r.ack_p99_ms,
        r.ack_max_ms,
        r.peak_rss_mb,
        r.read_back,
        r.first_error.as_ref().map(|e| format!("; first error: {e}")).unwrap_or_default()
    )
}
