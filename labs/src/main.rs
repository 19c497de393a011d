//! `clusterlab`: the Cluster Lab command line: `bench` here, the lab's commands in `cli`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

mod cli;
use clap::{Args, Parser, Subcommand};
use labs::bench::cluster::RaftTiming;
use labs::bench::cluster_bench::{self, ClusterOptions};
use labs::bench::{self, cases::CaseFilter, cluster_report, produce::ProducerSettings, report, BenchOptions};
use labs::lab::protocol::ClusterSettings;

#[derive(Parser, Debug)]
#[command(name = "clusterlab", about = "Cluster Lab: run, break and measure Kafka-compatible brokers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Single-node produce/consume throughput and ack latency per fsync policy.
    Bench(BenchArgs),
    #[command(flatten)]
    Lab(cli::args::LabCommand),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// The clusterlab-broker executable [default: next to this executable].
    #[arg(long)]
    broker_bin: Option<PathBuf>,
    /// A Tansu executable to compare against (falls back to $TANSU_BIN).
    #[arg(long)]
    tansu: Option<PathBuf>,
    /// Measured messages per case [default: 50000 for 100 B, 20000 for 1 KiB].
    #[arg(long)]
    messages: Option<u64>,
    /// Divide message counts by 10.
    #[arg(long)]
    quick: bool,
    /// Only run matching cases, e.g. `fsync=always,size=100` or `fsync=always|never,acks=all`.
    #[arg(long, default_value = "")]
    cases: String,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where per-case broker data directories are created [default: the system temp dir].
    #[arg(long)]
    data_root: Option<PathBuf>,
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Producer linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Most unacknowledged messages the producer keeps outstanding.
    #[arg(long, default_value_t = 10_000)]
    max_in_flight: usize,
    /// Bound on each produce or consume phase of a case, in seconds.
    #[arg(long, default_value_t = 120)]
    phase_timeout_secs: u64,
    /// Run the three-node suite instead of the single-node matrix: RF 3 acks=all throughput
    /// against one node (fsync always and interval:50; --cases still filters), start time, failover.
    #[arg(long)]
    cluster: bool,
    /// Measure the lab itself instead: link-fabric proxy vs direct, timeline append and export.
    #[arg(long)]
    lab: bool,
    /// Measure what the number of Raft groups costs: for each --scale-partitions count on a
    /// fresh three-node cluster, time until all led, idle CPU, threads, RSS, spread produce
    /// throughput, re-lead after a SIGKILL and graceful stop.
    #[arg(long)]
    scale: bool,
    /// --scale: RF 3 partition counts, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [3, 100, 1000, 10000])]
    scale_partitions: Vec<i32>,
    /// --scale: seconds of idle CPU sampling (after 5 s of settling).
    #[arg(long, default_value_t = 10)]
    scale_idle_secs: u64,
    /// --scale: messages of the spread produce phase (0 skips it), 1 KiB each.
    #[arg(long, default_value_t = 100_000)]
    scale_messages: u64,
    /// --scale: skip the SIGKILL of the busiest node.
    #[arg(long)]
    scale_no_kill: bool,
    /// --scale: take the graceful stop while a spread produce runs (started for the stop,
    /// bounded by --scale-messages or 1,000,000 messages and the phase timeout), not idle.
    #[arg(long)]
    scale_stop_under_load: bool,
    /// --scale: replicas per partition (1 measures the cluster without replication; it skips the
    /// SIGKILL, whose partitions could not be led again).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=3))]
    scale_replication_factor: i32,
    /// Send hostile Kafka frames (structure-aware, seeded) at a fresh broker while a client
    /// produces: frames/s, crashes, RSS, and whether every acknowledged message reads back.
    #[arg(long)]
    fuzz: bool,
    /// Queue a burst at once to one RF3 partition with a stock-default producer (acks=all,
    /// idempotence): time, MB/s, ack latency, broker peak RSS, read-back (issue 14).
    #[arg(long)]
    burst: bool,
    /// What the Raft view's RPC telemetry costs a producer: alternating runs with no group
    /// watched and with partition 0 watched and polled as an open view does (issue 11).
    #[arg(long)]
    trace_overhead: bool,
    /// The long chaos run (not in CI): every fault family on safe settings for --soak-minutes,
    /// then faults by family, acknowledged writes, anomalies, unavailability and each broker's
    /// CPU and memory over the run (issue 15). Exports go under --data-root or the temp dir.
    #[arg(long)]
    soak: bool,
    #[arg(long, default_value_t = 30)]
    soak_minutes: u64,
    #[arg(long, default_value_t = 7)]
    soak_seed: u64,
    /// --trace-overhead: rounds (each one run per mode).
    #[arg(long, default_value_t = 5)]
    trace_rounds: usize,
    /// --burst: MB of payload in total.
    #[arg(long, default_value_t = 1024)]
    burst_mb: u64,
    /// --burst: KB per message.
    #[arg(long, default_value_t = 500)]
    burst_message_kb: usize,
    /// --fuzz: frames to send.
    #[arg(long, default_value_t = 1_000_000)]
    fuzz_frames: u64,
    /// --fuzz: the seed every frame derives from (printed; replays a run).
    #[arg(long, default_value_t = 1)]
    fuzz_seed: u64,
    /// --fuzz: a three-node cluster instead of one broker.
    #[arg(long)]
    fuzz_cluster: bool,
    /// --fuzz: stop sending after this many seconds.
    #[arg(long, default_value_t = 1800)]
    fuzz_secs: u64,
    /// --cluster: skip the throughput cases (start time and failover only).
    #[arg(long)]
    no_throughput: bool,
    /// --cluster: fresh three-node clusters started to measure start time (0 skips).
    #[arg(long, default_value_t = 5)]
    start_repeats: usize,
    /// --cluster: SIGKILLs of the partition-0 leader under load (0 skips failover).
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// --cluster: one failover message to partition 0 every this many microseconds.
    #[arg(long, default_value_t = 1000)]
    failover_pace_us: u64,
    /// --cluster: fsync policy of the failover and start-time clusters.
    #[arg(long, default_value = "always")]
    failover_fsync: String,
    /// --cluster: a librdkafka KEY=VALUE for the failover producer (repeatable), e.g.
    /// retry.backoff.max.ms=100.
    #[arg(long = "failover-producer-prop", value_parser = parse_kv)]
    failover_producer: Vec<(String, String)>,
    /// --cluster: Raft timing of every node (default: the lab's, which are the broker's).
    #[arg(long, default_value_t = ClusterSettings::default().election_timeout_min_ms)]
    election_timeout_min_ms: u64,
    #[arg(long, default_value_t = ClusterSettings::default().election_timeout_max_ms)]
    election_timeout_max_ms: u64,
    #[arg(long, default_value_t = ClusterSettings::default().heartbeat_ms)]
    heartbeat_interval_ms: u64,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Bench(args) => runtime.block_on(bench_cmd(args)),
        Command::Lab(cmd) => {
            let code = runtime.block_on(cli::run(cmd))?;
            // Shut the runtime down (dropping every child process it owns) before choosing the
            // exit code. Bounded: a consumer thread blocked inside librdkafka (seen once in CI,
            // its internal locks deadlocked after the drills had passed) must not keep the
            // process alive; the threads still blocked end with the process.
            runtime.shutdown_timeout(BLOCKING_TASKS_AT_EXIT);
            std::process::exit(code);
        }
    }
}

/// How long the exit waits for blocking tasks (client threads) still running.
const BLOCKING_TASKS_AT_EXIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `bench`: the mode its flags pick (lab, fuzz, scale, burst, soak, trace overhead, cluster),
/// else the single-node matrix.
async fn bench_cmd(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(root) = &args.data_root {
        std::fs::create_dir_all(root)
            .map_err(|e| anyhow::anyhow!("creating --data-root {}: {e}", root.display()))?;
    }
    if args.lab {
        return lab_bench_cmd(args).await;
    }
    if args.fuzz {
        return fuzz_cmd(args).await;
    }
    if args.scale {
        return scale_cmd(args).await;
    }
    if args.burst {
        return burst_cmd(args).await;
    }
    if args.soak {
        return soak_cmd(args).await;
    }
    if args.trace_overhead {
        return trace_overhead_cmd(args).await;
    }
    let opts = bench_options(&args)?;
    println!("clusterlab bench\n{}", bench::Setup::collect(&opts).render());
    if args.cluster {
        let copts = ClusterOptions {
            timing: raft_timing(&args),
            throughput: !args.no_throughput,
            start_repeats: args.start_repeats,
            kills: args.kills,
            failover_pace_us: args.failover_pace_us,
            failover_fsync: args.failover_fsync.clone(),
            failover_producer: args.failover_producer.clone(),
        };
        return cluster_cmd(&opts, &copts, args.json.as_deref()).await;
    }
    single_node_cmd(&opts, args.json.as_deref()).await
}

/// `bench --soak`: the long chaos run, its exports under the data root.
async fn soak_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let common = cli::common::Common {
        broker_bin: args.broker_bin,
        data_dir: Some(root.clone()),
        drills: None,
        lessons: None,
    };
    let code = cli::chaos::soak(args.soak_seed, args.soak_minutes, common, root.join("soak")).await?;
    anyhow::ensure!(code == 0, "the soak found anomalies or could not run (above)");
    Ok(())
}

/// The single-node matrix's options (the cluster suite shares them).
fn bench_options(args: &BenchArgs) -> anyhow::Result<BenchOptions> {
    let filter: CaseFilter = args.cases.parse()?;
    Ok(BenchOptions {
        broker_bin: bench::broker_process::locate_broker(args.broker_bin.as_deref())?,
        tansu_bin: bench::tansu::locate_tansu(args.tansu.as_deref())?,
        messages: args.messages,
        quick: args.quick,
        filter,
        data_root: args.data_root.clone().unwrap_or_else(std::env::temp_dir),
        partitions: args.partitions,
        producer: ProducerSettings {
            linger_ms: args.linger_ms,
            max_in_flight: args.max_in_flight,
            message_timeout_ms: 30_000,
        },
        phase_timeout: Duration::from_secs(args.phase_timeout_secs),
    })
}

/// The single-node matrix: results, the Tansu comparison if any, failures last.
async fn single_node_cmd(opts: &BenchOptions, json: Option<&std::path::Path>) -> anyhow::Result<()> {
    // Ctrl-C drops the run, and with it every broker process it started (they are killed on drop).
    let report = tokio::select! {
        r = bench::run(opts) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; brokers started by this run were stopped"),
    };
    println!("{}", report::render_results(&report.results));
    if !report.tansu.is_empty() {
        println!("Tansu (memory storage):\n{}", report::render_results(&report.tansu));
    }
    if !report.comparisons.is_empty() {
        println!(
            "ours / tansu (throughput: >1 = faster; p99: >1 = slower):\n{}",
            report::render_comparisons(&report.comparisons)
        );
    }
    write_json(json, &report)?;
    if !report.failures.is_empty() {
        print!("{}", report::render_failures(&report.failures));
        anyhow::bail!("{} case(s) failed", report.failures.len());
    }
    Ok(())
}

async fn cluster_cmd(
    opts: &BenchOptions,
    copts: &ClusterOptions,
    json: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    println!("{}", cluster_report::render_cluster_setup(copts));
    // Ctrl-C drops the run and with it every node it started (killed on drop).
    let report = tokio::select! {
        r = cluster_bench::run(opts, copts) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; brokers started by this run were stopped"),
    };
    if !report.throughput.is_empty() {
        println!(
            "Produce, acks=all, idempotent (x1 = three nodes / one node, same run):\n{}",
            cluster_report::render_throughput(&report.throughput)
        );
    }
    if let Some(s) = &report.start {
        println!("Cluster start (3 processes spawned in parallel):\n{}", cluster_report::render_start(s));
    }
    if let Some(f) = &report.failover {
        println!(
            "Failover (SIGKILL of the partition-0 leader under paced load):\n{}",
            cluster_report::render_failover(f)
        );
    }
    write_json(json, &report)?;
    if !report.failures.is_empty() {
        print!("{}", report::render_failures(&report.failures));
        anyhow::bail!("{} cluster part(s) failed", report.failures.len());
    }
    Ok(())
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("'{s}' is not KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.trim().to_string()))
}

/// The election and heartbeat timing the bench's clusters run with.
/// What the numbers of a run were measured with: a debug build's are not representative.
fn build_kind() -> &'static str {
    if cfg!(debug_assertions) {
        "debug (not representative)"
    } else {
        "release"
    }
}

/// The machine's load average as /proc says it, printed with every bench's setup.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string()
}

/// `--json PATH`: the report as pretty JSON.
fn write_json(path: Option<&std::path::Path>, report: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_vec_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}

fn raft_timing(args: &BenchArgs) -> RaftTiming {
    RaftTiming {
        election_timeout_min_ms: args.election_timeout_min_ms,
        election_timeout_max_ms: args.election_timeout_max_ms,
        heartbeat_interval_ms: args.heartbeat_interval_ms,
    }
}

/// `bench --fuzz`: hostile frames against real brokers, with a client alongside.
async fn fuzz_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&data_root).with_context(|| format!("creating {}", data_root.display()))?;
    let opts = bench::fuzz::FuzzOptions {
        broker_bin: bench::broker_process::locate_broker(args.broker_bin.as_deref())?,
        data_root,
        frames: args.fuzz_frames,
        seed: args.fuzz_seed,
        cluster: args.fuzz_cluster,
        timing: raft_timing(&args),
        senders: 2,
        workload_messages: 20_000,
        time_limit: Duration::from_secs(args.fuzz_secs),
    };
    println!(
        "clusterlab bench --fuzz: {} build, seed {}, {} frames, {}",
        build_kind(),
        opts.seed,
        opts.frames,
        if opts.cluster { "three nodes" } else { "one broker" }
    );
    let r = bench::fuzz::run(&opts).await?;
    println!(
        "{} frames in {:.0} s ({:.0}/s), {} hung, {} crashes; broker RSS {:.0} MiB before, {:.0} max, {:.0} after; \
         workload {} acknowledged, {} read back",
        r.frames, r.secs, r.frames_per_sec, r.hung_frames, r.crashes, r.rss_mib_before, r.rss_mib_max,
        r.rss_mib_after, r.workload_acked, r.workload_read
    );
    write_json(args.json.as_deref(), &r)?;
    anyhow::ensure!(r.crashes == 0, "{} broker(s) died (seed {})", r.crashes, r.seed);
    anyhow::ensure!(r.workload_read >= r.workload_acked, "acknowledged messages missing after fuzzing");
    Ok(())
}

/// `bench --burst`: a stock producer's burst to one replicated partition.
async fn burst_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let opts = bench::burst::BurstOptions {
        broker_bin: bench::broker_process::locate_broker(args.broker_bin.as_deref())?,
        data_root: args.data_root.clone().unwrap_or_else(std::env::temp_dir),
        fsync: args.failover_fsync.clone(),
        timing: raft_timing(&args),
        total_bytes: args.burst_mb << 20,
        message_bytes: args.burst_message_kb * 1000,
        timeout: Duration::from_secs(args.phase_timeout_secs),
    };
    println!(
        "clusterlab bench --burst: {} build, fsync={}, {} MB of {} KB messages, load {}",
        build_kind(),
        opts.fsync,
        args.burst_mb,
        args.burst_message_kb,
        loadavg()
    );
    let r = bench::burst::measure(&opts).await?;
    println!("{}", bench::burst::render(&r));
    write_json(args.json.as_deref(), &r)?;
    Ok(())
}

/// `bench --trace-overhead`: produce throughput with the Raft view closed and open.
async fn trace_overhead_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let opts = bench::trace_overhead::TraceOverheadOptions {
        broker_bin: bench::broker_process::locate_broker(args.broker_bin.as_deref())?,
        data_root: args.data_root.clone().unwrap_or_else(std::env::temp_dir),
        fsync: args.failover_fsync.clone(),
        timing: raft_timing(&args),
        producer: ProducerSettings {
            linger_ms: args.linger_ms,
            max_in_flight: args.max_in_flight,
            message_timeout_ms: 30_000,
        },
        message_bytes: 1024,
        messages: args.messages.unwrap_or(20_000),
        rounds: args.trace_rounds,
        timeout: Duration::from_secs(args.phase_timeout_secs),
    };
    println!(
        "clusterlab bench --trace-overhead: {} build, fsync={}, load {}",
        build_kind(),
        opts.fsync,
        loadavg()
    );
    let r = bench::trace_overhead::measure(&opts).await?;
    println!("{}", bench::trace_overhead::render(&r));
    write_json(args.json.as_deref(), &r)?;
    Ok(())
}

/// `bench --scale`: what many Raft groups cost.
async fn scale_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&data_root).with_context(|| format!("creating {}", data_root.display()))?;
    let opts = bench::scale::ScaleOptions {
        broker_bin: bench::broker_process::locate_broker(args.broker_bin.as_deref())?,
        data_root,
        fsync: args.failover_fsync.clone(),
        timing: raft_timing(&args),
        partitions: args.scale_partitions.clone(),
        idle: Duration::from_secs(args.scale_idle_secs),
        settle: Duration::from_secs(5),
        messages: args.scale_messages,
        message_bytes: 1024,
        producer: bench::produce::ProducerSettings {
            linger_ms: args.linger_ms,
            max_in_flight: args.max_in_flight,
            message_timeout_ms: 120_000,
        },
        kill: !args.scale_no_kill && args.scale_replication_factor > 1,
        stop_under_load: args.scale_stop_under_load,
        replication_factor: args.scale_replication_factor,
        timeout: Duration::from_secs(args.phase_timeout_secs),
    };
    println!(
        "clusterlab bench --scale: {} build, fsync={}, timing {:?}, producer linger.ms={} max_in_flight={}, load {}",
        build_kind(),
        opts.fsync,
        opts.timing,
        opts.producer.linger_ms,
        opts.producer.max_in_flight,
        loadavg()
    );
    let mut points = Vec::new();
    for &n in &opts.partitions {
        tracing::info!(partitions = n, "scale point starting");
        match bench::scale::measure(&opts, n).await {
            Ok(p) => {
                println!("{}", bench::scale::render(std::slice::from_ref(&p)));
                points.push(p);
            }
            Err(e) => println!("{n} partitions: FAILED: {e}"),
        }
    }
    println!("\n{}", bench::scale::render(&points));
    write_json(args.json.as_deref(), &points)?;
    Ok(())
}

/// `bench --lab`: what the lab's own machinery costs.
async fn lab_bench_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let bin = bench::broker_process::locate_broker(args.broker_bin.as_deref())?;
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let events = if args.quick { 100_000 } else { 1_000_000 };
    let t = tokio::task::spawn_blocking(move || bench::lab_bench::timeline(events, 4)).await??;
    println!(
        "timeline: {} events from {} threads at {:.0} events/s; JSON Lines export of all of them in {:.2} s ({} MB)",
        t.events, t.threads, t.append_events_per_s, t.jsonl_export_s, t.jsonl_bytes / 1_000_000
    );
    let messages = args.messages.unwrap_or(if args.quick { 10_000 } else { 100_000 });
    let mut results = Vec::new();
    for size in [100usize, 1024] {
        let f = bench::lab_bench::fabric(&bin, &data_root, messages, size).await?;
        println!(
            "fabric {size:>4} B x {messages}: direct {:.0} msg/s p99 {:.1} ms | \
             through the lab proxy {:.0} msg/s p99 {:.1} ms | ratio throughput {:.2}, p99 {:.2}",
            f.direct_msgs_per_s,
            f.direct_p99_ms,
            f.proxied_msgs_per_s,
            f.proxied_p99_ms,
            f.throughput_ratio,
            f.p99_ratio
        );
        results.push(f);
    }
    write_json(args.json.as_deref(), &serde_json::json!({ "timeline": t, "fabric": results }))?;
    Ok(())
}
