//! `clusterlab bench`: single-node produce/consume throughput and ack latency per fsync policy,
//! optionally against Tansu as a peer.
//!
//! Each case gets a fresh broker on a fresh data directory so no case inherits another's page
//! cache, segments or fsync backlog; the broker is stopped with SIGTERM after the case.
//!
//! Modules, by mode: single node — `cases` (the matrix), `broker_process` (its broker), `produce`
//! and `consume` (the two halves of a case), `report` (rates, percentiles, tables), `tansu` (the
//! peer broker); `--cluster` — `cluster` (a three-node cluster owned by the run, through the
//! lab's supervisor; `--scale`, `--burst`, `--fuzz` and `--trace-overhead` use it too),
//! `cluster_bench`, `failover`, `cluster_report`; `--scale`, `--burst`, `--fuzz`, `--lab`,
//! `--trace-overhead` — one module each (`scale`, `burst`, `fuzz`, `lab_bench`, `trace_overhead`).

pub mod broker_process;
pub mod burst;
pub mod cases;
pub mod cluster;
pub mod cluster_bench;
pub mod cluster_report;
pub mod consume;
pub mod failover;
pub mod fuzz;
pub mod lab_bench;
pub mod produce;
pub mod report;
pub mod scale;
pub mod tansu;
pub mod trace_overhead;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use self::broker_process::{BrokerProcess, StoreStats};
use self::cases::{Acks, Case, CaseFilter, SIZES};
use self::produce::{BenchProducer, ProducerSettings};
use self::report::{CaseFailure, CaseResult, Comparison, LatencySummary, Throughput};
use self::tansu::TansuProcess;
use crate::error::{LabError, Result};

/// The topic every case writes; each case has its own broker, so the name can be fixed.
pub(crate) const TOPIC: &str = "clusterlab-bench";

/// Everything `run` needs; the binary fills it from flags.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub broker_bin: PathBuf,
    pub tansu_bin: Option<PathBuf>,
    /// Overrides the per-size default message count.
    pub messages: Option<u64>,
    /// Divides message counts by 10.
    pub quick: bool,
    pub filter: CaseFilter,
    /// Where per-case data directories are created (its filesystem decides what fsync costs).
    pub data_root: PathBuf,
    pub partitions: i32,
    pub producer: ProducerSettings,
    /// Bound on each produce or consume phase of a case.
    pub phase_timeout: Duration,
}

impl BenchOptions {
    /// Measured messages for one case of `size` bytes.
    pub fn messages_for(&self, size: usize) -> u64 {
        let n = self.messages.unwrap_or_else(|| cases::default_messages(size));
        if self.quick {
            (n / 10).max(1)
        } else {
            n
        }
    }
}

/// Unmeasured messages sent first so connections, metadata and the first segments exist.
pub fn warmup_for(measured: u64) -> u64 {
    (measured / 10).clamp(1, 1_000)
}

/// The machine and configuration a report was produced with.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    /// /proc/loadavg when the run started: other work on the machine skews every number.
    pub load_average: String,
    pub build: &'static str,
    pub broker_bin: String,
    pub tansu_bin: Option<String>,
    pub data_root: String,
    pub data_root_fs: String,
    pub partitions: i32,
    /// Measured and warm-up messages per case, by message size.
    pub messages: BTreeMap<usize, u64>,
    pub warmup: BTreeMap<usize, u64>,
    pub producer: ProducerSettings,
    pub producer_config: BTreeMap<String, String>,
    pub consumer_config: BTreeMap<String, String>,
    pub notes: Vec<&'static str>,
}

impl Setup {
    pub fn collect(opts: &BenchOptions) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|m| m.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let load_average = std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        Setup {
            load_average,
            cpus: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu_model,
            kernel,
            build: if cfg!(debug_assertions) { "debug (numbers not representative; use --release)" } else { "release" },
            broker_bin: opts.broker_bin.display().to_string(),
            tansu_bin: opts.tansu_bin.as_ref().map(|p| p.display().to_string()),
            data_root: opts.data_root.display().to_string(),
            data_root_fs: filesystem_type(&opts.data_root),
            partitions: opts.partitions,
            messages: SIZES.iter().map(|&s| (s, opts.messages_for(s))).collect(),
            warmup: SIZES.iter().map(|&s| (s, warmup_for(opts.messages_for(s)))).collect(),
            producer: opts.producer.clone(),
            producer_config: opts.producer.properties().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            consumer_config: consume::consumer_properties().into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            notes: vec![
                "loopback only; client and broker share the CPUs",
                "no message key: librdkafka's sticky partitioner spreads batches over partitions",
                "ack latency = enqueue to delivery report, closed loop with max_in_flight unacked messages",
                "consume = assign all partitions from the beginning (no group), read warm-up + measured messages;",
                "  its rate runs from the first message to the last (set-up time reported separately)",
                "MB = 10^6 bytes of payload",
            ],
        }
    }

    pub fn render(&self) -> String {
        let kv = |v: &BTreeMap<String, String>| {
            v.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")
        };
        let per_size = |v: &BTreeMap<usize, u64>| {
            v.iter().map(|(s, n)| format!("{n} x {s} B")).collect::<Vec<_>>().join(", ")
        };
        let mut out = String::new();
        out.push_str(&format!(
            "machine:   {} CPUs ({}), Linux {}, load {}\n",
            self.cpus, self.cpu_model, self.kernel, self.load_average
        ));
        out.push_str(&format!("build:     {}\n", self.build));
        out.push_str(&format!("broker:    {}\n", self.broker_bin));
        out.push_str(&format!(
            "tansu:     {}\n",
            self.tansu_bin.as_deref().unwrap_or("(not compared; pass --tansu or TANSU_BIN)")
        ));
        out.push_str(&format!("data dirs: {} ({})\n", self.data_root, self.data_root_fs));
        out.push_str(&format!(
            "topic:     {} partitions, replication 1, fresh broker per case\n",
            self.partitions
        ));
        out.push_str(&format!(
            "messages:  {} measured per case; warm-up {}\n",
            per_size(&self.messages),
            per_size(&self.warmup)
        ));
        out.push_str(&format!(
            "producer:  rdkafka FutureProducer, {} max_in_flight={}\n",
            kv(&self.producer_config),
            self.producer.max_in_flight
        ));
        out.push_str(&format!("consumer:  rdkafka BaseConsumer, {}\n", kv(&self.consumer_config)));
        for n in &self.notes {
            out.push_str(&format!("note:      {n}\n"));
        }
        out
    }
}

/// Everything one bench run produced.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub setup: Setup,
    pub results: Vec<CaseResult>,
    pub tansu: Vec<CaseResult>,
    pub comparisons: Vec<Comparison>,
    pub failures: Vec<CaseFailure>,
}

/// The broker a case runs against.
enum Target {
    Ours(BrokerProcess),
    Tansu(TansuProcess),
}

impl Target {
    fn bootstrap(&self) -> String {
        match self {
            Target::Ours(b) => b.bootstrap(),
            Target::Tansu(t) => t.bootstrap(),
        }
    }

    async fn store_stats(&self) -> Result<Option<StoreStats>> {
        match self {
            Target::Ours(b) => b.store_stats().await.map(Some),
            Target::Tansu(_) => Ok(None),
        }
    }

    fn stop(&mut self) -> Result<()> {
        match self {
            Target::Ours(b) => match b.stop()? {
                Some(0) => Ok(()),
                code => Err(LabError::Process {
                    what: "stopping clusterlab-broker with SIGTERM".into(),
                    detail: format!("exit code {code:?}, expected 0"),
                }),
            },
            Target::Tansu(t) => t.stop(),
        }
    }
}

/// Runs every selected case (and the Tansu cases when a binary is given). A failing case is
/// recorded in `failures` and the run goes on; only set-up errors abort.
pub async fn run(opts: &BenchOptions) -> Result<BenchReport> {
    let setup = Setup::collect(opts);
    let mut report =
        BenchReport { setup, results: vec![], tansu: vec![], comparisons: vec![], failures: vec![] };
    let selected: Vec<Case> = cases::all_cases().into_iter().filter(|c| opts.filter.matches(c)).collect();
    if selected.is_empty() {
        return Err(LabError::InvalidArgument {
            what: "--cases filter",
            detail: "it selects no case".into(),
        });
    }
    for case in &selected {
        tracing::info!(%case, "case starting");
        let outcome = async {
            let mut target =
                Target::Ours(BrokerProcess::start(&opts.broker_bin, &opts.data_root, &case.fsync)?);
            let result = run_case(&target, "clusterlab", Some(&case.fsync), case.size, case.acks, opts).await;
            // Stop even after a failed measurement; a stop failure is itself a finding.
            let stopped = target.stop();
            let result = result?;
            stopped?;
            Ok::<_, LabError>(result)
        }
        .await;
        record(&mut report.results, &mut report.failures, "clusterlab", &case.to_string(), outcome);
    }
    if let Some(bin) = &opts.tansu_bin {
        for size in SIZES {
            for acks in [Acks::One, Acks::All] {
                if !opts.filter.matches_peer(size, acks) {
                    continue;
                }
                let label = format!("size={size} acks={}", acks.as_str());
                tracing::info!(case = %label, "tansu case starting");
                let outcome = async {
                    let mut target = Target::Tansu(TansuProcess::start(bin)?);
                    let result = run_case(&target, "tansu", None, size, acks, opts).await;
                    let _ = target.stop();
                    result
                }
                .await;
                record(&mut report.tansu, &mut report.failures, "tansu", &label, outcome);
            }
        }
        report.comparisons = report::compare(&report.results, &report.tansu);
    }
    Ok(report)
}

fn record(
    into: &mut Vec<CaseResult>,
    failures: &mut Vec<CaseFailure>,
    target: &str,
    case: &str,
    outcome: Result<CaseResult>,
) {
    match outcome {
        Ok(r) => {
            tracing::info!(
                target_broker = target,
                case,
                produce_msgs_per_sec = r.produce.msgs_per_sec as u64,
                p99_ms = r.ack_latency.p99_ms,
                consume_msgs_per_sec = r.consume.msgs_per_sec as u64,
                "case done"
            );
            into.push(r);
        }
        Err(e) => {
            tracing::error!(target_broker = target, case, error = %e, "case failed");
            failures.push(CaseFailure { target: target.into(), case: case.into(), error: e.to_string() });
        }
    }
}

/// One case against a running target: create topic, warm up, measure produce, measure consume.
async fn run_case(
    target: &Target,
    name: &str,
    fsync: Option<&str>,
    size: usize,
    acks: Acks,
    opts: &BenchOptions,
) -> Result<CaseResult> {
    let bootstrap = target.bootstrap();
    let measured = opts.messages_for(size);
    let warmup = warmup_for(measured);
    produce::create_topic(&bootstrap, TOPIC, opts.partitions, 1, Duration::from_secs(10)).await?;
    let producer = BenchProducer::new(&bootstrap, TOPIC, size, acks.as_str(), &opts.producer)?;
    producer.run(warmup, opts.phase_timeout).await?;
    let before = target.store_stats().await?;
    let produced = producer.run(measured, opts.phase_timeout).await?;
    let after = target.store_stats().await?;
    // The producer's background thread would otherwise compete with the consumer for CPU.
    drop(producer);
    let consumed =
        consume::consume_all(&bootstrap, TOPIC, opts.partitions, warmup + measured, opts.phase_timeout)
            .await?;

    let (fsyncs_per_1000_msgs, fsync_mean_ms) = match (before, after) {
        (Some(b), Some(a)) => fsync_rates(&b, &a, produced.messages),
        _ => (None, None),
    };
    Ok(CaseResult {
        target: name.into(),
        fsync: fsync.map(Into::into),
        size,
        acks,
        produce: Throughput::new(produced.messages, produced.bytes, produced.elapsed),
        ack_latency: LatencySummary::from_histogram_us(&produced.latency_us),
        fsyncs_per_1000_msgs,
        fsync_mean_ms,
        consume: Throughput::new(consumed.messages, consumed.bytes, consumed.elapsed),
        consume_first_message_ms: consumed.first_message_after.as_secs_f64() * 1000.0,
    })
}

/// fsyncs per 1000 messages and mean fsync time over the measured window.
fn fsync_rates(before: &StoreStats, after: &StoreStats, messages: u64) -> (Option<f64>, Option<f64>) {
    let count = after.fsync_count.saturating_sub(before.fsync_count);
    let nanos = after.fsync_nanos_total.saturating_sub(before.fsync_nanos_total);
    let per_1000 = (messages > 0).then(|| count as f64 * 1000.0 / messages as f64);
    let mean_ms = (count > 0).then(|| nanos as f64 / count as f64 / 1e6);
    (per_1000, mean_ms)
}

/// The filesystem type of `path` (fsync on tmpfs costs nothing, which would flatter `always`).
fn filesystem_type(path: &std::path::Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return "unknown".into() };
    // SAFETY: statfs writes into the zeroed struct we own; the path is a valid C string.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return "unknown".into();
    }
    match s.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs (fsync is free here)".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        other => format!("fs magic {other:#x}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_rates_use_the_measured_window() {
        let b = StoreStats { fsync_count: 10, fsync_nanos_total: 10_000_000, ..Default::default() };
        let a = StoreStats { fsync_count: 60, fsync_nanos_total: 110_000_000, ..Default::default() };
        assert_eq!(fsync_rates(&b, &a, 5_000), (Some(10.0), Some(2.0)));
        assert_eq!(fsync_rates(&b, &b, 5_000), (Some(0.0), None));
    }

    #[test]
    fn quick_divides_message_counts() {
        let mut o = BenchOptions {
            broker_bin: "x".into(),
            tansu_bin: None,
            messages: None,
            quick: true,
            filter: CaseFilter::default(),
            data_root: "/tmp".into(),
            partitions: 3,
            producer: ProducerSettings { linger_ms: 5, max_in_flight: 10_000, message_timeout_ms: 30_000 },
            phase_timeout: Duration::from_secs(60),
        };
        assert_eq!((o.messages_for(100), o.messages_for(1024)), (5_000, 2_000));
        o.messages = Some(30);
        assert_eq!(o.messages_for(100), 3);
        assert_eq!(warmup_for(3), 1);
        assert_eq!(warmup_for(50_000), 1_000);
    }
}
