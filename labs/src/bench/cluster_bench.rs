//! `clusterlab bench --cluster`: three-node produce throughput against a single node measured in
//! the same run, cluster start time, and failover under load.
//!
//! Both sides of a throughput comparison use the same producer (acks=all, idempotent) and the
//! same topic shape (3 partitions); only the replication factor (1 vs 3) and node count differ.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::broker_process::BrokerProcess;
use crate::bench::cases::{Acks, Case, SIZES};
use crate::bench::cluster::{create_replicated_topic, leader_of, partition_group, Cluster, RaftTiming};
use crate::bench::failover::{self, FailoverReport};
use crate::bench::produce::{self, BenchProducer};
use crate::bench::report::{ratio, CaseFailure, LatencySummary, SmallSummary, Throughput};
use crate::bench::{warmup_for, BenchOptions, Setup, TOPIC};
use crate::error::{LabError, Result};

/// The fsync policies of the cluster cases.
pub const CLUSTER_FSYNC: [&str; 2] = ["always", "interval:50"];
/// librdkafka properties both sides of the comparison add to the bench producer's.
pub const CLUSTER_PRODUCER_OVERRIDES: [(&str, &str); 1] = [("enable.idempotence", "true")];
/// Bound on a fresh cluster reaching "controller and every partition have a leader".
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What `--cluster` runs, beyond [`BenchOptions`].
#[derive(Debug, Clone, Serialize)]
pub struct ClusterOptions {
    pub timing: RaftTiming,
    /// Run the three-node vs single-node throughput cases.
    pub throughput: bool,
    /// Fresh clusters started to measure start time (0 = skip).
    pub start_repeats: usize,
    /// Leader kills in the failover part (0 = skip).
    pub kills: usize,
    /// One paced message per this interval during failover.
    pub failover_pace_us: u64,
    pub failover_fsync: String,
    /// librdkafka properties replacing the failover producer's (librdkafka defaults otherwise).
    pub failover_producer: Vec<(String, String)>,
}

/// Produce throughput of one case on one or three nodes.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterCaseResult {
    pub nodes: usize,
    pub replication: i32,
    pub fsync: String,
    pub size: usize,
    pub produce: Throughput,
    pub ack_latency: LatencySummary,
    /// Three nodes / one node of the same case in this run (three-node rows only).
    pub msgs_ratio_to_single: Option<f64>,
    pub p99_ratio_to_single: Option<f64>,
}

/// Spawn of three processes -> controller leader, and -> every partition of a new topic led.
#[derive(Debug, Clone, Serialize)]
pub struct StartReport {
    pub controller_ready_ms: Vec<f64>,
    pub all_ready_ms: Vec<f64>,
    /// The controller's term when it first had a leader and the highest partition term when
    /// all were led (a higher term than usual means split votes or re-elections).
    pub controller_terms: Vec<u64>,
    pub max_partition_terms: Vec<u64>,
    pub controller_ready: SmallSummary,
    pub all_ready: SmallSummary,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    pub setup: Setup,
    pub cluster: ClusterOptions,
    pub throughput: Vec<ClusterCaseResult>,
    pub start: Option<StartReport>,
    pub failover: Option<FailoverReport>,
    pub failures: Vec<CaseFailure>,
}

/// Runs every part; a failing part is recorded in `failures` and the others still run.
pub async fn run(opts: &BenchOptions, copts: &ClusterOptions) -> Result<ClusterReport> {
    let mut report = ClusterReport {
        setup: Setup::collect(opts),
        cluster: copts.clone(),
        throughput: vec![],
        start: None,
        failover: None,
        failures: vec![],
    };
    let fail = |case: String, e: LabError| {
        tracing::error!(%case, error = %e, "cluster case failed");
        CaseFailure { target: "clusterlab-3".into(), case, error: e.to_string() }
    };
    for fsync in CLUSTER_FSYNC.into_iter().filter(|_| copts.throughput) {
        for size in SIZES {
            if !opts.filter.matches(&Case { fsync: fsync.into(), size, acks: Acks::All }) {
                continue;
            }
            let label = format!("fsync={fsync} size={size} acks=all");
            tracing::info!(case = %label, "single-node baseline starting");
            let single = match single_node_case(opts, fsync, size).await {
                Ok(r) => r,
                Err(e) => {
                    report.failures.push(fail(format!("1 node {label}"), e));
                    continue;
                }
            };
            tracing::info!(case = %label, "three-node case starting");
            match cluster_case(opts, copts, fsync, size).await {
                Ok(mut three) => {
                    three.msgs_ratio_to_single =
                        Some(ratio(three.produce.msgs_per_sec, single.produce.msgs_per_sec));
                    three.p99_ratio_to_single =
                        Some(ratio(three.ack_latency.p99_ms, single.ack_latency.p99_ms));
                    report.throughput.extend([single, three]);
                }
                Err(e) => {
                    report.throughput.push(single);
                    report.failures.push(fail(format!("3 nodes {label}"), e));
                }
            }
        }
    }
    if copts.start_repeats > 0 {
        match start_times(opts, copts).await {
            Ok(s) => report.start = Some(s),
            Err(e) => report.failures.push(fail("start time".into(), e)),
        }
    }
    if copts.kills > 0 {
        match failover_part(opts, copts).await {
            Ok(f) => report.failover = Some(f),
            Err(e) => report.failures.push(fail("failover".into(), e)),
        }
    }
    Ok(report)
}

/// Warm-up, then the measured produce run of `opts.messages_for(size)` messages to `bootstrap`.
async fn measure(bootstrap: &str, size: usize, opts: &BenchOptions) -> Result<(Throughput, LatencySummary)> {
    let measured = opts.messages_for(size);
    let producer = BenchProducer::with_overrides(
        bootstrap,
        TOPIC,
        size,
        Acks::All.as_str(),
        &opts.producer,
        &CLUSTER_PRODUCER_OVERRIDES,
    )?;
    producer.run(warmup_for(measured), opts.phase_timeout).await?;
    let p = producer.run(measured, opts.phase_timeout).await?;
    Ok((Throughput::new(p.messages, p.bytes, p.elapsed), LatencySummary::from_histogram_us(&p.latency_us)))
}

async fn single_node_case(opts: &BenchOptions, fsync: &str, size: usize) -> Result<ClusterCaseResult> {
    let mut broker = BrokerProcess::start(&opts.broker_bin, &opts.data_root, fsync)?;
    let result = async {
        produce::create_topic(&broker.bootstrap(), TOPIC, opts.partitions, 1, Duration::from_secs(10))
            .await?;
        measure(&broker.bootstrap(), size, opts).await
    }
    .await;
    let stopped = broker.stop();
    let (produce, ack_latency) = result?;
    match stopped? {
        Some(0) => {}
        code => {
            return Err(LabError::Process {
                what: "stopping the single-node broker".into(),
                detail: format!("exit code {code:?}"),
            })
        }
    }
    Ok(ClusterCaseResult {
        nodes: 1,
        replication: 1,
        fsync: fsync.into(),
        size,
        produce,
        ack_latency,
        msgs_ratio_to_single: None,
        p99_ratio_to_single: None,
    })
}

/// A fresh cluster with `TOPIC` (RF 3) created and every partition led.
async fn ready_cluster(opts: &BenchOptions, copts: &ClusterOptions, fsync: &str) -> Result<Cluster> {
    let cluster = Cluster::start(&opts.broker_bin, &opts.data_root, fsync, copts.timing).await?;
    create_replicated_topic(&cluster.bootstrap(), TOPIC, opts.partitions, READY_TIMEOUT).await?;
    cluster.wait_ready(Some((TOPIC, opts.partitions)), READY_TIMEOUT).await?;
    Ok(cluster)
}

async fn cluster_case(
    opts: &BenchOptions,
    copts: &ClusterOptions,
    fsync: &str,
    size: usize,
) -> Result<ClusterCaseResult> {
    let cluster = ready_cluster(opts, copts, fsync).await?;
    let result = measure(&cluster.bootstrap(), size, opts).await;
    let stopped = cluster.stop().await;
    let (produce, ack_latency) = result?;
    stopped?;
    Ok(ClusterCaseResult {
        nodes: 3,
        replication: 3,
        fsync: fsync.into(),
        size,
        produce,
        ack_latency,
        msgs_ratio_to_single: None,
        p99_ratio_to_single: None,
    })
}

/// Spawn -> controller leader -> topic created and every partition led, `start_repeats` times.
async fn start_times(opts: &BenchOptions, copts: &ClusterOptions) -> Result<StartReport> {
    let (mut controller, mut all, mut cterms, mut pterms) = (vec![], vec![], vec![], vec![]);
    for i in 0..copts.start_repeats {
        let t0 = Instant::now();
        let cluster =
            Cluster::start(&opts.broker_bin, &opts.data_root, &copts.failover_fsync, copts.timing).await?;
        let measured = async {
            cluster.wait_ready(None, READY_TIMEOUT).await?;
            let c = t0.elapsed();
            let cterm = leader_of(&cluster.views().await, "controller").map_or(0, |(_, t)| t);
            create_replicated_topic(&cluster.bootstrap(), TOPIC, opts.partitions, READY_TIMEOUT).await?;
            cluster.wait_ready(Some((TOPIC, opts.partitions)), READY_TIMEOUT).await?;
            let a = t0.elapsed();
            let views = cluster.views().await;
            let pterm = (0..opts.partitions)
                .filter_map(|p| leader_of(&views, &partition_group(TOPIC, p)))
                .map(|(_, t)| t)
                .max()
                .unwrap_or(0);
            Ok::<_, LabError>((c, a, cterm, pterm))
        }
        .await;
        let stopped = cluster.stop().await;
        let (c, a, cterm, pterm) = measured?;
        stopped?;
        tracing::info!(
            run = i + 1,
            controller_ms = c.as_millis() as u64,
            all_ms = a.as_millis() as u64,
            cterm,
            pterm,
            "cluster start measured"
        );
        controller.push(c.as_secs_f64() * 1000.0);
        all.push(a.as_secs_f64() * 1000.0);
        cterms.push(cterm);
        pterms.push(pterm);
    }
    Ok(StartReport {
        controller_ready: SmallSummary::of(controller.iter().copied()),
        all_ready: SmallSummary::of(all.iter().copied()),
        controller_ready_ms: controller,
        all_ready_ms: all,
        controller_terms: cterms,
        max_partition_terms: pterms,
    })
}

async fn failover_part(opts: &BenchOptions, copts: &ClusterOptions) -> Result<FailoverReport> {
    let cluster = ready_cluster(opts, copts, &copts.failover_fsync).await?;
    let pace = Duration::from_micros(copts.failover_pace_us.max(100));
    let result = failover::run(
        &cluster,
        TOPIC,
        &copts.failover_fsync,
        copts.kills,
        pace,
        opts.producer.linger_ms,
        &copts.failover_producer,
    )
    .await;
    let stopped = cluster.stop().await;
    let report = result?;
    stopped?;
    Ok(report)
}
