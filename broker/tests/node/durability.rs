//! What an acknowledgement promises across stops and crashes: graceful SIGTERM, SIGKILL with
//! fsync=always, and a flipped byte on disk.

use std::time::Duration;

use anyhow::{anyhow, ensure, Context, Result};
use futures::stream::{FuturesUnordered, StreamExt};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use crate::checker;
use crate::clients::{create_topic, producer, read_all_partitions, send_one, Ack, CLIENT_TIMEOUT};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};

const READ_BACK_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_produce_loses_nothing_acks_0() -> Result<()> {
    sigterm_right_after_produce(0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_right_after_produce_loses_nothing_acks_1() -> Result<()> {
    sigterm_right_after_produce(1).await
}

/// The seed report's bug: partitions that were not flushed when the node stopped lost data.
async fn sigterm_right_after_produce(acks: u8) -> Result<()> {
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let topic = unique(&format!("sigterm-acks{acks}"));
    create_topic(&broker.bootstrap(), &topic, 3).await?;
    let p = producer(&broker.bootstrap(), &[("acks", &acks.to_string())])?;
    let payloads: Vec<String> = (0..100).map(|i| format!("acks{acks}-{i:03}")).collect();
    let sends = payloads.iter().enumerate().map(|(i, payload)| {
        let (p, topic, key) = (&p, &topic, format!("k{i}"));
        async move { p.send(FutureRecord::to(topic).key(&key).payload(payload), CLIENT_TIMEOUT).await }
    });
    let mut delivered = Vec::new();
    for (payload, result) in payloads.iter().zip(futures::future::join_all(sends).await) {
        let d = result.map_err(|(e, _)| anyhow!("{payload} not delivered: {e}"))?;
        // acks=0 reports offset -1: the checker then holds the value to its partition.
        delivered.push(Ack { partition: d.partition, offset: d.offset, payload: payload.clone() });
    }
    p.flush(CLIENT_TIMEOUT).context("producer flush")?;
    broker.stop_gracefully().context("SIGTERM right after the flush")?;
    drop(p);

    broker.restart()?;
    let read = read_all_partitions(&broker.bootstrap(), &topic, READ_BACK_TIMEOUT)?;
    // Every send was acknowledged: each must be read once, on its partition, and nothing else.
    checker::check(&delivered, &[], read.values().flatten())
        .assert_ok_or(&format!("acks={acks} after SIGTERM+restart"), || {
            format!("read: {read:?}\nbroker stderr:\n{}", broker.stderr())
        })
}

/// A client that never pauses must not hold a stopping node until the drain limit: the node
/// reads for `drain_idle_ms` after the SIGTERM, answers what it read, and closes. (It used to
/// read until the client had been quiet for `drain_idle_ms`, which a steady client never is.)
#[test]
fn sigterm_under_a_client_that_never_pauses_ends_the_drain_by_itself() -> Result<()> {
    use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    // Bounds the client by itself, whatever the broker does.
    const MAX_REQUESTS: u64 = 2_000_000;
    const CLIENT_LIMIT: Duration = Duration::from_secs(60);
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let answered = Arc::new(AtomicU64::new(0));
    let mut s = std::net::TcpStream::connect(broker.kafka)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let client = std::thread::spawn({
        let answered = Arc::clone(&answered);
        move || -> Result<String> {
            let started = std::time::Instant::now();
            for id in 0..MAX_REQUESTS {
                if started.elapsed() > CLIENT_LIMIT {
                    break;
                }
                let ask = crate::bad_input::encoded(
                    ApiKey::ApiVersions,
                    0,
                    id as i32,
                    &ApiVersionsRequest::default(),
                )?;
                let answer = s.write_all(&ask).map_err(anyhow::Error::from).and_then(|()| {
                    crate::bad_input::next_answer::<ApiVersionsResponse>(&mut s, 0).map(|(header, _)| header)
                });
                match answer {
                    Ok(header) => {
                        ensure!(
                            header.correlation_id == id as i32,
                            "answer {} to request {id}",
                            header.correlation_id
                        );
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Ok(format!("{e:#}")),
                }
            }
            Ok("the connection was still open when the client's own bound ran out".into())
        }
    });
    crate::wait::wait_for("the client's first 100 answers", Duration::from_secs(30), || {
        Ok((answered.load(Ordering::Relaxed) >= 100).then_some(()))
    })?;
    broker.stop_gracefully().context("SIGTERM while the client keeps asking")?;
    let ended = client.join().map_err(|_| anyhow!("the client thread panicked"))??;
    let stderr = broker.stderr();
    ensure!(
        !stderr.contains("connections still open after the drain limit"),
        "the drain ran to its limit instead of ending 300 ms (drain_idle_ms) after the SIGTERM; \
         the client saw: {ended}"
    );
    println!("{} answers; the client saw the close as: {ended}", answered.load(Ordering::Relaxed));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_with_fsync_always_keeps_every_ack() -> Result<()> {
    const MAX_MESSAGES: usize = 5000;
    const KILL_AFTER_ACKS: usize = 500;
    const WINDOW: usize = 64;
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()).fsync("always"))?;
    let topic = unique("sigkill");
    create_topic(&broker.bootstrap(), &topic, 3).await?;
    // A short message timeout: after the kill, unacknowledged sends should fail quickly.
    let p: FutureProducer =
        producer(&broker.bootstrap(), &[("acks", "all"), ("message.timeout.ms", "5000")])?;
    let send = |i: usize| {
        let (p, topic) = (&p, &topic);
        async move {
            let payload = format!("kill-{i:05}");
            let r =
                p.send(FutureRecord::to(topic).key(&format!("k{i}")).payload(&payload), CLIENT_TIMEOUT).await;
            (payload, r.map(|d| (d.partition, d.offset)).map_err(|(e, _)| e))
        }
    };
    let mut in_flight = FuturesUnordered::new();
    let (mut next, mut killed, mut acks, mut failed) = (0, false, Vec::<Ack>::new(), Vec::<String>::new());
    loop {
        while !killed && next < MAX_MESSAGES && in_flight.len() < WINDOW {
            in_flight.push(send(next));
            next += 1;
        }
        let Some((payload, result)) =
            tokio::time::timeout(Duration::from_secs(30), in_flight.next())
                .await
                .map_err(|_| anyhow!("no delivery report within 30 s ({} acks so far)", acks.len()))?
        else {
            break;
        };
        match result {
            Ok((partition, offset)) => acks.push(Ack { partition, offset, payload }),
            // Failed around the kill: maybe stored, maybe not (indeterminate).
            Err(_) => failed.push(payload),
        }
        if !killed && acks.len() >= KILL_AFTER_ACKS {
            broker.kill_hard()?;
            killed = true;
        }
    }
    ensure!(killed, "never reached {KILL_AFTER_ACKS} acks ({} acks, {} failed)", acks.len(), failed.len());
    println!("sent {next}, acked {}, failed after the kill {}", acks.len(), failed.len());
    drop(in_flight);
    drop(p);

    broker.restart()?;
    let read = read_all_partitions(&broker.bootstrap(), &topic, READ_BACK_TIMEOUT)?;
    // Every ack at its partition and offset (lost or elsewhere fails the test).
    checker::check(&acks, &failed, read.values().flatten()).assert_ok_or(
        "SIGKILL mid-stream with fsync=always",
        || match broker.state() {
            Ok(state) => format!("recovery: {:?}", state.recovery),
            Err(e) => format!("recovery: /state failed: {e:#}"),
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_segment_byte_is_detected_and_reported() -> Result<()> {
    const MESSAGES: usize = 50;
    const CORRUPTED: usize = 25;
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()).fsync("always"))?;
    let topic = unique("corrupt");
    create_topic(&broker.bootstrap(), &topic, 1).await?;
    let p = producer(&broker.bootstrap(), &[("acks", "all"), ("compression.type", "none")])?;
    let mut acks = Vec::new();
    // One at a time: each message is its own batch, so the flipped byte hits exactly one entry.
    for i in 0..MESSAGES {
        acks.push(send_one(&p, &topic, &format!("k{i}"), &format!("corrupt-payload-{i:03}-{topic}")).await?);
    }
    drop(p);
    broker.stop_gracefully()?;

    let segment_dir = broker.partition_dir(&topic, 0);
    let segments: Vec<_> = std::fs::read_dir(&segment_dir)
        .with_context(|| format!("listing {}", segment_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    ensure!(segments.len() == 1, "expected one segment in {}, found {segments:?}", segment_dir.display());
    let segment = &segments[0];
    let mut bytes = std::fs::read(segment)?;
    // Flip a byte inside message 25's payload: record data, covered by the batch CRC.
    let needle = acks[CORRUPTED].payload.as_bytes();
    let at =
        bytes.windows(needle.len()).position(|w| w == needle).ok_or_else(|| {
            anyhow!("payload {} not found in {}", acks[CORRUPTED].payload, segment.display())
        })? + 3;
    ensure!(
        at > 100 && at < bytes.len() - 100,
        "byte {at} is not in the middle of a {} byte segment",
        bytes.len()
    );
    bytes[at] ^= 0xff;
    std::fs::write(segment, &bytes)?;
    println!("flipped byte {at} of {} ({} bytes)", segment.display(), bytes.len());

    broker.restart().context("a corrupt segment must not stop the node from starting")?;
    let state = broker.state()?;
    let entry = state
        .recovery
        .partitions
        .iter()
        .find(|p| p.topic == topic && p.partition == 0)
        .ok_or_else(|| anyhow!("no recovery entry for {topic}-0 in {:?}", state.recovery))?;
    let corruption =
        entry.corruption.as_ref().ok_or_else(|| anyhow!("recovery reports no corruption: {entry:?}"))?;
    ensure!(
        corruption.file.file_name() == segment.file_name(),
        "corruption names {}, expected {}",
        corruption.file.display(),
        segment.display()
    );
    let position = corruption.position;
    ensure!(position > 0 && position <= at as u64, "corruption position {position} should be in (0, {at}]");
    let quarantined = &corruption.quarantined_to;
    ensure!(quarantined.exists(), "quarantined copy {quarantined:?} does not exist");
    let warned = serde_json::to_string(&state.recent_warnings)?;
    ensure!(warned.contains("corrupt"), "recent_warnings do not mention the corruption: {warned}");

    let read = read_all_partitions(&broker.bootstrap(), &topic, READ_BACK_TIMEOUT)?;
    // The messages before the corruption must be readable at their acked offsets (0, 1, ...);
    // the corrupt one and those after it may be gone, but none may come back altered or twice.
    let (before, from_corrupted) = acks.split_at(CORRUPTED);
    let maybe_gone: Vec<String> = from_corrupted.iter().map(|a| a.payload.clone()).collect();
    checker::check(before, &maybe_gone, read.values().flatten())
        .assert_ok_or("messages before the corrupted byte", || format!("read: {read:?}"))?;
    println!("corruption {corruption:?}; {} messages readable", read.values().map(Vec::len).sum::<usize>());
    Ok(())
}
