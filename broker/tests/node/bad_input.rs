//! Malformed bytes on the Kafka port close that one connection and nothing else: the node stays
//! up, says why in its warnings, and serves a normal client afterwards.

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

    let warnings = broker.state()?["recent_warnings"].to_string();
    ensure!(
        warnings.contains("closed connection"),
        "recent_warnings do not mention closed connections: {warnings}"
    );
    Ok(())
}
