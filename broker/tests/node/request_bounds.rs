//! How much a node holds for its Kafka clients' requests: a connection that pipelines without
//! bound is read a bounded way ahead, all connections share the node's byte budget, and a client
//! that stops reading its answers is closed so that its share comes back (docs/reliability.md).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::bad_input::{encoded, encoded_from, next_answer, CLOSE_TIMEOUT};
use crate::clients::{producer, send_one};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};
use crate::memory_bounds::with_small_receive_buffer;

/// The node's `clusterlab_kafka_requests_in_progress` gauge.
fn requests_in_progress(broker: &Broker) -> Result<usize> {
    gauge(broker, "clusterlab_kafka_requests_in_progress")
}

/// The node's gauge `name` in `/metrics`.
pub(crate) fn gauge(broker: &Broker, name: &str) -> Result<usize> {
    let metrics = crate::endpoint::get_text(broker.http, "/metrics")?;
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .with_context(|| format!("no {name} in /metrics"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

/// A client that writes requests far faster than they complete (here 10,000 long-polling
/// fetches, without reading an answer until all are sent) is read at most 8,192 requests ahead:
/// the rest wait in its socket, not in the broker's memory. Every request is still answered, in
/// order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pipelining_without_bound_is_read_a_bounded_way_ahead() -> Result<()> {
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    const REQUESTS: i32 = 10_000;
    /// `MAX_STARTED` in broker/src/protocol/connection.rs.
    const BOUND: usize = 8_192;
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let topic = unique("pipelined");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let ack = send_one(&p, &topic, "k", "v").await.context("creating the topic")?;
    let fetch = fetch_at_the_end(&topic, ack.partition, ack.offset + 1, 300);
    let mut wire = Vec::new();
    for correlation_id in 0..REQUESTS {
        wire.extend(encoded(ApiKey::Fetch, 4, correlation_id, &fetch)?);
    }
    let mut s = TcpStream::connect(broker.kafka)?;
    s.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    // Written from another thread: once the broker stops reading, the write waits for room.
    let mut w = s.try_clone()?;
    let writer = std::thread::spawn(move || w.write_all(&wire));

    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut seen = requests_in_progress(&broker)?;
    while seen < BOUND * 9 / 10 {
        ensure!(
            Instant::now() < deadline,
            "the broker never had {} requests in progress (last: {seen})",
            BOUND * 9 / 10
        );
        seen = requests_in_progress(&broker)?;
    }
    let most = (0..20).map(|_| requests_in_progress(&broker)).collect::<Result<Vec<_>>>()?;
    let most = most.into_iter().max().unwrap_or_default().max(seen);
    ensure!(most <= BOUND, "{most} requests of one connection in progress at once; the bound is {BOUND}");

    for expected in 0..REQUESTS {
        let (header, _) =
            next_answer::<FetchResponse>(&mut s, 4).with_context(|| format!("answer {expected}"))?;
        ensure!(header.correlation_id == expected, "answer {expected} came as {}", header.correlation_id);
    }
    writer.join().expect("writer thread").context("writing the requests")?;
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while requests_in_progress(&broker)? != 0 {
        ensure!(Instant::now() < deadline, "requests still counted in progress after every answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The counter `clusterlab bench --scale` reads: every request, the producer's too.
    let total = gauge(&broker, "clusterlab_kafka_requests_total")?;
    ensure!(
        total > REQUESTS as usize,
        "{total} Kafka requests counted after {REQUESTS} fetches and a produce"
    );
    broker.assert_healthy("a connection pipelining 10,000 requests")?;
    Ok(())
}

/// Clients pipelining large requests on several connections, reading no answer until all are
/// sent, make the node hold at most `max_request_bytes_in_progress` (here 1 MiB) of their frames
/// in all, although each connection alone may hold 64 MiB and here sends 3 MiB. The bytes gauge
/// reaches near the bound and never passes it; every request is still answered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_pipelining_large_requests_share_the_node_byte_budget() -> Result<()> {
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    const BUDGET: usize = 1 << 20;
    const CONNECTIONS: usize = 3;
    const REQUESTS: i32 = 100;
    const BYTES: &str = "clusterlab_kafka_request_bytes_in_progress";
    let dir = data_dir();
    let budget = BUDGET.to_string();
    let opts = BrokerOpts::new(dir.path()).arg("--max-request-bytes-in-progress").arg(&budget);
    let mut broker = Broker::start(opts)?;
    let topic = unique("node-budget");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let ack = send_one(&p, &topic, "k", "v").await.context("creating the topic")?;
    let fetch = fetch_at_the_end(&topic, ack.partition, ack.offset + 1, 500);
    // A client id of 32,000 bytes (an i16-length string holds at most 32,767) makes each fetch
    // about 31 KiB: some 32 of them fill the node's budget.
    let client_id = "c".repeat(32_000);
    let mut frame_len = 0;
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut wire = Vec::new();
        for correlation_id in 0..REQUESTS {
            let frame = encoded_from(Some(&client_id), ApiKey::Fetch, 4, correlation_id, &fetch)?;
            frame_len = frame.len();
            wire.extend(frame);
        }
        let s = TcpStream::connect(broker.kafka)?;
        s.set_read_timeout(Some(CLOSE_TIMEOUT))?;
        // Written from another thread: once the broker stops reading, the write waits for room.
        let mut w = s.try_clone()?;
        connections.push((s, std::thread::spawn(move || w.write_all(&wire))));
    }

    // Exact, not one frame over: a request is counted once admitted and uncounted before its
    // share of the budget is returned. Sampled until it has been near, then 20 times more.
    let near = BUDGET - 2 * frame_len;
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let (mut most, mut after_near) = (0, 0);
    while after_near < 20 {
        let seen = gauge(&broker, BYTES)?;
        ensure!(seen <= BUDGET, "{seen} bytes of requests in progress at once; the node's bound is {BUDGET}");
        most = most.max(seen);
        if most >= near {
            after_near += 1;
        }
        ensure!(Instant::now() < deadline, "the node never held {near} bytes of requests (most: {most})");
    }

    for (c, (mut s, writer)) in connections.into_iter().enumerate() {
        for expected in 0..REQUESTS {
            let (header, _) = next_answer::<FetchResponse>(&mut s, 4)
                .with_context(|| format!("answer {expected} on connection {c}"))?;
            ensure!(
                header.correlation_id == expected,
                "answer {expected} on connection {c} came as {}",
                header.correlation_id
            );
        }
        writer.join().expect("writer thread").with_context(|| format!("writing on connection {c}"))?;
    }
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while gauge(&broker, BYTES)? != 0 || requests_in_progress(&broker)? != 0 {
        ensure!(Instant::now() < deadline, "requests still counted in progress after every answer");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker.assert_healthy("connections pipelining past the node's byte budget")?;
    Ok(())
}

/// A client that pipelines requests with large answers and stops reading them holds the node's
/// byte budget (here 1 MiB) only until the write stall limit (here `connections_max_idle_ms`,
/// 3 s, below the 30 s default): a request another client sends meanwhile, which does not fit
/// beside it, waits; then the broker closes the stalled connection with a warning naming the
/// peer and the limit, the budget comes back, and the waiting request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answers_is_closed_and_frees_the_node_budget() -> Result<()> {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, TopicName,
    };
    const BUDGET: usize = 1 << 20;
    const STALL_LIMIT: Duration = Duration::from_millis(3_000);
    const REQUESTS: i32 = 200;
    const BYTES: &str = "clusterlab_kafka_request_bytes_in_progress";
    const ANSWER_BYTES: &str = "clusterlab_kafka_answer_bytes_in_progress";
    let dir = data_dir();
    let (budget, idle_ms) = (BUDGET.to_string(), STALL_LIMIT.as_millis().to_string());
    let opts = BrokerOpts::new(dir.path())
        .arg("--max-request-bytes-in-progress")
        .arg(&budget)
        .arg("--connections-max-idle-ms")
        .arg(&idle_ms);
    let mut broker = Broker::start(opts)?;
    let topic = unique("stalled-reader");
    // About 8 MB in one partition (one key): a fetch from its start that finds room in the budget
    // answers all of it, more than the socket buffers below hold, so the first such answer
    // stalls the writer. (Fetches that find no room answer no records after 100 ms.)
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let value = "v".repeat(100_000);
    let first = send_one(&p, &topic, "k", &value).await.context("creating the topic")?;
    for i in 1..80 {
        send_one(&p, &topic, "k", &value).await.with_context(|| format!("message {i}"))?;
    }
    let partition = FetchPartition::default()
        .with_partition(first.partition)
        .with_fetch_offset(first.offset)
        .with_partition_max_bytes(16 << 20);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(topic.clone().into()))
            .with_partitions(vec![partition])]);
    // Frames of ~31 KiB (a 32,000-byte client id): 32 of them fill the budget.
    let client_id = "c".repeat(32_000);
    let mut wire = Vec::new();
    let mut frame_len = 0;
    for correlation_id in 0..REQUESTS {
        let frame = encoded_from(Some(&client_id), ApiKey::Fetch, 4, correlation_id, &fetch)?;
        frame_len = frame.len();
        wire.extend(frame);
    }
    let mut stalled = with_small_receive_buffer(broker.kafka)?;
    let stalled_addr = stalled.local_addr()?;
    // The first fetch alone, until its answer holds its share of the budget (and the writer is
    // stalled on it): sent with the others, their frames could fill the budget first, and then
    // every answer finds no room and goes out empty, never stalling the writer.
    stalled.write_all(&wire[..frame_len])?;
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while gauge(&broker, ANSWER_BYTES)? == 0 {
        ensure!(Instant::now() < deadline, "the first fetch's answer never held any of the budget");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The rest from another thread: once the broker stops reading, the write waits for room,
    // and it may fail when the broker closes the connection.
    let mut w = stalled.try_clone()?;
    let writer = std::thread::spawn(move || w.write_all(&wire[frame_len..]));

    // The stalled connection's answer being written (larger than half the budget, so it holds
    // half) and its unanswered requests fill the budget: the room left is less than one frame.
    // The state must have held for a while (the budget comes and goes until the writer stalls).
    let near = BUDGET / 2 - frame_len;
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut held_since: Option<Instant> = None;
    loop {
        let (seen, answer) = (gauge(&broker, BYTES)?, gauge(&broker, ANSWER_BYTES)?);
        held_since = if seen >= near && answer > 0 { held_since.or(Some(Instant::now())) } else { None };
        if held_since.is_some_and(|t| t.elapsed() >= Duration::from_millis(300)) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "the stalled connection never held {near} bytes of requests and an answer (last: {seen}, {answer})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    // A request larger than any room left (a 32,767-byte client id) waits for the budget...
    let mut other = TcpStream::connect(broker.kafka)?;
    let long_id = "o".repeat(32_767);
    other.write_all(&encoded_from(
        Some(&long_id),
        ApiKey::ApiVersions,
        0,
        7,
        &ApiVersionsRequest::default(),
    )?)?;
    let sent = Instant::now();
    other.set_read_timeout(Some(Duration::from_millis(300)))?;
    let mut byte = [0u8; 1];
    match other.peek(&mut byte) {
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        got => bail!("the other client was answered ({got:?}) while the stalled one held the budget"),
    }
    // ... and is answered once the broker has closed the stalled connection, within its limit.
    other.set_read_timeout(Some(STALL_LIMIT + CLOSE_TIMEOUT))?;
    let (header, _) = next_answer::<ApiVersionsResponse>(&mut other, 0)
        .context("the other client's request, after the stall limit")?;
    ensure!(header.correlation_id == 7, "the other client's answer came as {}", header.correlation_id);
    println!("the other client was answered after {:?}", sent.elapsed());

    let deadline = Instant::now() + CLOSE_TIMEOUT;
    while gauge(&broker, BYTES)? != 0
        || gauge(&broker, ANSWER_BYTES)? != 0
        || requests_in_progress(&broker)? != 0
    {
        ensure!(Instant::now() < deadline, "requests still counted in progress after the stall limit");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The stalled socket ends (EOF or reset) after whatever answers were buffered.
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut buf = vec![0u8; 1 << 16];
    let mut buffered = 0usize;
    stalled.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    loop {
        ensure!(Instant::now() < deadline, "the stalled connection still open after {buffered} bytes");
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => buffered += n,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                bail!("the stalled connection still open after {buffered} bytes and {CLOSE_TIMEOUT:?}")
            }
            Err(_) => break, // reset by the broker: closed too
        }
    }
    let _ = writer.join().expect("writer thread"); // cut short by the close, or done before it
    let warnings = broker.warnings_text()?;
    let peer = format!("closed connection from {stalled_addr}");
    ensure!(
        warnings.contains(&peer) && warnings.contains("write stall limit"),
        "no warning names the stalled peer and the limit: {warnings}"
    );
    broker.assert_healthy("a client that stopped reading its answers")?;
    send_one(&p, &topic, "k", "after").await.context("produce after the stalled client")?;
    Ok(())
}

/// A fetch from `offset` at the log end: it waits `max_wait_ms` for data that never comes, so it
/// stays in progress that long.
fn fetch_at_the_end(
    topic: &str,
    partition: i32,
    offset: i64,
    max_wait_ms: i32,
) -> kafka_protocol::messages::FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
    let partition = FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(1 << 20);
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(topic.to_string().into()))
            .with_partitions(vec![partition])])
}
