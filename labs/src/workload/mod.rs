//! The drill workload: real Kafka clients (rdkafka) whose every operation lands in a history.
//!
//! - `admin` — creating topics.
//! - `producer` — producers sending unique values, recording invoke / ok / fail / info.
//! - `consumer` — group consumers recording what they read, and the final full read.
//! - `group` — a churning consumer group: members join and leave, commit sync and async.
//!
//! Every loop is bounded by a message count and a duration and stops by itself.

pub mod admin;
pub mod consumer;
pub mod group;
pub mod producer;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::history::{History, Op, OpKind, OpType};

/// What the clients do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkloadConfig {
    /// Where producers bootstrap.
    pub bootstrap: String,
    /// Where consumers bootstrap (None: `bootstrap`), e.g. "through the rejoined node".
    pub consumer_bootstrap: Option<String>,
    pub topic: String,
    pub producers: u32,
    pub consumers: u32,
    /// Total messages over all producers (the bound).
    pub messages: u64,
    /// Total send rate over all producers; None = as fast as acks allow.
    pub rate_per_sec: Option<u32>,
    /// Producers stop after this long even if `messages` were not all sent.
    pub duration: Duration,
    pub message_bytes: usize,
    /// "all", "1" or "0".
    pub acks: String,
    pub idempotence: bool,
    /// Consumers join one group (and commit) instead of reading by assignment.
    pub consumer_group: bool,
    /// librdkafka's delivery timeout: after it, an unacknowledged send is indeterminate.
    pub message_timeout_ms: u32,
    /// With `consumer_group`: members leave and rejoin this often and commit themselves
    /// (`group.rs`). None: members stay and auto-commit.
    #[serde(default)]
    pub churn: Option<Duration>,
    /// More topics written and read besides `topic` (a multi-topic chaos run): producers spread
    /// their sends over every topic in turn, consumers subscribe to all of them.
    #[serde(default)]
    pub extra_topics: Vec<String>,
}

impl WorkloadConfig {
    /// `topic` and the extra topics, in order.
    pub fn topics(&self) -> Vec<String> {
        std::iter::once(self.topic.clone()).chain(self.extra_topics.iter().cloned()).collect()
    }
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            bootstrap: String::new(),
            consumer_bootstrap: None,
            topic: "drill".into(),
            producers: 1,
            consumers: 1,
            messages: 1000,
            rate_per_sec: Some(200),
            duration: Duration::from_secs(20),
            message_bytes: 100,
            acks: "all".into(),
            idempotence: true,
            consumer_group: true,
            message_timeout_ms: 30_000,
            churn: None,
            extra_topics: Vec::new(),
        }
    }
}

/// Live counters for progress displays and gauges.
#[derive(Debug, Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    pub failed: AtomicU64,
    pub indeterminate: AtomicU64,
    pub consumed: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(rename = "WorkloadCounters")]
pub struct CounterValues {
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub indeterminate: u64,
    pub consumed: u64,
}

impl Counters {
    pub fn values(&self) -> CounterValues {
        CounterValues {
            sent: self.sent.load(Ordering::Relaxed),
            acked: self.acked.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            indeterminate: self.indeterminate.load(Ordering::Relaxed),
            consumed: self.consumed.load(Ordering::Relaxed),
        }
    }
}

/// Where operations go as they happen: the history, the counters, and a listener (timeline,
/// live checker).
pub type OpListener = Arc<dyn Fn(&Op) + Send + Sync>;

#[derive(Clone)]
pub struct Recorder {
    history: Arc<Mutex<History>>,
    counters: Arc<Counters>,
    listener: Option<OpListener>,
}

impl Recorder {
    pub fn new(listener: Option<OpListener>) -> Recorder {
        Recorder {
            history: Arc::new(Mutex::new(History::default())),
            counters: Arc::new(Counters::default()),
            listener,
        }
    }

    pub fn record(&self, op: Op) {
        let c = &self.counters;
        match (op.kind, op.op_type) {
            (OpKind::Send, OpType::Invoke) => c.sent.fetch_add(1, Ordering::Relaxed),
            (OpKind::Send, OpType::Ok) => c.acked.fetch_add(1, Ordering::Relaxed),
            (OpKind::Send, OpType::Fail) => c.failed.fetch_add(1, Ordering::Relaxed),
            (OpKind::Send, OpType::Info) => c.indeterminate.fetch_add(1, Ordering::Relaxed),
            (OpKind::Poll, OpType::Ok) => c.consumed.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let mut h = self.history.lock().unwrap_or_else(|p| p.into_inner());
        let index = h.push(op);
        if let Some(listener) = &self.listener {
            listener(&h.ops[index as usize]);
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    pub fn history(&self) -> History {
        self.history.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A client config for the workload's producers and consumers. `CLUSTERLAB_RDKAFKA_DEBUG` set to
/// librdkafka debug contexts (`metadata,broker,msg`, `cgrp`) shows librdkafka's own reasoning on
/// stderr.
fn client_config() -> rdkafka::config::ClientConfig {
    let mut client = rdkafka::config::ClientConfig::new();
    if let Ok(contexts) = std::env::var("CLUSTERLAB_RDKAFKA_DEBUG") {
        client.set("debug", contexts).set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
    }
    client
}

/// A running workload.
pub struct Workload {
    pub config: WorkloadConfig,
    recorder: Recorder,
    stop_producers: CancellationToken,
    stop_consumers: CancellationToken,
    producers: TaskTracker,
    consumers: TaskTracker,
}

impl Workload {
    /// Starts producers (and consumers unless `consumers_later`); returns at once.
    pub fn start(
        config: WorkloadConfig,
        listener: Option<OpListener>,
        consumers_later: bool,
    ) -> crate::Result<Workload> {
        let recorder = Recorder::new(listener);
        let w = Workload {
            recorder,
            stop_producers: CancellationToken::new(),
            stop_consumers: CancellationToken::new(),
            producers: TaskTracker::new(),
            consumers: TaskTracker::new(),
            config,
        };
        let per_producer = w.config.messages.div_ceil(w.config.producers.max(1) as u64);
        for p in 0..w.config.producers {
            let task = producer::ProducerTask::new(&w.config, p, per_producer, w.recorder.clone())?;
            w.producers.spawn(task.run(w.stop_producers.clone()));
        }
        w.producers.close();
        if !consumers_later {
            w.start_consumers()?;
        }
        Ok(w)
    }

    /// Starts the consumers (once; later calls do nothing), bootstrapped on `via` if given.
    pub fn start_consumers(&self) -> crate::Result<()> {
        self.start_consumers_via(None)
    }

    pub fn start_consumers_via(&self, via: Option<String>) -> crate::Result<()> {
        if !self.consumers.is_empty() || self.consumers.is_closed() {
            return Ok(());
        }
        let mut config = self.config.clone();
        if let Some(b) = via.or_else(|| self.config.consumer_bootstrap.clone()) {
            config.bootstrap = b;
        }
        for c in 0..config.consumers {
            match config.churn.filter(|_| config.consumer_group) {
                Some(churn) => {
                    let (config, recorder, stop) =
                        (config.clone(), self.recorder.clone(), self.stop_consumers.clone());
                    self.consumers.spawn_blocking(move || {
                        group::run_member(config, 100 + c, c == 0, churn, recorder, stop)
                    });
                }
                None => {
                    let task = consumer::ConsumerTask::new(&config, 100 + c, self.recorder.clone())?;
                    self.consumers.spawn(task.run(self.stop_consumers.clone()));
                }
            }
        }
        self.consumers.close();
        Ok(())
    }

    pub fn counters(&self) -> CounterValues {
        self.recorder.counters().values()
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// True once every producer finished (bound reached or stopped).
    pub fn producers_done(&self) -> bool {
        self.producers.is_empty()
    }

    /// Waits until producers end by themselves (their bounds) or `limit` passes, then stops them.
    pub async fn wait_producers(&self, limit: Duration) {
        if tokio::time::timeout(limit, self.producers.wait()).await.is_err() {
            self.stop_producers.cancel();
            if tokio::time::timeout(STOP_LIMIT, self.producers.wait()).await.is_err() {
                tracing::warn!(secs = STOP_LIMIT.as_secs(), "producers did not stop in time");
            }
        }
    }

    /// Waits until the group's members have received every record the final reader read (the
    /// log as it ends), or `limit` passes. True when they did. What is still missing then is
    /// what the checker reports as unseen.
    pub async fn wait_group_drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let missing = {
                let h = self.recorder.history.lock().unwrap_or_else(|p| p.into_inner());
                let polled = |final_reader: bool| {
                    h.ops
                        .iter()
                        .filter(move |o| o.kind == OpKind::Poll && o.op_type == OpType::Ok)
                        .filter(move |o| (o.process == consumer::FINAL_READER) == final_reader)
                        .filter_map(|o| Some((o.topic.as_str(), o.partition?, o.offset?)))
                };
                let seen: std::collections::HashSet<(&str, i32, i64)> = polled(false).collect();
                polled(true).filter(|k| !seen.contains(k)).count()
            };
            if missing == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(missing, "the group did not receive every record before the drain limit");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Stops everything and returns the history. Bounded: a client that does not stop in time
    /// (librdkafka's close can hang) is left behind with a warning.
    pub async fn finish(self) -> History {
        self.stop_producers.cancel();
        if tokio::time::timeout(STOP_LIMIT, self.producers.wait()).await.is_err() {
            tracing::warn!(
                secs = STOP_LIMIT.as_secs(),
                "producers did not stop in time; history taken without them"
            );
        }
        self.stop_consumers.cancel();
        if tokio::time::timeout(STOP_LIMIT, self.consumers.wait()).await.is_err() {
            tracing::warn!(
                secs = STOP_LIMIT.as_secs(),
                "consumers did not stop in time; history taken without them"
            );
        }
        self.recorder.history()
    }
}

/// How long `finish` waits for clients to stop: more than a consumer's own close limit.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A workload dropped without `finish` (a run given up on) still stops its clients: group
/// members run on blocking threads until told, and the runtime waits for those when it ends.
impl Drop for Workload {
    fn drop(&mut self) {
        self.stop_producers.cancel();
        self.stop_consumers.cancel();
    }
}
