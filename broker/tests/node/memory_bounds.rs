//! What clients can make a node hold in memory beyond the request counts of `request_bounds`:
//! frames whose bodies are still arriving, Fetch answers (copied into memory until written), and
//! answers that grow with the cluster waiting behind a slow one (docs/reliability.md). Before,
//! all three were uncounted: 20 connections announcing 100 MB frames and holding back each last
//! byte, or 40 connections of ~60-byte fetches for a whole 64 MiB partition, made a node hold
//! about 2 GB; one connection of 4,000 Metadata requests behind a long poll, 4.5 GB.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::Decodable;

use crate::bad_input::{encoded, next_answer, CLOSE_TIMEOUT};
use crate::clients::{producer, send_one};
use crate::harness::{data_dir, unique, Broker, BrokerOpts};
use crate::request_bounds::gauge;

const MIB: usize = 1 << 20;

/// Resident memory of a process, from /proc.
fn rss_bytes(pid: u32) -> Result<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).context("no VmRSS")?;
    Ok(kib.trim().trim_end_matches("kB").trim().parse::<usize>()? * 1024)
}

/// A connection whose receive buffer is made small before it connects (later, the window
/// already offered stays), so that the kernel holds little of what the broker writes to it.
pub(crate) fn with_small_receive_buffer(addr: SocketAddr) -> Result<TcpStream> {
    let SocketAddr::V4(v4) = addr else { bail!("{addr} is not IPv4") };
    // SAFETY: plain socket calls on a descriptor owned by `stream` from its creation on, with
    // option and address values of the sizes given.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        ensure!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let small: libc::c_int = 4096;
        let option = &small as *const libc::c_int as *const libc::c_void;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        ensure!(libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, option, len) == 0, "SO_RCVBUF");
        let to = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() },
            sin_zero: [0; 8],
        };
        let to_len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let connected = libc::connect(fd, &to as *const libc::sockaddr_in as *const libc::sockaddr, to_len);
        ensure!(connected == 0, "connect to {addr}: {}", std::io::Error::last_os_error());
        Ok(stream)
    }
}

/// A fetch of the whole partition from `offset`, asking for as many bytes as a request can.
fn fetch_everything(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    let p = FetchPartition::default()
        .with_partition(partition)
        .with_fetch_offset(offset)
        .with_partition_max_bytes(i32::MAX);
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(topic.to_string().into()))
            .with_partitions(vec![p])])
}

/// 24 connections each ask for a whole 24 MiB partition and read none of the answers. Each
/// answer is capped at `fetch_max_bytes` (8 MiB here): without the budget the node would hold
/// 24 of them, 192 MiB and their copies on the way out. With it, the answers held never exceed
/// one (larger than the 4 MiB budget, so admitted alone); the others wait for room until their
/// deadline and answer no records. The stalled connections are closed at the write stall
/// limit, the budget comes back, and a fetch asking for everything gets at most 8 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_asking_for_whole_partitions_hold_at_most_the_node_budget() -> Result<()> {
    const CONNECTIONS: usize = 24;
    const FETCH_MAX: usize = 8 * MIB;
    const STALL_LIMIT: Duration = Duration::from_millis(3_000);
    const ANSWER_BYTES: &str = "clusterlab_kafka_answer_bytes_in_progress";
    let dir = data_dir();
    let (budget, fetch_max, idle_ms) =
        ((4 * MIB).to_string(), FETCH_MAX.to_string(), STALL_LIMIT.as_millis().to_string());
    let opts = BrokerOpts::new(dir.path())
        .arg("--max-request-bytes-in-progress")
        .arg(&budget)
        .arg("--fetch-max-bytes")
        .arg(&fetch_max)
        .arg("--connections-max-idle-ms")
        .arg(&idle_ms);
    let mut broker = Broker::start(opts)?;
    let topic = unique("whole-partition");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let value = "v".repeat(100_000);
    let first = send_one(&p, &topic, "k", &value).await.context("creating the topic")?;
    for i in 1..240 {
        send_one(&p, &topic, "k", &value).await.with_context(|| format!("message {i}"))?;
    }
    let base_rss = rss_bytes(broker.pid)?;

    let fetch = fetch_everything(&topic, first.partition, first.offset, 1_000);
    let wire = encoded(ApiKey::Fetch, 4, 1, &fetch)?;
    let mut hogs = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut s = with_small_receive_buffer(broker.kafka)?;
        s.write_all(&wire)?;
        hogs.push(s);
    }

    // Until the stall limit has closed every hog: the answers held, and the node's memory.
    let (mut most_held, mut most_rss) = (0usize, base_rss);
    let deadline = Instant::now() + STALL_LIMIT + CLOSE_TIMEOUT;
    let mut seen_some = false;
    loop {
        let held = gauge(&broker, ANSWER_BYTES)?;
        most_held = most_held.max(held);
        most_rss = most_rss.max(rss_bytes(broker.pid)?);
        seen_some |= held > 0;
        if seen_some && held == 0 {
            break;
        }
        ensure!(Instant::now() < deadline, "answers still held after the stall limit (last: {held} bytes)");
        std::thread::sleep(Duration::from_millis(10));
    }
    let grown = most_rss.saturating_sub(base_rss);
    println!("answers held at most {most_held} bytes; resident memory grew by at most {grown} bytes");
    ensure!(
        most_held <= FETCH_MAX + 2 * MIB,
        "{most_held} bytes of answers held at once; one answer is at most {FETCH_MAX} and a batch"
    );
    // 24 answers held at once would be 192 MiB, twice that while being written.
    ensure!(grown < 96 * MIB, "the broker grew by {grown} bytes while 24 clients asked for 8 MiB each");

    let mut reader = TcpStream::connect(broker.kafka)?;
    reader.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    reader.write_all(&encoded(ApiKey::Fetch, 4, 2, &fetch_everything(&topic, first.partition, 0, 0))?)?;
    let (_, mut body) = next_answer::<FetchResponse>(&mut reader, 4).context("the fetch after the hogs")?;
    let answer = FetchResponse::decode(&mut body, 4)?;
    let records = answer.responses[0].partitions[0].records.as_ref().map_or(0, |r| r.len());
    ensure!(
        records > 0 && records <= FETCH_MAX + 200_000,
        "a fetch asking for everything got {records} bytes; fetch_max_bytes is {FETCH_MAX}"
    );
    drop(hogs);
    broker.assert_healthy("connections asking for whole partitions")?;
    Ok(())
}

/// Connections that announce 20 MiB frames and hold back each one's last byte make the node hold
/// one such frame at a time: a frame is admitted to the node's budget (here 8 MiB; a larger frame
/// is admitted alone) before its body is read. Each is closed at the read stall limit (here
/// `connections_max_idle_ms`, 1 s) with a warning naming it, and then the next is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_held_back_by_their_last_byte_are_read_one_budget_at_a_time() -> Result<()> {
    const CONNECTIONS: usize = 6;
    const FRAME: usize = 20 * MIB;
    const BYTES: &str = "clusterlab_kafka_request_bytes_in_progress";
    let dir = data_dir();
    let budget = (8 * MIB).to_string();
    let opts = BrokerOpts::new(dir.path())
        .arg("--max-request-bytes-in-progress")
        .arg(&budget)
        .arg("--connections-max-idle-ms")
        .arg("1000");
    let mut broker = Broker::start(opts)?;
    let base_rss = rss_bytes(broker.pid)?;
    let mut senders = Vec::new();
    for _ in 0..CONNECTIONS {
        let mut s = TcpStream::connect(broker.kafka)?;
        // From a thread each: the broker reads one body at a time, so the others' writes wait.
        senders.push(std::thread::spawn(move || -> std::io::Result<TcpStream> {
            s.write_all(&(FRAME as i32).to_be_bytes())?;
            s.write_all(&vec![0u8; FRAME - 1])?;
            Ok(s)
        }));
    }

    let closed = |warnings: &str| warnings.matches("read stall limit").count();
    let (mut most_held, mut most_rss) = (0usize, base_rss);
    let deadline = Instant::now() + CONNECTIONS as u32 * Duration::from_secs(1) + CLOSE_TIMEOUT;
    loop {
        most_held = most_held.max(gauge(&broker, BYTES)?);
        most_rss = most_rss.max(rss_bytes(broker.pid)?);
        let warnings = broker.warnings_text()?;
        if closed(&warnings) >= CONNECTIONS {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {CONNECTIONS} stalled frames closed in time: {warnings}",
            closed(&warnings)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let grown = most_rss.saturating_sub(base_rss);
    println!("frames held at most {most_held} bytes; resident memory grew by at most {grown} bytes");
    ensure!(most_held <= FRAME, "{most_held} bytes of frames admitted at once; one is {FRAME}");
    // All six bodies read at once would be 120 MiB.
    ensure!(
        grown < 60 * MIB,
        "the broker grew by {grown} bytes while 6 clients each held back a 20 MiB frame"
    );
    for sender in senders {
        // Each got all but its last byte out, or failed when the broker closed it.
        let _ = sender.join().expect("sender thread");
    }
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    send_one(&p, &unique("after-stalled-frames"), "k", "v")
        .await
        .context("produce after the stalled frames")?;
    broker.assert_healthy("connections holding back the last byte of large frames")?;
    Ok(())
}

/// One connection sends a long-polling fetch (2 s) and then 3,000 Metadata requests for a topic
/// of 1,000 partitions, reading nothing. The Metadata requests wait for their turn behind the
/// fetch instead of running at once: their answers (~26 KB each on the wire, several times that
/// decoded) never pile up in memory. Every answer then arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_behind_a_long_poll_wait_their_turn_instead_of_piling_up() -> Result<()> {
    const METADATA: i32 = 3_000;
    const LONG_POLL_MS: i32 = 2_000;
    let dir = data_dir();
    let mut broker = Broker::start(BrokerOpts::new(dir.path()).arg("--default-partitions").arg("1000"))?;
    let topic = unique("wide");
    let p = producer(&broker.bootstrap(), &[("acks", "all")])?;
    let ack = send_one(&p, &topic, "k", "v").await.context("creating the topic")?;
    let base_rss = rss_bytes(broker.pid)?;

    let mut fetch = fetch_everything(&topic, ack.partition, ack.offset + 1, LONG_POLL_MS);
    fetch.max_bytes = 1 << 20;
    fetch.topics[0].partitions[0].partition_max_bytes = 1 << 20;
    let mut wire = encoded(ApiKey::Fetch, 4, 0, &fetch)?;
    let all_topics = MetadataRequest::default().with_topics(None);
    for correlation_id in 1..=METADATA {
        wire.extend(encoded(ApiKey::Metadata, 1, correlation_id, &all_topics)?);
    }
    let mut s = TcpStream::connect(broker.kafka)?;
    s.write_all(&wire)?;
    let sent = Instant::now();

    // While the fetch waits, nothing behind it runs, however much was read.
    let mut most_rss = base_rss;
    while sent.elapsed() < Duration::from_millis(LONG_POLL_MS as u64 * 3 / 4) {
        most_rss = most_rss.max(rss_bytes(broker.pid)?);
        std::thread::sleep(Duration::from_millis(10));
    }
    let grown = most_rss.saturating_sub(base_rss);
    println!("resident memory grew by at most {grown} bytes behind the long poll");
    // 3,000 decoded answers of a 1,000-partition topic held at once are several hundred MB.
    ensure!(grown < 64 * MIB, "the broker grew by {grown} bytes while 3,000 Metadata requests waited");

    s.set_read_timeout(Some(CLOSE_TIMEOUT))?;
    let (header, _) = next_answer::<FetchResponse>(&mut s, 4).context("the long poll's answer")?;
    ensure!(header.correlation_id == 0, "the long poll was answered as {}", header.correlation_id);
    for expected in 1..=METADATA {
        let (header, mut body) = next_answer::<MetadataResponse>(&mut s, 1)
            .with_context(|| format!("Metadata answer {expected}"))?;
        ensure!(header.correlation_id == expected, "answer {expected} came as {}", header.correlation_id);
        if expected == METADATA {
            let answer = MetadataResponse::decode(&mut body, 1)?;
            let wide = answer.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == topic));
            ensure!(
                wide.is_some_and(|t| t.partitions.len() == 1000),
                "the last answer lacks the 1,000 partitions"
            );
        }
    }
    broker.assert_healthy("3,000 Metadata requests behind a long poll")?;
    Ok(())
}
