//! Malformed bytes on the Kafka port close that one connection and nothing else: the node stays
//! up, says why in its warnings, and serves a normal client afterwards. A well-formed request
//! for an API the broker does not serve gets an error answer instead.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::clients::{producer, read_all_partitions, send_one};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};

/// Fixed so a failure can be replayed; printed by the test.
const FUZZ_SEED: u64 = 0x5EED_C1A5_7E57_0001;
const FUZZ_FRAMES: usize = 200;
/// How long the broker gets to close a connection it cannot make sense of.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Request header v1 (api key, version, correlation id, client id).
fn header_v1(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api_key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&correlation_id.to_be_bytes());
    let client = b"fuzz";
    h.extend_from_slice(&(client.len() as i16).to_be_bytes());
    h.extend_from_slice(client);
    h
}

/// Sends `bytes` on a fresh connection and waits for the broker to close it. With
/// `half_close`, our side stops writing first (the input is incomplete and the broker would
/// otherwise rightly wait for the rest). Returns what the broker answered before closing.
fn send_and_expect_close(kafka: SocketAddr, bytes: &[u8], half_close: bool) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(kafka).context("connecting to the Kafka port")?;
    // The broker may close before we finish writing; that is a correct reaction, not a failure.
    let _ = s.write_all(bytes);
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        s.set_read_timeout(Some(
            deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
        ))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(answer),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                bail!("the broker kept the connection open {CLOSE_TIMEOUT:?} after {} bad bytes", bytes.len())
            }
            Err(_) => return Ok(answer), // reset by the broker: closed too
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fuzz_then_normal_client_works() -> Result<()> {
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let kafka = broker.kafka;

    let mut truncated = framed(&header_v1(18, 0, 1));
    truncated.truncate(7);
    let mut cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("a truncated frame", truncated, true),
        ("a frame of length 0x7fffffff", [0x7fff_ffffi32.to_be_bytes().as_slice(), b"abcd"].concat(), false),
        ("a negative frame length", [(-256i32).to_be_bytes().as_slice(), b"abcd"].concat(), false),
        ("an unknown api key", framed(&header_v1(9999, 0, 7)), false),
    ];
    // ApiVersions v3 uses the flexible header (v2: trailing tagged fields); the body is garbage.
    let mut flexible = header_v1(18, 3, 8);
    flexible.push(0);
    flexible.extend_from_slice(&[0xff; 16]);
    cases.push(("an ApiVersions v3 header with a garbage body", framed(&flexible), false));

    for (what, bytes, half_close) in &cases {
        send_and_expect_close(kafka, bytes, *half_close).with_context(|| what.to_string())?;
        broker.assert_healthy(what)?;
    }

    // A valid request first: it must be answered, then the garbage after it closes the connection.
    let valid_then_garbage =
        [framed(&header_v1(18, 0, 42)), framed(&[0xde, 0xad, 0xbe, 0xef, 0x00])].concat();
    let answer =
        send_and_expect_close(kafka, &valid_then_garbage, false).context("ApiVersions v0 then garbage")?;
    ensure!(
        answer.len() >= 8 && answer[4..8] == 42i32.to_be_bytes(),
        "no ApiVersions answer with correlation id 42 before the close: {answer:?}"
    );
    broker.assert_healthy("a valid ApiVersions request followed by garbage")?;

    println!("fuzz seed {FUZZ_SEED:#x}, {FUZZ_FRAMES} frames");
    let mut rng = Rng(FUZZ_SEED);
    for i in 0..FUZZ_FRAMES {
        let len = (rng.next() % 512) as usize;
        let body = rng.bytes(len);
        // Odd frames get a correct length prefix, so the bytes reach header and body decoding;
        // even ones are raw, so the length itself is random too.
        let bytes = if i % 2 == 1 { framed(&body) } else { body };
        send_and_expect_close(kafka, &bytes, true)
            .with_context(|| format!("fuzz frame {i} (seed {FUZZ_SEED:#x})"))?;
        broker.assert_healthy(&format!("fuzz frame {i} (seed {FUZZ_SEED:#x})"))?;
    }

    let topic = unique("after-fuzz");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let ack = send_one(&p, &topic, "k", "still serving").await.context("produce after the fuzzing")?;
    let read = read_all_partitions(&broker.bootstrap(), &topic, Duration::from_secs(30))?;
    ensure!(
        read.get(&ack.partition).is_some_and(|v| v.iter().any(|r| r.payload == "still serving")),
        "round trip after fuzzing failed: {read:?}"
    );

    let warnings = broker.warnings_text()?;
    ensure!(
        warnings.contains("closed connection"),
        "recent_warnings do not mention closed connections: {warnings}"
    );
    Ok(())
}

/// The request from the report that aborted a broker: OffsetForLeaderEpoch v3 whose body starts
/// with an array length of 0x4a6e903e. kafka-protocol 0.18.0 reserved memory for that many
/// elements before reading one ("memory allocation of 848625280 bytes failed", SIGABRT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_array_length_does_not_abort_the_broker() -> Result<()> {
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let hex =
        "0000002d00170003000005ea00036162634a6e903e12f123a98d618d7802fdd9b22d4f148f8b2b2c5bfb43d36c5c86e281";
    let bytes: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    ensure!(bytes.len() == 49, "the reported request is 49 bytes, got {}", bytes.len());
    for round in 0..3 {
        send_and_expect_close(broker.kafka, &bytes, true)
            .with_context(|| format!("49-byte request #{round}"))?;
        broker.assert_healthy(&format!("the 49-byte request #{round}"))?;
    }
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    send_one(&p, &unique("after-49"), "k", "v").await.context("produce after the 49-byte request")?;
    Ok(())
}

/// (api key, min version, max version) as the broker advertises them (ApiVersions v0).
fn advertised_versions(kafka: SocketAddr) -> Result<Vec<(i16, i16, i16)>> {
    let answer = send_and_expect_close(kafka, &framed(&header_v1(18, 0, 5)), true)?;
    // size, correlation id, error code, array length, then (key, min, max) per API.
    ensure!(answer.len() >= 14, "short ApiVersions answer: {answer:?}");
    let n = i32::from_be_bytes(answer[10..14].try_into()?) as usize;
    let at = |i: usize| i16::from_be_bytes([answer[i], answer[i + 1]]);
    ensure!(answer.len() >= 14 + n * 6, "ApiVersions answer shorter than its {n} entries");
    Ok((0..n).map(|k| (at(14 + k * 6), at(16 + k * 6), at(18 + k * 6))).collect())
}

/// Structure-aware fuzzing: a well-formed header for every API and version the broker
/// advertises (and one past the maximum), followed by a body built from the values that break
/// decoders — huge and negative counts and lengths (plain and varint), then random bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_api_survives_hostile_counts_and_lengths() -> Result<()> {
    const PER_VERSION: usize = 4;
    let seed: u64 =
        std::env::var("CLUSTERLAB_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(FUZZ_SEED);
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let apis = advertised_versions(broker.kafka)?;
    ensure!(apis.len() >= 10, "the broker advertises only {} APIs", apis.len());
    println!("fuzz seed {seed} (CLUSTERLAB_FUZZ_SEED replays it), {} APIs", apis.len());
    let mut rng = Rng(seed);
    let mut frames = 0;
    for (key, min, max) in apis {
        for version in min..=max + 1 {
            for i in 0..PER_VERSION {
                let mut body = header_v1(key, version, i as i32);
                if rng.next().is_multiple_of(2) {
                    body.push(0); // empty tagged fields: what a flexible header ends with
                }
                for _ in 0..(1 + rng.next() % 6) {
                    match rng.next() % 6 {
                        0 => body.extend_from_slice(&0x7fff_ffffi32.to_be_bytes()),
                        1 => body.extend_from_slice(&(rng.next() as i32 | 0x1000_0000).to_be_bytes()),
                        2 => body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]), // varint 2^32-1
                        3 => body.extend_from_slice(&(-2i32).to_be_bytes()),
                        4 => body.extend_from_slice(&0x7fffi16.to_be_bytes()),
                        _ => {
                            let n = (rng.next() % 24) as usize;
                            body.extend(rng.bytes(n));
                        }
                    }
                }
                let what = format!("api {key} v{version} frame {i} (seed {seed})");
                send_and_expect_close(broker.kafka, &framed(&body), true).with_context(|| what.clone())?;
                broker.assert_healthy(&what)?;
                frames += 1;
            }
        }
    }
    println!("{frames} frames, broker alive");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    send_one(&p, &unique("after-api-fuzz"), "k", "v").await.context("produce after the API fuzzing")?;
    Ok(())
}

/// Reads until the broker closes `s`; fails if it is still open after `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> Result<()> {
    s.set_read_timeout(Some(within))?;
    let mut buf = [0u8; 64];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                bail!("connection still open after {within:?}")
            }
            Err(_) => return Ok(()),
        }
    }
}

/// Connection limits a real broker has: one connection over `max_connections` is closed at
/// once with a warning that names the limit, idle connections are closed after
/// `connections_max_idle_ms`, and the node serves new clients throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_count_and_idle_limits_close_connections_not_the_node() -> Result<()> {
    let dir = data_dir();
    let mut opts = BrokerOpts::new(dir.path());
    opts.extra_args =
        ["--max-connections", "4", "--connections-max-idle-ms", "1500"].map(String::from).to_vec();
    let mut broker = Broker::start(opts)?;
    let mut idle: Vec<TcpStream> = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(broker.kafka)?);
    }
    // The four are accepted before the fifth arrives: each answers a request first.
    for (i, s) in idle.iter_mut().enumerate() {
        s.write_all(&framed(&header_v1(18, 0, i as i32)))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len).with_context(|| format!("ApiVersions answer on connection {i}"))?;
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut body)?;
    }
    let started = Instant::now();
    let mut fifth = TcpStream::connect(broker.kafka)?;
    closed_within(&mut fifth, Duration::from_secs(5)).context("the connection over max_connections")?;
    broker.assert_healthy("a connection over max_connections")?;
    let warnings = broker.warnings_text()?;
    ensure!(warnings.contains("max_connections (4)"), "no warning names the limit: {warnings}");
    for (i, s) in idle.iter_mut().enumerate() {
        closed_within(s, Duration::from_secs(10)).with_context(|| format!("idle connection {i}"))?;
    }
    ensure!(
        started.elapsed() >= Duration::from_millis(1000),
        "idle connections closed after {:?}, before the 1.5 s limit",
        started.elapsed()
    );
    // Room again: a normal client is served.
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    send_one(&p, &unique("after-limits"), "k", "v").await.context("produce after the limits")?;
    Ok(())
}

/// One request framed with kafka-protocol's codec, as a client writes it.
fn encoded<Req>(
    key: kafka_protocol::messages::ApiKey,
    v: i16,
    correlation_id: i32,
    req: &Req,
) -> Result<Vec<u8>>
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
{
    encoded_from(None, key, v, correlation_id, req)
}

/// The same, sent by the client `client_id`.
fn encoded_from<Req>(
    client_id: Option<&str>,
    key: kafka_protocol::messages::ApiKey,
    v: i16,
    correlation_id: i32,
    req: &Req,
) -> Result<Vec<u8>>
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
{
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::{Encodable, StrBytes};
    let mut body = bytes::BytesMut::new();
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(v)
        .with_correlation_id(correlation_id);
    let header = match client_id {
        Some(id) => header.with_client_id(Some(StrBytes::from_string(id.to_string()))),
        None => header,
    };
    header.encode(&mut body, Req::header_version(v))?;
    req.encode(&mut body, v)?;
    Ok(framed(&body))
}

/// The next answer on `s`: its header, and its body still to decode.
fn next_answer<Resp>(
    s: &mut TcpStream,
    v: i16,
) -> Result<(kafka_protocol::messages::ResponseHeader, bytes::Bytes)>
where
    Resp: kafka_protocol::protocol::HeaderVersion,
{
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::Decodable;
    let mut len = [0u8; 4];
    s.read_exact(&mut len).context("no answer (connection closed?)")?;
    let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf)?;
    let mut buf = bytes::Bytes::from(buf);
    let header = ResponseHeader::decode(&mut buf, Resp::header_version(v))?;
    Ok((header, buf))
}

/// Writes one request with kafka-protocol's codec and reads its answer on `s`.
fn request<Req, Resp>(
    s: &mut TcpStream,
    key: kafka_protocol::messages::ApiKey,
    v: i16,
    req: &Req,
) -> Result<Resp>
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    s.write_all(&encoded(key, v, 9, req)?)?;
    let (_, mut body) = next_answer::<Resp>(s, v).with_context(|| format!("{key:?} v{v}"))?;
    Resp::decode(&mut body, v)
}

/// An API the broker does not serve is answered with UNSUPPORTED_VERSION in the API's own
/// response, and the connection keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unserved_api_gets_an_error_answer_and_the_connection_stays_open() -> Result<()> {
    use kafka_protocol::messages::*;
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()))?;
    let mut s = TcpStream::connect(broker.kafka)?;
    s.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    let listed: ListTransactionsResponse =
        request(&mut s, ApiKey::ListTransactions, 0, &ListTransactionsRequest::default())?;
    ensure!(
        listed.error_code == 35,
        "ListTransactions: error {} instead of UNSUPPORTED_VERSION",
        listed.error_code
    );
    let sasl: SaslHandshakeResponse = request(
        &mut s,
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism("PLAIN".to_string().into()),
    )?;
    ensure!(
        sasl.error_code == 33,
        "SaslHandshake: error {} instead of UNSUPPORTED_SASL_MECHANISM",
        sasl.error_code
    );
    // One whose response has errors only per partition: each partition named gets the code.
    let asked = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(TopicName("t".to_string().into()))
            .with_partition_indexes(vec![0, 1]),
    ]);
    let producers: DescribeProducersResponse = request(&mut s, ApiKey::DescribeProducers, 0, &asked)?;
    let codes: Vec<i16> = producers.topics.iter().flat_map(|t| &t.partitions).map(|p| p.error_code).collect();
    ensure!(
        codes == vec![35, 35],
        "DescribeProducers: partition errors {codes:?} instead of UNSUPPORTED_VERSION"
    );
    let versions: ApiVersionsResponse =
        request(&mut s, ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())?;
    ensure!(!versions.api_keys.is_empty(), "the same connection still serves ApiVersions");
    broker.assert_healthy("after unserved APIs")?;
    Ok(())
}

/// The node's `clusterlab_kafka_requests_in_progress` gauge.
fn requests_in_progress(broker: &Broker) -> Result<usize> {
    gauge(broker, "clusterlab_kafka_requests_in_progress")
}

/// The node's gauge `name` in `/metrics`.
fn gauge(broker: &Broker, name: &str) -> Result<usize> {
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
    let dir = data_dir();
    let (budget, idle_ms) = (BUDGET.to_string(), STALL_LIMIT.as_millis().to_string());
    let opts = BrokerOpts::new(dir.path())
        .arg("--max-request-bytes-in-progress")
        .arg(&budget)
        .arg("--connections-max-idle-ms")
        .arg(&idle_ms);
    let mut broker = Broker::start(opts)?;
    let topic = unique("stalled-reader");
    // About 1 MiB in one partition (one key): every fetch from its start answers about 1 MiB.
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let value = "v".repeat(100_000);
    let first = send_one(&p, &topic, "k", &value).await.context("creating the topic")?;
    for i in 1..10 {
        send_one(&p, &topic, "k", &value).await.with_context(|| format!("message {i}"))?;
    }
    let partition = FetchPartition::default()
        .with_partition(first.partition)
        .with_fetch_offset(first.offset)
        .with_partition_max_bytes(1 << 20);
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(topic.clone().into()))
            .with_partitions(vec![partition])]);
    // Frames of ~31 KiB (a 32,000-byte client id): 32 of them fill the budget. 200 answers of
    // ~1 MiB are far more than loopback socket buffers hold (a few MB each way).
    let client_id = "c".repeat(32_000);
    let mut wire = Vec::new();
    let mut frame_len = 0;
    for correlation_id in 0..REQUESTS {
        let frame = encoded_from(Some(&client_id), ApiKey::Fetch, 4, correlation_id, &fetch)?;
        frame_len = frame.len();
        wire.extend(frame);
    }
    let mut stalled = TcpStream::connect(broker.kafka)?;
    let stalled_addr = stalled.local_addr()?;
    // Written from another thread: once the broker stops reading, the write waits for room, and
    // it may fail when the broker closes the connection.
    let mut w = stalled.try_clone()?;
    let writer = std::thread::spawn(move || w.write_all(&wire));

    // The stalled connection's unanswered requests fill the budget: the remaining room is less
    // than one of its frames.
    let near = BUDGET - frame_len;
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    loop {
        let seen = gauge(&broker, BYTES)?;
        if seen >= near {
            break;
        }
        ensure!(Instant::now() < deadline, "the stalled connection never held {near} bytes (last: {seen})");
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
    while gauge(&broker, BYTES)? != 0 || requests_in_progress(&broker)? != 0 {
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
