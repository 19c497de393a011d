//! rdkafka helpers shared by the tests: producing with recorded acks, reading partitions back.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

/// Metadata and admin calls against a loopback broker answer in milliseconds; this is generous.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// One message as read back from the broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub payload: String,
}

impl Record {
    fn from_message<M: Message>(m: &M) -> Record {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
        Record {
            partition: m.partition(),
            offset: m.offset(),
            key: text(m.key()),
            payload: text(m.payload()),
        }
    }
}

/// What the broker acknowledged for one produced message.
#[derive(Clone, Debug)]
pub struct Ack {
    pub partition: i32,
    pub offset: i64,
    pub payload: String,
}

pub fn producer(bootstrap: &str, settings: &[(&str, &str)]) -> Result<FutureProducer> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap).set("message.timeout.ms", "15000").set("linger.ms", "5");
    for (k, v) in settings {
        cfg.set(*k, *v);
    }
    cfg.create().context("creating a FutureProducer")
}

/// Produces one message and waits for its ack.
pub async fn send_one(p: &FutureProducer, topic: &str, key: &str, payload: &str) -> Result<Ack> {
    let record = FutureRecord::to(topic).key(key).payload(payload);
    let d = p
        .send(record, CLIENT_TIMEOUT)
        .await
        .map_err(|(e, _)| anyhow!("producing {payload:?} to {topic}: {e}"))?;
    Ok(Ack { partition: d.partition, offset: d.offset, payload: payload.to_string() })
}

/// Creates a topic with the admin API and fails unless the broker confirms it.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create()?;
    let opts =
        AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT)).request_timeout(Some(CLIENT_TIMEOUT));
    let results =
        admin.create_topics(&[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))], &opts).await?;
    for r in results {
        r.map_err(|(name, code)| anyhow!("CreateTopics {name} failed: {code:?}"))?;
    }
    Ok(())
}

fn consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("fetch.wait.max.ms", "100");
    cfg
}

/// Reads every partition of `topic` from offset 0 up to its high watermark at call time, outside
/// any group (manual assignment), so durability tests depend on the log alone.
pub fn read_all_partitions(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, Vec<Record>>> {
    let consumer: BaseConsumer = consumer_config(bootstrap, &crate::harness::unique("reader")).create()?;
    let md = consumer.fetch_metadata(Some(topic), CLIENT_TIMEOUT).context("metadata for the read-back")?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| anyhow!("topic {topic} not in metadata"))?;
    if t.partitions().is_empty() {
        bail!("topic {topic} has no partitions in metadata (error {:?})", t.error());
    }
    let mut high = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in t.partitions() {
        let (_, hw) = consumer
            .fetch_watermarks(topic, p.id(), CLIENT_TIMEOUT)
            .with_context(|| format!("watermarks of {topic}-{}", p.id()))?;
        high.insert(p.id(), hw);
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut out: BTreeMap<i32, Vec<Record>> = high.keys().map(|p| (*p, Vec::new())).collect();
    let done = |out: &BTreeMap<i32, Vec<Record>>| {
        high.iter().all(|(p, hw)| out[p].last().map(|r| r.offset + 1).unwrap_or(0) >= *hw)
    };
    let deadline = Instant::now() + timeout;
    while !done(&out) {
        if Instant::now() >= deadline {
            let progress: Vec<String> =
                high.iter().map(|(p, hw)| format!("p{p}: {}/{hw}", out[p].len())).collect();
            bail!("reading {topic} back timed out after {timeout:?}: {}", progress.join(", "));
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.entry(m.partition()).or_default().push(Record::from_message(&m)),
            Some(Err(e)) => bail!("consuming {topic}: {e}"),
            None => {}
        }
    }
    Ok(out)
}

/// A group member subscribed to `topic` that reads from the earliest offset when none is committed.
pub fn group_consumer(bootstrap: &str, topic: &str, group: &str) -> Result<StreamConsumer> {
    let consumer: StreamConsumer =
        consumer_config(bootstrap, group).create().context("creating a StreamConsumer")?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

/// Receives until `count` messages arrived; fails at `timeout` saying how many did.
pub async fn receive(consumer: &StreamConsumer, count: usize, timeout: Duration) -> Result<Vec<Record>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut got = Vec::with_capacity(count);
    while got.len() < count {
        match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(Ok(m)) => got.push(Record::from_message(&m)),
            Ok(Err(e)) => bail!("group consumer error after {} messages: {e}", got.len()),
            Err(_) => bail!("group consumer received {}/{count} messages within {timeout:?}", got.len()),
        }
    }
    Ok(got)
}
