//! `clusterlab bench --trace-overhead`: what the Raft view's RPC telemetry costs a producer
//! (issue 11: at most 5 % of produce throughput with the view open).
//!
//! One fresh three-node cluster, a topic of 3 RF3 partitions, the cluster cases' producer
//! (acks=all, idempotence). Rounds alternate two modes on the same cluster, each round in the
//! other order so that drift (page cache, a warming JIT-free but cache-hungry broker, load from
//! elsewhere) falls on both sides:
//! - *off*: no group watched (`POST /raft/trace/watch {"group": null}`) and nobody polling;
//! - *on*: what an open Raft view makes the lab do: every node watches partition 0 in full
//!   detail and the lab's own follower ([`crate::lab::raft_trace::follow`]) polls all three
//!   every 100 ms into a timeline.
//!
//! Reported: median msgs/s of each mode, on/off, and how many trace events the follower took in
//! (and how many the nodes' rings dropped before it came back: `missed`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::cluster::{create_replicated_topic, Cluster, RaftTiming};
use super::cluster_bench::CLUSTER_PRODUCER_OVERRIDES;
use super::produce::{BenchProducer, ProducerSettings};
use crate::error::Result;
use crate::timeline::{EventKind, Timeline};

const TOPIC: &str = "trace";
const PARTITIONS: i32 = 3;

#[derive(Debug, Clone)]
pub struct TraceOverheadOptions {
    pub broker_bin: PathBuf,
    pub data_root: PathBuf,
    pub fsync: String,
    pub timing: RaftTiming,
    pub producer: ProducerSettings,
    pub message_bytes: usize,
    /// Messages per measured run (one run per mode per round).
    pub messages: u64,
    pub rounds: usize,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraceOverheadResult {
    pub rounds: usize,
    pub messages_per_run: u64,
    pub message_bytes: usize,
    pub off_msgs_per_sec: Vec<f64>,
    pub on_msgs_per_sec: Vec<f64>,
    pub off_median: f64,
    pub on_median: f64,
    /// on / off of the medians (1.0 = free; 0.95 = the goal's limit).
    pub ratio: f64,
    /// The median of each round's on / off: the two runs of a round are adjacent in time, so
    /// this pairs away most of the drift a loaded machine adds between rounds.
    pub paired_ratio: f64,
    /// Trace events the follower appended to its timeline over every "on" run, and events the
    /// nodes' rings had dropped before a poll reached them.
    pub events_seen: u64,
    pub events_missed: u64,
}

pub async fn measure(opts: &TraceOverheadOptions) -> Result<TraceOverheadResult> {
    let cluster = Cluster::start(&opts.broker_bin, &opts.data_root, &opts.fsync, opts.timing).await?;
    let result = measure_on(&cluster, opts).await;
    // Stopped gracefully whatever happened: a broker that cannot stop is worth hearing about.
    let stopped = cluster.stop().await;
    let result = result?;
    stopped?;
    Ok(result)
}

async fn measure_on(cluster: &Cluster, opts: &TraceOverheadOptions) -> Result<TraceOverheadResult> {
    let bootstrap = cluster.bootstrap();
    create_replicated_topic(&bootstrap, TOPIC, PARTITIONS, opts.timeout).await?;
    cluster.wait_ready(Some((TOPIC, PARTITIONS)), opts.timeout).await?;
    let producer = BenchProducer::with_overrides(
        &bootstrap,
        TOPIC,
        opts.message_bytes,
        "all",
        &opts.producer,
        &CLUSTER_PRODUCER_OVERRIDES,
    )?;
    let nodes: Vec<_> = cluster.addrs().iter().map(|a| (a.id, a.http)).collect();
    // Warm-up in the "off" state: the first run pays connections and metadata.
    set_watch(&nodes, None).await?;
    producer.run(super::warmup_for(opts.messages), opts.timeout).await?;

    let (mut off, mut on) = (Vec::new(), Vec::new());
    let (mut seen, mut missed) = (0u64, 0u64);
    for round in 0..opts.rounds {
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for watching in order {
            if watching {
                let (rate, s, m) = watched_run(&producer, &nodes, opts).await?;
                on.push(rate);
                (seen, missed) = (seen + s, missed + m);
            } else {
                set_watch(&nodes, None).await?;
                let r = producer.run(opts.messages, opts.timeout).await?;
                off.push(r.messages as f64 / r.elapsed.as_secs_f64());
            }
        }
    }
    set_watch(&nodes, None).await?;
    let (off_median, on_median) = (median(&off), median(&on));
    let pairs: Vec<f64> = on.iter().zip(&off).map(|(a, b)| super::report::ratio(*a, *b)).collect();
    Ok(TraceOverheadResult {
        rounds: opts.rounds,
        messages_per_run: opts.messages,
        message_bytes: opts.message_bytes,
        off_msgs_per_sec: off,
        on_msgs_per_sec: on,
        off_median,
        on_median,
        ratio: super::report::ratio(on_median, off_median),
        paired_ratio: median(&pairs),
        events_seen: seen,
        events_missed: missed,
    })
}

/// One run with the Raft view open: partition 0 watched on every node and the lab's follower
/// polling it. Returns (msgs/s, trace events taken in, events the rings dropped).
async fn watched_run(
    producer: &BenchProducer,
    nodes: &[(i32, std::net::SocketAddr)],
    opts: &TraceOverheadOptions,
) -> Result<(f64, u64, u64)> {
    let timeline = Arc::new(Timeline::new());
    let cancel = CancellationToken::new();
    // The follower stops when this run ends, whichever way (an error returns early).
    let _stop_follower = cancel.clone().drop_guard();
    let group = format!("{TOPIC}-0");
    // Owned here: aborted if this run returns early, waited for once it is cancelled.
    let mut follower = tokio::task::JoinSet::new();
    follower.spawn(crate::lab::raft_trace::follow(
        timeline.clone(),
        nodes.to_vec(),
        Arc::new(Mutex::new(Some(group.clone()))),
        cancel.clone(),
    ));
    // The follower sets the watch on its first poll; set it now so the run is all "on".
    set_watch(nodes, Some(&group)).await?;
    let r = producer.run(opts.messages, opts.timeout).await;
    cancel.cancel();
    crate::tasks::join_all(&mut follower, "the Raft-trace follower").await;
    let r = r?;
    let (mut seen, mut missed) = (0u64, 0u64);
    for e in timeline.snapshot() {
        if let EventKind::RaftTrace { nodes, .. } = &e.kind {
            for n in nodes {
                seen += n.events.len() as u64;
                missed += n.missed;
            }
        }
    }
    Ok((r.messages as f64 / r.elapsed.as_secs_f64(), seen, missed))
}

async fn set_watch(nodes: &[(i32, std::net::SocketAddr)], group: Option<&str>) -> Result<()> {
    for (_, addr) in nodes {
        crate::node_client::typed::watch_group(*addr, group).await?;
    }
    Ok(())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn render(r: &TraceOverheadResult) -> String {
    let list = |xs: &[f64]| xs.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
    format!(
        "{} rounds of {} messages of {} B, 3 partitions RF3, acks=all, idempotent\n\
         Raft view closed (no group watched)   median {:>9.0} msgs/s  runs: {}\n\
         Raft view open (partition 0 watched)  median {:>9.0} msgs/s  runs: {}\n\
         open / closed: {:.3} of the medians, {:.3} median of the rounds' pairs (goal >= 0.95); \
         trace events taken in {}, dropped by the nodes' rings {}",
        r.rounds,
        r.messages_per_run,
        r.message_bytes,
        r.off_median,
        list(&r.off_msgs_per_sec),
        r.on_median,
        list(&r.on_msgs_per_sec),
        r.ratio,
        r.paired_ratio,
        r.events_seen,
        r.events_missed
    )
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }
}
