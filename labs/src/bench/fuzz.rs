//! `clusterlab bench --fuzz`: millions of hostile Kafka frames against real brokers while a real
//! client produces, bounded by count and time.
//!
//! Frames are structure-aware: a request header that decodes, for an API key and version the
//! broker advertises (or one past its maximum), followed by a body of values that break decoders
//! (huge and negative counts and lengths, plain and varint) and random bytes; a share of frames
//! are raw random bytes whose length prefix is random too. Each frame goes on its own connection
//! (the broker closes one it cannot decode). Everything derives from the seed, so a run that
//! finds a crash can be replayed. Measured: frames per second, crashes (a broker process gone),
//! broker RSS before, at its highest and after, and whether the client's acknowledged messages
//! all read back.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::bench::broker_process::BrokerProcess;
use crate::bench::cluster::{create_replicated_topic, Cluster, RaftTiming, NODES};
use crate::bench::consume::consume_all;
use crate::bench::produce::{create_topic, BenchProducer, ProducerSettings};
use crate::error::{LabError, Result};

const TOPIC: &str = "clusterlab-fuzz";
/// How long a sender waits for the broker to answer or close one frame's connection.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct FuzzOptions {
    pub broker_bin: PathBuf,
    pub data_root: PathBuf,
    pub frames: u64,
    pub seed: u64,
    /// Three nodes (frames spread over their Kafka ports) instead of one.
    pub cluster: bool,
    pub timing: RaftTiming,
    /// Parallel connections sending frames.
    pub senders: usize,
    /// Messages the client workload produces (acks=all) during the run.
    pub workload_messages: u64,
    /// Stop sending after this long even if fewer frames went out.
    pub time_limit: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct FuzzReport {
    pub nodes: usize,
    pub seed: u64,
    pub frames: u64,
    pub secs: f64,
    pub frames_per_sec: f64,
    /// Frames after which the broker neither answered nor closed within `FRAME_TIMEOUT`.
    pub hung_frames: u64,
    pub crashes: usize,
    pub rss_mib_before: f64,
    pub rss_mib_max: f64,
    pub rss_mib_after: f64,
    pub workload_acked: u64,
    pub workload_read: u64,
}

/// The brokers under test: one process or a three-node cluster.
enum Target {
    One(BrokerProcess),
    // Boxed: a supervisor-owned cluster is several times the size of one process.
    Three(Box<Cluster>),
}

impl Target {
    fn kafka_addrs(&self) -> Vec<SocketAddr> {
        match self {
            Target::One(b) => vec![b.ready.kafka],
            Target::Three(c) => c.addrs().iter().map(|a| a.kafka).collect(),
        }
    }

    fn pids(&self) -> Vec<u32> {
        match self {
            Target::One(b) => b.pid().into_iter().collect(),
            Target::Three(c) => (1..=NODES as i32).filter_map(|id| c.pid(id)).collect(),
        }
    }

    fn bootstrap(&self) -> String {
        match self {
            Target::One(b) => b.bootstrap(),
            Target::Three(c) => c.bootstrap(),
        }
    }
}

/// xorshift64: deterministic per sender (and for the lab's seeded tests).
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    [(body.len() as i32).to_be_bytes().as_slice(), body].concat()
}

/// Request header v1: api key, version, correlation id, client id.
fn header(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut h = Vec::with_capacity(14);
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&correlation_id.to_be_bytes());
    h.extend_from_slice(&4i16.to_be_bytes());
    h.extend_from_slice(b"fuzz");
    h
}

/// One hostile frame for one of `apis` (key, min, max).
fn hostile_frame(rng: &mut Rng, apis: &[(i16, i16, i16)]) -> Vec<u8> {
    if rng.next().is_multiple_of(8) {
        let n = (rng.next() % 256) as usize;
        return (0..n).map(|_| rng.next() as u8).collect(); // raw: the length prefix is random too
    }
    let (key, min, max) = apis[(rng.next() % apis.len() as u64) as usize];
    let version = min + (rng.next() % (max - min + 2) as u64) as i16;
    let mut body = header(key, version, rng.next() as i32);
    if rng.next().is_multiple_of(2) {
        body.push(0); // empty tagged fields, as a flexible header ends
    }
    for _ in 0..(1 + rng.next() % 6) {
        match rng.next() % 6 {
            0 => body.extend_from_slice(&0x7fff_ffffi32.to_be_bytes()),
            1 => body.extend_from_slice(&(rng.next() as i32 | 0x1000_0000).to_be_bytes()),
            2 => body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            3 => body.extend_from_slice(&(-2i32).to_be_bytes()),
            4 => body.extend_from_slice(&0x7fffi16.to_be_bytes()),
            _ => {
                let n = rng.next() % 32;
                body.extend((0..n).map(|_| rng.next() as u8));
            }
        }
    }
    framed(&body)
}

/// Sends one frame on a fresh connection and waits until the broker answers and closes, or
/// closes. `Ok(false)`: it did neither in time.
fn send_frame(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<bool> {
    let mut s = TcpStream::connect_timeout(&addr, FRAME_TIMEOUT)?;
    let _ = s.write_all(bytes); // the broker may close before all is written
    let _ = s.shutdown(Shutdown::Write);
    s.set_read_timeout(Some(FRAME_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Ok(false)
            }
            Err(_) => return Ok(true), // reset: closed
        }
    }
}

/// (api key, min, max) from an ApiVersions v0 answer.
fn advertised(addr: SocketAddr) -> Result<Vec<(i16, i16, i16)>> {
    let io =
        |e: std::io::Error| LabError::Process { what: "asking ApiVersions".into(), detail: e.to_string() };
    let mut s = TcpStream::connect(addr).map_err(io)?;
    s.write_all(&framed(&header(18, 0, 1))).map_err(io)?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).map_err(io)?;
    let mut a = vec![0u8; i32::from_be_bytes(len).clamp(0, 1 << 20) as usize];
    s.read_exact(&mut a).map_err(io)?;
    let at = |i: usize| a.get(i..i + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let n = a.get(6..10).map_or(0, |b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]).max(0) as usize);
    let apis: Vec<_> =
        (0..n).filter_map(|k| Some((at(10 + k * 6)?, at(12 + k * 6)?, at(14 + k * 6)?))).collect();
    if apis.is_empty() {
        return Err(LabError::Process {
            what: "asking ApiVersions".into(),
            detail: "no APIs advertised".into(),
        });
    }
    Ok(apis)
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

pub async fn run(opts: &FuzzOptions) -> Result<FuzzReport> {
    let target = start_target(opts).await?;
    let addrs = target.kafka_addrs();
    let pids = target.pids();
    let apis = advertised(addrs[0])?;
    let rss_before = pids.iter().map(|p| rss_mib(*p)).fold(0.0, f64::max);
    tracing::info!(seed = opts.seed, frames = opts.frames, nodes = addrs.len(), apis = apis.len(), "fuzzing");

    let settings = ProducerSettings { linger_ms: 5, max_in_flight: 1_000, message_timeout_ms: 120_000 };
    let producer = BenchProducer::new(&target.bootstrap(), TOPIC, 100, "all", &settings)?;
    let workload = producer.run(opts.workload_messages, opts.time_limit + Duration::from_secs(120));

    let started = Instant::now();
    let senders = Senders::start(opts, started + opts.time_limit, &apis, &addrs);
    let (produced, watched) = tokio::join!(workload, watch(&senders, &pids, rss_before));
    let (sent, hung) = senders.join();
    let secs = started.elapsed().as_secs_f64();
    let frames = sent.min(opts.frames);
    let acked = produced.map(|o| o.messages).unwrap_or(0);
    let read = if watched.crashes == 0 {
        consume_all(&target.bootstrap(), TOPIC, 3, acked, Duration::from_secs(120)).await?.messages
    } else {
        0
    };
    Ok(FuzzReport {
        nodes: addrs.len(),
        seed: opts.seed,
        frames,
        secs,
        frames_per_sec: frames as f64 / secs.max(1e-9),
        hung_frames: hung,
        crashes: watched.crashes,
        rss_mib_before: rss_before,
        rss_mib_max: watched.rss_max,
        rss_mib_after: pids.iter().map(|p| rss_mib(*p)).fold(0.0, f64::max),
        workload_acked: acked,
        workload_read: read,
    })
}

/// A fresh broker (or cluster) with the workload's topic created.
async fn start_target(opts: &FuzzOptions) -> Result<Target> {
    Ok(if opts.cluster {
        let c = Cluster::start(&opts.broker_bin, &opts.data_root, "always", opts.timing).await?;
        create_replicated_topic(&c.bootstrap(), TOPIC, 3, Duration::from_secs(60)).await?;
        Target::Three(Box::new(c))
    } else {
        let b = BrokerProcess::start(&opts.broker_bin, &opts.data_root, "always")?;
        create_topic(&b.bootstrap(), TOPIC, 3, 1, Duration::from_secs(30)).await?;
        Target::One(b)
    })
}

/// The sender threads and their shared counters. Each thread ends after the frame count, at
/// the deadline or when `stop` is set (also on drop); [`Senders::join`] joins them all.
struct Senders {
    threads: Vec<std::thread::JoinHandle<()>>,
    sent: Arc<AtomicU64>,
    hung: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Senders {
    /// One thread per sender, each with its own seed, frames spread over `addrs`.
    fn start(
        opts: &FuzzOptions,
        deadline: Instant,
        apis: &[(i16, i16, i16)],
        addrs: &[SocketAddr],
    ) -> Senders {
        let sent = Arc::new(AtomicU64::new(0));
        let hung = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..opts.senders.max(1))
            .map(|i| {
                let (sent, hung, stop, apis, addrs) =
                    (sent.clone(), hung.clone(), stop.clone(), apis.to_vec(), addrs.to_vec());
                let (frames, seed) = (opts.frames, opts.seed.wrapping_add(i as u64).max(1));
                std::thread::spawn(move || {
                    let mut rng = Rng::new(seed);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let n = sent.fetch_add(1, Ordering::Relaxed);
                        if n >= frames {
                            break;
                        }
                        let frame = hostile_frame(&mut rng, &apis);
                        match send_frame(addrs[(n % addrs.len() as u64) as usize], &frame) {
                            Ok(true) => {}
                            Ok(false) => {
                                hung.fetch_add(1, Ordering::Relaxed);
                            }
                            // Refused: the broker is gone (the watcher counts it) or out of sockets.
                            Err(_) => std::thread::sleep(Duration::from_millis(10)),
                        }
                    }
                })
            })
            .collect();
        Senders { threads, sent, hung, stop }
    }

    fn all_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Joins every thread; returns (frames counted, frames the broker hung on).
    fn join(mut self) -> (u64, u64) {
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        (self.sent.load(Ordering::Relaxed), self.hung.load(Ordering::Relaxed))
    }
}

impl Drop for Senders {
    /// A run dropped before `join` (Ctrl-C) stops its senders at their next frame instead of
    /// leaving them to the deadline.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What watching the brokers saw.
struct Watched {
    rss_max: f64,
    crashes: usize,
}

/// Samples the brokers' RSS and liveness every half second until the senders are done or a
/// broker is gone (then the senders are told to stop).
async fn watch(senders: &Senders, pids: &[u32], rss_before: f64) -> Watched {
    let mut w = Watched { rss_max: rss_before, crashes: 0 };
    // Bounded: the senders end by the deadline.
    loop {
        let done = senders.all_finished();
        w.rss_max = pids.iter().map(|p| rss_mib(*p)).fold(w.rss_max, f64::max);
        w.crashes = pids.iter().filter(|p| !alive(**p)).count();
        if w.crashes > 0 {
            senders.stop.store(true, Ordering::Relaxed);
        }
        if done || w.crashes > 0 {
            return w;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
