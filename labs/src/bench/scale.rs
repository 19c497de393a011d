//! `clusterlab bench --scale`: what the number of Raft groups costs a three-node cluster.
//!
//! For each partition count (RF 3, one topic created through the Kafka admin API) on a fresh
//! cluster: time from the CreateTopics request until every partition has a confirmed leader,
//! idle CPU of the three brokers, threads and RSS per broker, produce throughput with messages
//! spread over every partition (acks=all), then a SIGKILL of the node leading the most groups:
//! time until every group is led again and how far each group's term moved, and finally the time
//! a graceful stop (SIGTERM) of the whole cluster takes, idle or (`--scale-stop-under-load`)
//! while a spread produce runs.
//!
//! Everything is read from outside: `/proc/<pid>` for CPU, threads and memory, `GET /raft/summary`
//! and `GET /raft/groups` for leadership (their cost is part of what is measured, and small).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use broker::cluster::watch::GroupState;
use broker::telemetry::memory::MemoryReport;
use broker::telemetry::wire::Role;

use crate::bench::broker_process::STATE_TIMEOUT;
use crate::bench::cluster::{create_topic_with_replicas, Cluster, RaftTiming};
use crate::bench::produce::{BenchProducer, ProducerSettings};
use crate::error::{LabError, Result};
use crate::node_client::typed;

const TOPIC: &str = "clusterlab-scale";
/// How often leadership is polled while waiting.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct ScaleOptions {
    pub broker_bin: PathBuf,
    pub data_root: PathBuf,
    pub fsync: String,
    pub timing: RaftTiming,
    pub partitions: Vec<i32>,
    /// Idle CPU is sampled over this long, after `settle`.
    pub idle: Duration,
    pub settle: Duration,
    /// Messages for the throughput phase (0 skips it).
    pub messages: u64,
    pub message_bytes: usize,
    /// The spread produce's client: linger and window (`--linger-ms`, `--max-in-flight`). At a
    /// thousand partitions they decide how many records a Raft entry carries.
    pub producer: ProducerSettings,
    pub kill: bool,
    /// `--scale-stop-under-load`: the graceful stop is taken while a spread produce runs.
    pub stop_under_load: bool,
    /// Replicas per partition (3: every node; 1: no replication, the bound of the rest).
    pub replication_factor: i32,
    /// Bound on every wait (leaders after creation, after the kill, the produce phase).
    pub timeout: Duration,
}

/// One partition count, measured.
#[derive(Debug, Clone, Serialize)]
pub struct ScalePoint {
    pub partitions: i32,
    pub replication_factor: i32,
    /// CreateTopics request sent -> every partition led (a confirmed leader somewhere).
    pub all_led_ms: f64,
    /// Idle CPU of the three brokers together, in % of one core.
    pub idle_cpu_pct: f64,
    pub idle_cpu_pct_per_node: Vec<f64>,
    pub threads_per_node: Vec<u64>,
    pub rss_mib_per_node: Vec<f64>,
    /// Each broker's own account at the same idle moment, so the produce's "after" has a base.
    pub memory_idle_per_node: Vec<Option<MemoryReport>>,
    pub leaders_per_node: BTreeMap<i32, usize>,
    pub produce: Option<ProduceFigures>,
    pub relead: Option<Relead>,
    /// SIGTERM to the whole cluster -> every process exited.
    pub graceful_stop_ms: Option<f64>,
    /// Whether a spread produce was running when the stop began.
    pub stopped_under_load: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProduceFigures {
    pub messages: u64,
    pub message_bytes: usize,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub p99_ack_ms: f64,
    /// CPU the three brokers used during the measured produce, per acknowledged message, in
    /// microseconds: steadier than the rate on a shared machine, and the cost a faster
    /// replication path must cut.
    pub broker_cpu_us_per_msg: f64,
    /// CPU of this process (the librdkafka producer and its callbacks) over the same produce,
    /// per message: it shares the machine with the brokers, so it bounds the rate too.
    pub client_cpu_us_per_msg: f64,
    /// Messages per Raft entry appended during the measured produce, from the growth of the
    /// log index of the node that appended the most (`GET /memory`): the client's batching as
    /// the cluster sees it. Raft's own entries count too, so it reads low while
    /// followers still append the first entries of many new groups (seen at 10,000 partitions).
    /// `None` when a node did not answer.
    pub records_per_entry: Option<f64>,
    /// Raft requests the three brokers sent to each other during the measured produce, per
    /// message (`peers[].requests_sent` of `GET /state`): one per follower per replication round
    /// of a group, plus the node heartbeats. At many partitions the CPU per message did not follow
    /// the entries; this count is the next suspect (docs/benchmarks.md, session 35). `None` when a
    /// node did not answer.
    pub raft_requests_per_msg: Option<f64>,
    /// Kafka requests the three brokers read during the measured produce, per message
    /// (`clusterlab_kafka_requests_total` of `/metrics`): the client's requests, the other count
    /// that grows with the partitions. `None` when a node did not answer.
    pub kafka_requests_per_msg: Option<f64>,
    /// RSS of each broker once every message is acknowledged: what the groups hold after work,
    /// next to `rss_mib_per_node` measured idle before it.
    pub rss_mib_after_per_node: Vec<f64>,
    /// Each broker's own account at the same moment (`GET /memory`): how much of that RSS is
    /// heap in use, freed memory the allocator holds, and the log index; `None` for a node that
    /// did not answer, so the columns stay aligned with the RSS ones.
    pub memory_after_per_node: Vec<Option<MemoryReport>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Relead {
    pub killed_node: i32,
    /// Partitions the killed node led.
    pub groups: usize,
    /// SIGKILL -> every partition led again by a survivor.
    pub all_led_ms: f64,
    /// Of the killed node's partitions: how many moved by exactly one term.
    pub term_plus_one: usize,
    pub max_term_jump: u64,
}

/// Partitions of the topic led (confirmed) per node, over the nodes that answer.
async fn leaders(cluster: &Cluster) -> BTreeMap<i32, usize> {
    let mut out = BTreeMap::new();
    for a in cluster.addrs().iter().filter(|a| cluster.is_running(a.id)) {
        if let Ok(s) = typed::raft_summary(a.http, STATE_TIMEOUT).await {
            out.insert(a.id, s.topics.get(TOPIC).map_or(0, |t| t.leading));
        }
    }
    out
}

async fn wait_all_led(
    cluster: &Cluster,
    partitions: i32,
    started: Instant,
    timeout: Duration,
) -> Result<f64> {
    loop {
        let led: usize = leaders(cluster).await.values().sum();
        if led >= partitions as usize {
            return Ok(started.elapsed().as_secs_f64() * 1000.0);
        }
        if started.elapsed() > timeout {
            return Err(LabError::Timeout {
                what: format!("every one of {partitions} partitions led ({led} are)"),
                secs: timeout.as_secs_f64(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// (term, leading) of every partition of the topic as `node` reports it.
async fn group_terms(addr: SocketAddr) -> Result<BTreeMap<String, (u64, bool)>> {
    let path = format!("/raft/groups?topic={TOPIC}");
    let lines: Vec<GroupState> = crate::node_client::get(addr, &path, STATE_TIMEOUT).await?;
    Ok(lines.into_iter().map(|g| (g.group.to_string(), (g.term, g.role == Role::Leader))).collect())
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// (threads, RSS in MiB) of a process.
fn threads_and_rss(pid: u32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    (field("Threads:").unwrap_or(0), field("VmRSS:").unwrap_or(0) as f64 / 1024.0)
}

fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Idle CPU per node over `window`, in % of one core.
async fn idle_cpu(cluster: &Cluster, window: Duration) -> Vec<f64> {
    let pids = cluster.pids();
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let secs = started.elapsed().as_secs_f64();
    let hz = ticks_per_sec();
    pids.iter()
        .zip(before)
        .map(|(p, b)| (cpu_ticks(*p).unwrap_or(b).saturating_sub(b)) as f64 / hz / secs * 100.0)
        .collect()
}

/// Each node's `GET /memory`, in node order; `None` where a node did not answer.
async fn memory_per_node(cluster: &Cluster) -> Vec<Option<MemoryReport>> {
    let addrs = cluster.addrs();
    let mut reports = Vec::with_capacity(addrs.len());
    for a in &addrs {
        reports.push(typed::memory(a.http, STATE_TIMEOUT).await.ok());
    }
    reports
}

/// Raft requests sent by all nodes to their peers so far; `None` if a node did not answer.
async fn raft_requests_sent(cluster: &Cluster) -> Option<u64> {
    let mut sent = 0;
    for a in cluster.addrs() {
        let state = typed::state(a.http, typed::StateParts::SUMMARY, STATE_TIMEOUT).await.ok()?;
        sent += state.raft?.peers.iter().map(|p| p.requests_sent).sum::<u64>();
    }
    Some(sent)
}

/// Kafka requests all nodes have read so far; `None` if a node did not answer.
async fn kafka_requests_read(cluster: &Cluster) -> Option<u64> {
    let mut read = 0;
    for a in cluster.addrs() {
        let metrics = crate::node_client::get_text(a.http, "/metrics", STATE_TIMEOUT).await.ok()?;
        let line = metrics.lines().find(|l| l.starts_with("clusterlab_kafka_requests_total{"))?;
        read += line.rsplit(' ').next()?.parse::<u64>().ok()?;
    }
    Some(read)
}

/// Entries in each node's partition-log indexes, in node order; `None` if a node did not answer.
fn index_entries(reports: &[Option<MemoryReport>]) -> Option<Vec<u64>> {
    reports.iter().map(|m| m.as_ref().map(|m| m.log_index_entries)).collect()
}

/// One figure of every node's memory account in MiB, joined as the table's other columns are.
fn memory_column(reports: &[Option<MemoryReport>], pick: fn(&MemoryReport) -> Option<u64>) -> String {
    let mib = |b: Option<u64>| b.map_or("?".into(), |b| format!("{:.0}", b as f64 / (1u64 << 20) as f64));
    reports.iter().map(|m| mib(m.as_ref().and_then(pick))).collect::<Vec<_>>().join(" / ")
}

/// Measures one partition count on a fresh cluster.
pub async fn measure(opts: &ScaleOptions, partitions: i32) -> Result<ScalePoint> {
    let cluster = Cluster::start(&opts.broker_bin, &opts.data_root, &opts.fsync, opts.timing).await?;
    cluster.wait_ready(None, opts.timeout).await?;
    let started = Instant::now();
    let rf = opts.replication_factor;
    create_topic_with_replicas(&cluster.bootstrap(), TOPIC, partitions, rf, opts.timeout).await?;
    let all_led_ms = wait_all_led(&cluster, partitions, started, opts.timeout).await?;
    tracing::info!(partitions, all_led_ms, "every partition led");
    tokio::time::sleep(opts.settle).await;
    let per_node = idle_cpu(&cluster, opts.idle).await;
    let (threads, rss): (Vec<u64>, Vec<f64>) = cluster.pids().into_iter().map(threads_and_rss).unzip();
    let memory_idle = memory_per_node(&cluster).await;
    let leaders_per_node = leaders(&cluster).await;
    let produce = match opts.messages {
        0 => None,
        _ => {
            let mut figures = produce_spread(&cluster, opts).await?;
            figures.rss_mib_after_per_node =
                cluster.pids().into_iter().map(|pid| threads_and_rss(pid).1).collect();
            Some(figures)
        }
    };
    let relead = if opts.kill { Some(kill_busiest(&cluster, partitions, opts).await?) } else { None };
    let load = if opts.stop_under_load { Some(start_load(&cluster, opts).await?) } else { None };
    let stop_started = Instant::now();
    let stopped = cluster.stop().await;
    if let Some(load) = load {
        // Its deliveries fail once every node is gone; what it saw is not measured here.
        load.abort();
    }
    let graceful_stop_ms = match stopped {
        Ok(()) => Some(stop_started.elapsed().as_secs_f64() * 1000.0),
        Err(e) => {
            tracing::warn!(error = %e, "graceful stop failed");
            None
        }
    };
    Ok(ScalePoint {
        partitions,
        replication_factor: opts.replication_factor,
        all_led_ms,
        idle_cpu_pct: per_node.iter().sum(),
        idle_cpu_pct_per_node: per_node,
        threads_per_node: threads,
        rss_mib_per_node: rss,
        memory_idle_per_node: memory_idle,
        leaders_per_node,
        produce,
        relead,
        graceful_stop_ms,
        stopped_under_load: opts.stop_under_load,
    })
}

/// Starts a spread produce in the background and returns once the brokers are reading its
/// requests: the load a graceful stop meets with `--scale-stop-under-load`. Bounded by its
/// message count and the phase timeout; the caller aborts it after the stop.
async fn start_load(cluster: &Cluster, opts: &ScaleOptions) -> Result<tokio::task::JoinHandle<Result<()>>> {
    const REQUESTS_SEEN: u64 = 200;
    let producer = spread_producer(cluster, opts)?;
    let count = if opts.messages > 0 { opts.messages } else { 1_000_000 };
    let timeout = opts.timeout;
    let before = kafka_requests_read(cluster).await.unwrap_or(0);
    let load = tokio::spawn(async move { producer.run(count, timeout).await.map(|_| ()) });
    let what = format!("the brokers reading {REQUESTS_SEEN} produce requests of the load before the stop");
    let started = Instant::now();
    loop {
        let read = kafka_requests_read(cluster).await.unwrap_or(0);
        if read >= before + REQUESTS_SEEN {
            return Ok(load);
        }
        if load.is_finished() {
            // Its own error says why; one that ended well was too small to be a load.
            let detail = match load.await {
                Ok(Err(e)) => return Err(e),
                Ok(Ok(())) => format!("all {count} messages were acknowledged before {what}"),
                Err(e) => e.to_string(),
            };
            return Err(LabError::Process { what: "the load under the graceful stop".into(), detail });
        }
        if started.elapsed() > opts.timeout {
            load.abort();
            return Err(LabError::Timeout { what, secs: opts.timeout.as_secs_f64() });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// acks=all, every message to a random partition (sticky partitioning off), so every group works.
fn spread_producer(cluster: &Cluster, opts: &ScaleOptions) -> Result<BenchProducer> {
    BenchProducer::with_overrides(
        &cluster.bootstrap(),
        TOPIC,
        opts.message_bytes,
        "all",
        &opts.producer,
        &[("sticky.partitioning.linger.ms", "0")],
    )
}

/// The measured spread produce, after a tenth of its messages as a warm-up.
async fn produce_spread(cluster: &Cluster, opts: &ScaleOptions) -> Result<ProduceFigures> {
    let producer = spread_producer(cluster, opts)?;
    producer.run((opts.messages / 10).max(1), opts.timeout).await?;
    let pids = cluster.pids();
    let cpu = || pids.iter().filter_map(|p| cpu_ticks(*p)).sum::<u64>();
    let entries_before = index_entries(&memory_per_node(cluster).await);
    let requests_before = raft_requests_sent(cluster).await;
    let kafka_before = kafka_requests_read(cluster).await;
    let me = std::process::id();
    let (cpu_before, client_before) = (cpu(), cpu_ticks(me));
    let out = producer.run(opts.messages, opts.timeout).await?;
    let cpu_secs = cpu().saturating_sub(cpu_before) as f64 / ticks_per_sec();
    let client_secs =
        client_before.zip(cpu_ticks(me)).map_or(0, |(b, a)| a.saturating_sub(b)) as f64 / ticks_per_sec();
    let requests = requests_before.zip(raft_requests_sent(cluster).await).map(|(b, a)| a.saturating_sub(b));
    let kafka = kafka_before.zip(kafka_requests_read(cluster).await).map(|(b, a)| a.saturating_sub(b));
    // Read once: it gives both the entries appended and the memory account after the produce.
    let memory_after = memory_per_node(cluster).await;
    let appended = entries_before
        .zip(index_entries(&memory_after))
        .map(|(before, after)| after.iter().zip(before).map(|(a, b)| a.saturating_sub(b)).max().unwrap_or(0));
    let secs = out.elapsed.as_secs_f64().max(1e-9);
    Ok(ProduceFigures {
        messages: out.messages,
        message_bytes: opts.message_bytes,
        msgs_per_sec: out.messages as f64 / secs,
        mb_per_sec: out.bytes as f64 / secs / 1e6,
        p99_ack_ms: out.latency_us.value_at_quantile(0.99) as f64 / 1000.0,
        broker_cpu_us_per_msg: cpu_secs * 1e6 / out.messages.max(1) as f64,
        client_cpu_us_per_msg: client_secs * 1e6 / out.messages.max(1) as f64,
        records_per_entry: appended.filter(|n| *n > 0).map(|n| out.messages as f64 / n as f64),
        raft_requests_per_msg: requests.map(|n| n as f64 / out.messages.max(1) as f64),
        kafka_requests_per_msg: kafka.map(|n| n as f64 / out.messages.max(1) as f64),
        rss_mib_after_per_node: Vec::new(),
        memory_after_per_node: memory_after,
    })
}

/// SIGKILL the node leading the most partitions; time until all are led again, term moves.
async fn kill_busiest(cluster: &Cluster, partitions: i32, opts: &ScaleOptions) -> Result<Relead> {
    let counts = leaders(cluster).await;
    let (victim, _) = counts
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(id, n)| (*id, *n))
        .ok_or(LabError::Timeout { what: "a node that answers /raft/summary".into(), secs: 0.0 })?;
    let addr = cluster.addr(victim)?.http;
    let before: BTreeMap<String, u64> = group_terms(addr)
        .await?
        .into_iter()
        .filter(|(_, (_, leads))| *leads)
        .map(|(g, (t, _))| (g, t))
        .collect();
    let killed_at = Instant::now();
    cluster.kill(victim).await?;
    let all_led_ms = wait_all_led(cluster, partitions, killed_at, opts.timeout).await?;
    let mut after: BTreeMap<String, u64> = BTreeMap::new();
    for a in cluster.addrs().iter().filter(|a| cluster.is_running(a.id)) {
        for (g, (term, leads)) in group_terms(a.http).await? {
            if leads {
                after.insert(g, term);
            }
        }
    }
    let jumps: Vec<u64> =
        before.iter().filter_map(|(g, old)| after.get(g).map(|new| new.saturating_sub(*old))).collect();
    tracing::info!(victim, groups = before.len(), all_led_ms, "re-led after SIGKILL");
    cluster.restart(victim).await?;
    Ok(Relead {
        killed_node: victim,
        groups: before.len(),
        all_led_ms,
        term_plus_one: jumps.iter().filter(|j| **j == 1).count(),
        max_term_jump: jumps.iter().copied().max().unwrap_or(0),
    })
}

/// The table of `docs/benchmarks.md`.
pub fn render(points: &[ScalePoint]) -> String {
    let mut out = String::from(
        "| partitions (RF) | all led after create | idle CPU, 3 brokers (% of one core) | \
         threads per broker | RSS per broker (MiB) | produce spread, acks=all | \
         re-led after SIGKILL of the busiest node | term +1 | graceful stop |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for p in points {
        let join = |v: Vec<String>| v.join(" / ");
        let produce = p.produce.as_ref().map_or("-".into(), |f| {
            let account = |pick| memory_column(&f.memory_after_per_node, pick);
            format!(
                "{:.0} msg/s ({:.1} MB/s, p99 {:.0} ms, broker CPU {:.0} µs/msg, client CPU {:.0} µs/msg, {} \
                 records per Raft entry, {} Raft and {} Kafka requests per message); RSS after {} MiB: heap in use {}, \
                 freed but held {}, log index {}",
                f.msgs_per_sec,
                f.mb_per_sec,
                f.p99_ack_ms,
                f.broker_cpu_us_per_msg,
                f.client_cpu_us_per_msg,
                f.records_per_entry.map_or("?".into(), |r| format!("{r:.2}")),
                f.raft_requests_per_msg.map_or("?".into(), |r| format!("{r:.3}")),
                f.kafka_requests_per_msg.map_or("?".into(), |r| format!("{r:.3}")),
                join(f.rss_mib_after_per_node.iter().map(|r| format!("{r:.0}")).collect()),
                account(|m| m.heap_in_use_bytes),
                account(|m| m.heap_free_held_bytes),
                account(|m| Some(m.log_index_bytes)),
            )
        });
        let (relead, plus_one) = p.relead.as_ref().map_or(("-".into(), "-".into()), |r| {
            (
                format!("{:.0} ms ({} groups of node {})", r.all_led_ms, r.groups, r.killed_node),
                format!(
                    "{}/{} ({:.0} %), max +{}",
                    r.term_plus_one,
                    r.groups,
                    100.0 * r.term_plus_one as f64 / r.groups.max(1) as f64,
                    r.max_term_jump
                ),
            )
        });
        out.push_str(&format!(
            "| {} (RF {}) | {:.0} ms | {:.1} % ({}) | {} | {} (heap in use {}) | {} | {} | {} | {} |\n",
            p.partitions,
            p.replication_factor,
            p.all_led_ms,
            p.idle_cpu_pct,
            join(p.idle_cpu_pct_per_node.iter().map(|c| format!("{c:.1}")).collect()),
            join(p.threads_per_node.iter().map(|t| t.to_string()).collect()),
            join(p.rss_mib_per_node.iter().map(|r| format!("{r:.0}")).collect()),
            memory_column(&p.memory_idle_per_node, |m| m.heap_in_use_bytes),
            produce,
            relead,
            plus_one,
            match (p.graceful_stop_ms, p.stopped_under_load) {
                (None, _) => "failed".into(),
                (Some(ms), false) => format!("{ms:.0} ms"),
                (Some(ms), true) => format!("{ms:.0} ms under load"),
            },
        ));
    }
    out
}
