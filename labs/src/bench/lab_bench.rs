//! `clusterlab bench --lab`: the lab's own costs.
//!
//! - Link fabric: the same produce run against a broker reached directly and against a broker
//!   whose clients go through the lab's client proxy (as in every drill). Goal: throughput and
//!   p99 within 15% of direct.
//! - Timeline: how many events per second it records from several threads, and how long a
//!   million-event export to JSON Lines takes (goal: 100k events/s, export < 5 s).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::broker_process::BrokerProcess;
use super::produce::{create_topic, BenchProducer, ProducerSettings};
use crate::supervisor::{Supervisor, SupervisorConfig};
use crate::timeline::{EventKind, Source, Timeline};

#[derive(Debug, Serialize)]
pub struct FabricResult {
    pub messages: u64,
    pub size: usize,
    pub direct_msgs_per_s: f64,
    pub proxied_msgs_per_s: f64,
    pub direct_p99_ms: f64,
    pub proxied_p99_ms: f64,
    /// proxied / direct throughput (1.0 = no cost).
    pub throughput_ratio: f64,
    /// proxied / direct p99 latency (1.0 = no cost).
    pub p99_ratio: f64,
}

#[derive(Debug, Serialize)]
pub struct TimelineResult {
    pub events: u64,
    pub threads: u32,
    pub append_events_per_s: f64,
    pub jsonl_export_s: f64,
    pub jsonl_bytes: u64,
}

async fn produce(bootstrap: &str, messages: u64, size: usize) -> crate::Result<(f64, f64)> {
    create_topic(bootstrap, "fabric", 3, 1, Duration::from_secs(15)).await?;
    let settings = ProducerSettings { linger_ms: 5, max_in_flight: 10_000, message_timeout_ms: 30_000 };
    let producer = BenchProducer::new(bootstrap, "fabric", size, "all", &settings)?;
    producer.run(messages / 10, Duration::from_secs(60)).await?; // warm-up
    let out = producer.run(messages, Duration::from_secs(120)).await?;
    let rate = out.messages as f64 / out.elapsed.as_secs_f64();
    Ok((rate, out.latency_us.value_at_quantile(0.99) as f64 / 1000.0))
}

/// Direct vs through the lab's client proxy, same broker build and fsync policy (`interval:50`,
/// so the disk does not dominate what the proxy costs).
pub async fn fabric(
    broker_bin: &Path,
    data_root: &Path,
    messages: u64,
    size: usize,
) -> crate::Result<FabricResult> {
    let mut direct = BrokerProcess::start(broker_bin, data_root, "interval:50")?;
    let (direct_rate, direct_p99) = produce(&direct.bootstrap(), messages, size).await?;
    direct.stop()?;

    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let mut config = SupervisorConfig::new(broker_bin.to_path_buf());
    config.nodes = 1;
    config.fsync = "interval:50".into();
    config.replication_factor = 1;
    config.data_root = Some(data_root.join(format!("fabric-{}-{size}", std::process::id())));
    let supervisor = Supervisor::new(config, tx).await?;
    supervisor.start_all().await?;
    let proxied = produce(&supervisor.bootstrap_servers(), messages, size).await;
    supervisor.shutdown().await?;
    let (proxied_rate, proxied_p99) = proxied?;
    Ok(FabricResult {
        messages,
        size,
        direct_msgs_per_s: direct_rate,
        proxied_msgs_per_s: proxied_rate,
        direct_p99_ms: direct_p99,
        proxied_p99_ms: proxied_p99,
        throughput_ratio: proxied_rate / direct_rate,
        p99_ratio: proxied_p99 / direct_p99.max(0.001),
    })
}

/// Appends `events` from `threads` threads, then exports them all to JSON Lines in memory.
pub fn timeline(events: u64, threads: u32) -> crate::Result<TimelineResult> {
    let timeline = Arc::new(Timeline::new());
    let per_thread = events / threads as u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let timeline = Arc::clone(&timeline);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let kind = EventKind::Offsets {
                        topic: "t".into(),
                        partition: t as i32,
                        log_end_offset: i as i64,
                        flushed_offset: i as i64,
                        high_watermark: i as i64,
                    };
                    timeline.append(Source::Node(t as i32), i, kind);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let append_s = started.elapsed().as_secs_f64();
    let snapshot = timeline.snapshot();
    let mut out = Vec::with_capacity(snapshot.len() * 128);
    let started = Instant::now();
    crate::timeline::export::write_jsonl(&snapshot, &mut out)?;
    Ok(TimelineResult {
        events: snapshot.len() as u64,
        threads,
        append_events_per_s: snapshot.len() as f64 / append_s,
        jsonl_export_s: started.elapsed().as_secs_f64(),
        jsonl_bytes: out.len() as u64,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_timeline_bench_counts_every_event() {
        let r = super::timeline(40_000, 4).unwrap();
        assert_eq!(r.events, 40_000);
        assert!(r.jsonl_bytes > 40_000 * 20);
    }
}
