//! `clusterlab`: the Cluster Lab command line.
//!
//! Only `bench` exists so far; `up`, `status`, `fault`, `drill`, `export` and `serve` will be
//! further variants of [`Command`], each with its own args struct like [`BenchArgs`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use labs::bench::{self, cases::CaseFilter, produce::ProducerSettings, report, BenchOptions};

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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match cli.command {
        Command::Bench(args) => runtime.block_on(bench_cmd(args)),
    }
}

async fn bench_cmd(args: BenchArgs) -> anyhow::Result<()> {
    let filter: CaseFilter = args.cases.parse()?;
    let opts = BenchOptions {
        broker_bin: bench::broker_process::locate_broker(args.broker_bin.as_deref())?,
        tansu_bin: bench::tansu::locate_tansu(args.tansu.as_deref())?,
        messages: args.messages,
        quick: args.quick,
        filter,
        data_root: args.data_root.unwrap_or_else(std::env::temp_dir),
        partitions: args.partitions,
        producer: ProducerSettings { linger_ms: args.linger_ms, max_in_flight: args.max_in_flight, message_timeout_ms: 30_000 },
        phase_timeout: Duration::from_secs(args.phase_timeout_secs),
    };
    println!("clusterlab bench\n{}", bench::Setup::collect(&opts).render());

    // Ctrl-C drops the run, and with it every broker process it started (they are killed on drop).
    let report = tokio::select! {
        r = bench::run(&opts) => r?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; brokers started by this run were stopped"),
    };

    println!("{}", report::render_results(&report.results));
    if !report.tansu.is_empty() {
        println!("Tansu (memory storage):\n{}", report::render_results(&report.tansu));
    }
    if !report.comparisons.is_empty() {
        println!("ours / tansu (throughput: >1 = faster; p99: >1 = slower):\n{}", report::render_comparisons(&report.comparisons));
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("JSON written to {}", path.display());
    }
    if !report.failures.is_empty() {
        print!("{}", report::render_failures(&report.failures));
        anyhow::bail!("{} case(s) failed", report.failures.len());
    }
    Ok(())
}
