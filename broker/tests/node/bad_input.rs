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
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

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
pub(crate) fn encoded<Req>(
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
pub(crate) fn encoded_from<Req>(
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
pub(crate) fn next_answer<Resp>(
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
