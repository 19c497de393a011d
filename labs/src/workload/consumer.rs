//! Consumers of the workload, and the final full read the checker relies on.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::producer::VALUE_END;
use super::{Recorder, WorkloadConfig};
use crate::history::{Op, OpKind, OpType};
use crate::LabError;

/// Process number of the final reader in histories.
pub const FINAL_READER: u32 = 999;

/// The value a payload carries (the bytes before `VALUE_END`).
pub fn value_of(payload: &[u8]) -> String {
    let end = payload.iter().position(|b| *b == VALUE_END).unwrap_or(payload.len());
    String::from_utf8_lossy(&payload[..end]).into_owned()
}

pub(crate) fn poll_op(process: u32, topic: &str, payload: Option<&[u8]>, partition: i32, offset: i64) -> Op {
    Op::new(process, OpType::Ok, OpKind::Poll, topic)
        .value(value_of(payload.unwrap_or_default()))
        .at(partition, offset)
}

pub struct ConsumerTask {
    consumer: StreamConsumer,
    process: u32,
    recorder: Recorder,
}

impl ConsumerTask {
    pub fn new(config: &WorkloadConfig, process: u32, recorder: Recorder) -> crate::Result<ConsumerTask> {
        let group = if config.consumer_group {
            format!("clusterlab-{}", config.topic)
        } else {
            format!("clusterlab-{}-{process}", config.topic)
        };
        let consumer: StreamConsumer = super::client_config()
            .set("bootstrap.servers", &config.bootstrap)
            .set("group.id", group)
            .set("client.id", format!("clusterlab-consumer-{process}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("session.timeout.ms", "6000")
            .set("topic.metadata.refresh.interval.ms", "1000")
            .create()
            .map_err(|source| LabError::Kafka { what: format!("creating consumer {process}"), source })?;
        let topics = config.topics();
        consumer
            .subscribe(&topics.iter().map(String::as_str).collect::<Vec<_>>())
            .map_err(|source| LabError::Kafka { what: format!("subscribing consumer {process}"), source })?;
        Ok(ConsumerTask { consumer, process, recorder })
    }

    pub async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                msg = self.consumer.recv() => match msg {
                    Ok(m) => self.recorder.record(poll_op(
                        self.process,
                        m.topic(),
                        m.payload(),
                        m.partition(),
                        m.offset(),
                    )),
                    // Errors during faults are expected (leader moves); the client retries.
                    Err(e) => tracing::debug!(process = self.process, error = %e, "consumer error"),
                }
            }
        }
        // Dropping a group consumer blocks until it has left the group, which takes round trips
        // through the lab's own proxies. On a runtime worker, three such drops on a two-core
        // machine stalled every worker, and with them the proxies the drops waited for.
        let (consumer, process) = (self.consumer, self.process);
        let _ = tokio::task::spawn_blocking(move || close_within(consumer, process, CLOSE_LIMIT)).await;
    }
}

/// How long a consumer may take to leave its group before the run goes on without it.
pub(crate) const CLOSE_LIMIT: Duration = Duration::from_secs(15);

/// Drops (closes) `consumer` on a thread of its own and waits for it at most `limit`.
///
/// librdkafka's close can wait forever (rust-rdkafka issue 509, librdkafka 4884): a CI run hung
/// 80 minutes after a drill had read back every message, with a consumer still leaving its group.
/// Runs must end by themselves, so a close that overruns is left behind with a warning; its thread
/// ends with the process. Blocking: call it from a blocking thread.
pub(crate) fn close_within<C: Send + 'static>(consumer: C, process: u32, limit: Duration) {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let closer = std::thread::Builder::new().name(format!("close-consumer-{process}")).spawn(move || {
        drop(consumer);
        let _ = done_tx.send(());
    });
    if let Err(e) = closer {
        tracing::warn!(process, error = %e, "no thread to close a consumer on; it is left open");
        return;
    }
    if done_rx.recv_timeout(limit).is_err() {
        tracing::warn!(
            process,
            secs = limit.as_secs(),
            "a consumer did not close in time; the run goes on without it"
        );
    }
}

/// Reads every partition of `topic` from the beginning up to its high watermark (as the
/// leaders report it now) and records each message as a `poll ok` of `FINAL_READER`.
pub fn read_all(bootstrap: &str, topic: &str, recorder: &Recorder, timeout: Duration) -> crate::Result<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("clusterlab-final-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|source| LabError::Kafka { what: "creating the final reader".into(), source })?;
    let read = read_to_end(&consumer, topic, recorder, timeout);
    close_within(consumer, FINAL_READER, CLOSE_LIMIT);
    read
}

fn read_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    recorder: &Recorder,
    timeout: Duration,
) -> crate::Result<u64> {
    let deadline = std::time::Instant::now() + timeout;
    let kafka = |what: &str| {
        let what = what.to_string();
        move |source| LabError::Kafka { what: what.clone(), source }
    };
    let md = retry_until(deadline, || consumer.fetch_metadata(Some(topic), Duration::from_secs(5)))
        .map_err(kafka("reading metadata for the final read"))?;
    let partitions: Vec<i32> =
        md.topics().iter().flat_map(|t| t.partitions().iter().map(|p| p.id())).collect();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        let (_, high) =
            retry_until(deadline, || consumer.fetch_watermarks(topic, *p, Duration::from_secs(5)))
                .map_err(kafka("reading watermarks"))?;
        ends.insert(*p, high);
        tpl.add_partition_offset(topic, *p, Offset::Beginning).map_err(kafka("assigning"))?;
    }
    consumer.assign(&tpl).map_err(kafka("assigning partitions"))?;
    let mut read = 0u64;
    let mut positions: BTreeMap<i32, i64> = partitions.iter().map(|p| (*p, 0)).collect();
    while positions.iter().any(|(p, pos)| *pos < ends[p]) {
        if std::time::Instant::now() > deadline {
            return Err(LabError::Timeout {
                what: format!("reading {topic} to its end (positions {positions:?}, ends {ends:?})"),
                secs: timeout.as_secs_f64(),
            });
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                positions.insert(m.partition(), m.offset() + 1);
                recorder.record(poll_op(FINAL_READER, topic, m.payload(), m.partition(), m.offset()));
                read += 1;
            }
            Some(Err(e)) => tracing::debug!(error = %e, "final read error"),
            None => {
                // Control batches end a partition without a message: the position tells.
                if let Ok(pos) = consumer.position() {
                    for e in pos.elements() {
                        if let Offset::Offset(o) = e.offset() {
                            let p = positions.entry(e.partition()).or_insert(0);
                            *p = (*p).max(o);
                        }
                    }
                }
            }
        }
    }
    Ok(read)
}

/// Right after a restart of every node a partition may have no leader for a moment (the client
/// then says "Unknown partition"); the final read retries until its deadline before failing.
fn retry_until<T>(
    deadline: std::time::Instant,
    mut call: impl FnMut() -> rdkafka::error::KafkaResult<T>,
) -> rdkafka::error::KafkaResult<T> {
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() + Duration::from_millis(200) >= deadline => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "final read: retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks in `drop` until the test lets it go, as librdkafka's close can.
    struct HangsOnClose(std::sync::mpsc::Receiver<()>);

    impl Drop for HangsOnClose {
        fn drop(&mut self) {
            let _ = self.0.recv();
        }
    }

    #[test]
    fn a_close_that_hangs_is_left_behind() {
        let (release, held) = std::sync::mpsc::channel();
        let (returned_tx, returned) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            close_within(HangsOnClose(held), 7, Duration::from_millis(50));
            let _ = returned_tx.send(());
        });
        let outcome = returned.recv_timeout(Duration::from_secs(20));
        let _ = release.send(());
        assert!(outcome.is_ok(), "close_within waited for a close that never ends");
    }
}
