//! rdkafka helpers: a background idempotent producer that records every delivery report (with the
//! time it arrived), a read-back of whole topics, and group consumers. All synchronous (threads),
//! so tests need no async runtime.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// One message read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub payload: String,
}

impl Record {
    fn from_message<M: Message>(m: &M) -> Record {
        let payload = m.payload().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        Record { partition: m.partition(), offset: m.offset(), payload }
    }
}

/// A successful delivery report.
#[derive(Clone, Debug)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
    pub payload: String,
    pub at: Instant,
}

/// Everything the producer's delivery reports said, in the order they arrived.
#[derive(Clone, Debug, Default)]
pub struct ProduceLog {
    pub sent: usize,
    pub acks: Vec<Ack>,
    /// (payload, error) of every failed delivery report.
    pub errors: Vec<(String, String)>,
}

impl ProduceLog {
    pub fn acked_payloads(&self) -> HashSet<String> {
        self.acks.iter().map(|a| a.payload.clone()).collect()
    }
}

struct Recorder(Arc<Mutex<ProduceLog>>);

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(m) => {
                let r = Record::from_message(m);
                log.acks.push(Ack {
                    partition: r.partition,
                    offset: r.offset,
                    payload: r.payload,
                    at: Instant::now(),
                });
            }
            Err((e, m)) => {
                let r = Record::from_message(m);
                log.errors.push((r.payload, e.to_string()));
            }
        }
    }
}

/// How to produce: `total` messages `<prefix>-<i>` with at most `window` awaiting a report,
/// optionally `pace` between sends.
#[derive(Clone, Debug)]
pub struct ProduceSpec {
    pub bootstrap: String,
    pub topic: String,
    pub prefix: String,
    pub total: usize,
    pub window: usize,
    pub pace: Duration,
    /// Fixed partition for every message (None: keyed, spread over partitions).
    pub partition: Option<i32>,
    /// Distinct keys cycled through (their hashes pick the partitions).
    pub keys: usize,
    pub settings: Vec<(String, String)>,
}

impl ProduceSpec {
    pub fn new(bootstrap: &str, topic: &str, prefix: &str, total: usize) -> ProduceSpec {
        ProduceSpec {
            bootstrap: bootstrap.into(),
            topic: topic.into(),
            prefix: prefix.into(),
            total,
            window: 50,
            pace: Duration::ZERO,
            partition: None,
            keys: 17,
            settings: Vec::new(),
        }
    }

    pub fn set(mut self, k: &str, v: &str) -> ProduceSpec {
        self.settings.push((k.into(), v.into()));
        self
    }
}

/// The idempotent acks=all configuration every scenario uses; `message.timeout.ms` is generous
/// so failovers are retried by librdkafka instead of failing deliveries.
pub fn idempotent_settings() -> Vec<(String, String)> {
    [
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("retries", "2147483647"),
        ("message.timeout.ms", "60000"),
        ("request.timeout.ms", "5000"),
        ("retry.backoff.ms", "50"),
        ("retry.backoff.max.ms", "500"),
        ("reconnect.backoff.ms", "20"),
        ("reconnect.backoff.max.ms", "500"),
        ("topic.metadata.refresh.interval.ms", "2000"),
        ("linger.ms", "5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A producer running on its own thread.
pub struct ProducerRun {
    pub log: Arc<Mutex<ProduceLog>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<()>>>,
}

impl ProducerRun {
    pub fn spawn(spec: ProduceSpec) -> Result<ProducerRun> {
        let log: Arc<Mutex<ProduceLog>> = Arc::default();
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &spec.bootstrap);
        for (k, v) in idempotent_settings() {
            cfg.set(k, v);
        }
        for (k, v) in &spec.settings {
            cfg.set(k, v);
        }
        let producer: ThreadedProducer<Recorder> =
            cfg.create_with_context(Recorder(log.clone())).context("creating a producer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let handle = std::thread::spawn(move || -> Result<()> {
            for i in 0..spec.total {
                if s.load(Ordering::Acquire) {
                    break;
                }
                // Bounded in-flight window: wait for reports before sending more.
                let window_deadline = Instant::now() + Duration::from_secs(120);
                loop {
                    let done = {
                        let g = l.lock().unwrap_or_else(|p| p.into_inner());
                        g.sent.saturating_sub(g.acks.len() + g.errors.len())
                    };
                    if done < spec.window {
                        break;
                    }
                    if Instant::now() > window_deadline {
                        bail!("producer: {done} messages without a delivery report for 120 s");
                    }
                    std::thread::sleep(Duration::from_millis(1)); // poll interval
                }
                let payload = format!("{}-{i:06}", spec.prefix);
                let key = format!("k{}", i % spec.keys.max(1));
                let mut record = BaseRecord::to(&spec.topic).key(&key).payload(&payload);
                if let Some(p) = spec.partition {
                    record = record.partition(p);
                }
                l.lock().unwrap_or_else(|p| p.into_inner()).sent += 1;
                loop {
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                            record = r;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err((e, _)) => bail!("producer.send({payload}): {e}"),
                    }
                }
                if !spec.pace.is_zero() {
                    std::thread::sleep(spec.pace); // pacing, not synchronisation
                }
            }
            producer.flush(Duration::from_secs(120)).map_err(|e| anyhow!("producer flush: {e}"))?;
            Ok(())
        });
        Ok(ProducerRun { log, stop, handle: Some(handle) })
    }

    pub fn acks(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).acks.len()
    }

    pub fn snapshot(&self) -> ProduceLog {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().map(|h| h.is_finished()).unwrap_or(true)
    }

    /// Asks the thread to stop sending; it still flushes what it sent.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Waits for the thread (all sent messages reported) and returns the log.
    pub fn join(mut self) -> Result<ProduceLog> {
        let h = self.handle.take().expect("joined once");
        h.join().map_err(|_| anyhow!("producer thread panicked"))??;
        Ok(self.snapshot())
    }
}

impl Drop for ProducerRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Produces `total` messages and waits for every report.
pub fn produce(spec: ProduceSpec) -> Result<ProduceLog> {
    ProducerRun::spawn(spec)?.join()
}

fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("fetch.wait.max.ms", "100")
        .set("topic.metadata.refresh.interval.ms", "2000")
        .set("enable.partition.eof", "true");
    cfg
}

/// Reads every partition of `topic` from the beginning (manual assignment, no group) until every
/// `expected` payload was seen and every partition reported end-of-partition after its last
/// message, or `timeout` passes (then returns what it read; the checker reports what is missing).
pub fn read_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: &HashSet<String>,
    timeout: Duration,
) -> Result<Vec<Record>> {
    let consumer: BaseConsumer = consumer_config(bootstrap, &crate::harness::unique("reader")).create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut at_eof: BTreeMap<i32, bool> = (0..partitions).map(|p| (p, false)).collect();
    let deadline = Instant::now() + timeout;
    loop {
        let missing = expected.iter().filter(|e| !seen.contains(*e)).count();
        if missing == 0 && at_eof.values().all(|v| *v) {
            return Ok(out);
        }
        if Instant::now() >= deadline {
            eprintln!("read_all {topic} via {bootstrap}: gave up after {timeout:?} with {missing} expected payloads unseen, eof {at_eof:?}");
            return Ok(out);
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let r = Record::from_message(&m);
                at_eof.insert(r.partition, false);
                seen.insert(r.payload.clone());
                out.push(r);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p, true);
            }
            Some(Err(e)) => eprintln!("read_all {topic}: consumer error (retrying): {e}"),
            None => {}
        }
    }
}

/// A group member subscribed to `topic`, reading from the earliest offset when none is committed.
pub fn group_consumer(bootstrap: &str, topic: &str, group: &str) -> Result<BaseConsumer> {
    let consumer: BaseConsumer =
        consumer_config(bootstrap, group).create().context("creating a group consumer")?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// End-of-partition state of a group consumer, kept across `poll_n` and `drain_to_eof` calls
/// (librdkafka reports EOF once per reaching the end, so it must not be dropped in between).
pub type EofState = BTreeMap<i32, bool>;

pub fn eof_state(partitions: i32) -> EofState {
    (0..partitions).map(|p| (p, false)).collect()
}

fn poll_one(consumer: &BaseConsumer, eof: &mut EofState) -> Option<Record> {
    match consumer.poll(Duration::from_millis(200)) {
        Some(Ok(m)) => {
            let r = Record::from_message(&m);
            eof.insert(r.partition, false);
            Some(r)
        }
        Some(Err(KafkaError::PartitionEOF(p))) => {
            eof.insert(p, true);
            None
        }
        Some(Err(e)) => {
            eprintln!("group consumer error (retrying): {e}");
            None
        }
        None => None,
    }
}

/// Polls a group consumer until `count` messages arrived (fails at `timeout` saying how many did).
pub fn poll_n(
    consumer: &BaseConsumer,
    count: usize,
    timeout: Duration,
    eof: &mut EofState,
) -> Result<Vec<Record>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        if Instant::now() >= deadline {
            bail!("group consumer received {}/{count} messages within {timeout:?}", got.len());
        }
        if let Some(r) = poll_one(consumer, eof) {
            got.push(r);
        }
    }
    Ok(got)
}

/// Polls until every partition reported end-of-partition with no message after it, returning
/// any messages that still arrived (normally none).
pub fn drain_to_eof(consumer: &BaseConsumer, timeout: Duration, eof: &mut EofState) -> Result<Vec<Record>> {
    let deadline = Instant::now() + timeout;
    let mut extra = Vec::new();
    while !eof.values().all(|v| *v) {
        if Instant::now() >= deadline {
            let pos = consumer
                .position()
                .map(|t| {
                    format!(
                        "{:?}",
                        t.elements().iter().map(|e| (e.partition(), e.offset())).collect::<Vec<_>>()
                    )
                })
                .unwrap_or_default();
            let wm: Vec<String> = eof
                .keys()
                .map(|p| {
                    format!(
                        "p{p}: {:?}",
                        consumer.fetch_watermarks(&t_name(consumer), *p, Duration::from_secs(5))
                    )
                })
                .collect();
            bail!("group consumer did not reach the end of every partition within {timeout:?}: eof {eof:?}, positions {pos}, watermarks {wm:?}, extra read {}", extra.len());
        }
        if let Some(r) = poll_one(consumer, eof) {
            extra.push(r);
        }
    }
    Ok(extra)
}

fn t_name(consumer: &BaseConsumer) -> String {
    consumer
        .subscription()
        .ok()
        .and_then(|t| t.elements().first().map(|e| e.topic().to_string()))
        .unwrap_or_default()
}

/// Commits, synchronously, the offset after the last consumed record of every partition.
pub fn commit_consumed(
    consumer: &BaseConsumer,
    topic: &str,
    consumed: &[Record],
) -> Result<BTreeMap<i32, i64>> {
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for r in consumed {
        let e = next.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for (p, o) in &next {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))?;
    }
    consumer.commit(&tpl, CommitMode::Sync).context("synchronous offset commit")?;
    Ok(next)
}
