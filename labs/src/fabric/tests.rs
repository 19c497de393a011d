//! Fabric tests against plain TCP servers on loopback: every server greets with `hello`, then
//! echoes, and counts what it received (so a test can tell "not sent" from "not returned").

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

const QUIET: Duration = Duration::from_millis(300);

struct Server {
    addr: SocketAddr,
    received: Arc<AtomicU64>,
}

async fn greeting_echo_server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                if s.write_all(b"hello").await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Server { addr, received }
}

/// Two "nodes" (their Raft listeners are the servers) and the fabric between them.
async fn two_nodes() -> (Fabric, Server, Server) {
    let (s1, s2) = (greeting_echo_server().await, greeting_echo_server().await);
    let targets = [
        NodeTarget { id: 1, raft: s1.addr, kafka: s1.addr },
        NodeTarget { id: 2, raft: s2.addr, kafka: s2.addr },
    ];
    (Fabric::new(&targets).await.unwrap(), s1, s2)
}

/// Reads exactly `n` bytes or fails the test after `within`.
async fn read_n(s: &mut TcpStream, n: usize, within: Duration) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(within, s.read_exact(&mut buf)).await.expect("bytes in time").expect("read");
    buf
}

/// True when nothing (no bytes, no EOF) arrives within `QUIET`.
async fn stays_silent(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    tokio::time::timeout(QUIET, s.read(&mut buf)).await.is_err()
}

/// True when the connection was closed or reset (read gives EOF or an error).
async fn is_closed(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await, Ok(Ok(0)) | Ok(Err(_)))
}

async fn connect_greeted(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    assert_eq!(read_n(&mut s, 5, Duration::from_secs(2)).await, b"hello");
    s
}

#[tokio::test]
async fn pass_forwards_both_ways_and_counts() {
    let (fabric, _s1, s2) = two_nodes().await;
    let mut c = connect_greeted(fabric.raft_proxy(1, 2).unwrap()).await;
    c.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut c, 4, Duration::from_secs(2)).await, b"ping");
    assert_eq!(s2.received.load(Ordering::Relaxed), 4);
    let link = fabric
        .links()
        .into_iter()
        .find(|l| l.from == Endpoint::Node(1) && l.to == Endpoint::Node(2))
        .unwrap();
    assert_eq!((link.bytes_forwarded, link.bytes_returned, link.connections), (4, 9, 1));
    assert_eq!(link.mode, Mode::Pass);
}

#[tokio::test]
async fn delay_holds_bytes_at_least_the_delay() {
    let (fabric, _s1, _s2) = two_nodes().await;
    let mut c = connect_greeted(fabric.raft_proxy(1, 2).unwrap()).await;
    fabric.set(Endpoint::Node(1), Endpoint::Node(2), Mode::Delay(150)).unwrap();
    let t = Instant::now();
    c.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut c, 4, Duration::from_secs(2)).await, b"ping");
    let rtt = t.elapsed();
    assert!(rtt >= Duration::from_millis(150), "round trip {rtt:?} is shorter than the delay");
    // Back to pass: no more delay.
    fabric.heal_all();
    let t = Instant::now();
    c.write_all(b"pong").await.unwrap();
    assert_eq!(read_n(&mut c, 4, Duration::from_secs(2)).await, b"pong");
    assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
}

#[tokio::test]
async fn blackhole_keeps_the_connection_but_drops_bytes_until_healed() {
    let (fabric, _s1, s2) = two_nodes().await;
    let addr = fabric.raft_proxy(1, 2).unwrap();
    let mut c = connect_greeted(addr).await;
    fabric.set(Endpoint::Node(1), Endpoint::Node(2), Mode::Blackhole).unwrap();
    c.write_all(b"lost").await.unwrap();
    assert!(stays_silent(&mut c).await, "bytes or EOF came through a blackhole");
    assert_eq!(s2.received.load(Ordering::Relaxed), 0);
    fabric.heal_all();
    // The old stream has a hole, so the fabric resets it; a new connection works.
    assert!(is_closed(&mut c).await);
    let mut c = connect_greeted(addr).await;
    c.write_all(b"back").await.unwrap();
    assert_eq!(read_n(&mut c, 4, Duration::from_secs(2)).await, b"back");
}

#[tokio::test]
async fn reset_closes_open_connections_and_refuses_new_ones() {
    let (fabric, _s1, _s2) = two_nodes().await;
    let addr = fabric.raft_proxy(1, 2).unwrap();
    let mut c = connect_greeted(addr).await;
    fabric.set(Endpoint::Node(2), Endpoint::Node(1), Mode::Reset).unwrap();
    assert!(is_closed(&mut c).await, "open connection survived a reset");
    let mut again = TcpStream::connect(addr).await.unwrap();
    assert!(is_closed(&mut again).await, "new connection was not refused");
    fabric.heal_all();
    let mut c = connect_greeted(addr).await;
    c.write_all(b"ok").await.unwrap();
    assert_eq!(read_n(&mut c, 2, Duration::from_secs(2)).await, b"ok");
}

#[tokio::test]
async fn one_way_drops_a_to_b_on_every_connection_while_b_to_a_passes() {
    let (fabric, s1, s2) = two_nodes().await;
    fabric.one_way(1, 2).unwrap();
    // Node 1 dials node 2: 1's request vanishes, 2's greeting still arrives.
    let mut from1 = connect_greeted(fabric.raft_proxy(1, 2).unwrap()).await;
    from1.write_all(b"req1").await.unwrap();
    assert!(stays_silent(&mut from1).await);
    assert_eq!(s2.received.load(Ordering::Relaxed), 0);
    // Node 2 dials node 1: 2's request arrives, but 1's reply (1 -> 2) vanishes, greeting too.
    let mut from2 = TcpStream::connect(fabric.raft_proxy(2, 1).unwrap()).await.unwrap();
    from2.write_all(b"req2").await.unwrap();
    assert!(stays_silent(&mut from2).await);
    assert_eq!(s1.received.load(Ordering::Relaxed), 4);
}

#[tokio::test]
async fn isolate_split_bridge_set_the_right_directions() {
    let servers = [greeting_echo_server().await, greeting_echo_server().await, greeting_echo_server().await];
    let targets: Vec<NodeTarget> =
        servers.iter().zip(1..).map(|(s, id)| NodeTarget { id, raft: s.addr, kafka: s.addr }).collect();
    let fabric = Fabric::new(&targets).await.unwrap();
    let mode = |a: i32, b: i32| fabric.directions[&(Endpoint::Node(a), Endpoint::Node(b))].mode();
    fabric.isolate(2).unwrap();
    assert_eq!(
        (mode(1, 2), mode(2, 3), mode(3, 2), mode(1, 3)),
        (Mode::Blackhole, Mode::Blackhole, Mode::Blackhole, Mode::Pass)
    );
    fabric.heal_all();
    fabric.bridge(1, 2, 3).unwrap();
    assert_eq!(
        (mode(1, 3), mode(3, 1), mode(1, 2), mode(2, 3)),
        (Mode::Blackhole, Mode::Blackhole, Mode::Pass, Mode::Pass)
    );
    fabric.heal_all();
    fabric.split(&[3]).unwrap();
    assert_eq!((mode(3, 1), mode(2, 3), mode(1, 2)), (Mode::Blackhole, Mode::Blackhole, Mode::Pass));
    assert!(fabric.isolate(9).is_err());
    assert_eq!(fabric.links().len(), 6); // 3 node pairs + 3 client links
                                         // Client links reach each node's Kafka listener.
    connect_greeted(fabric.client_proxy(3).unwrap()).await;
}

/// Bulk throughput and small-message p99 through the proxy vs direct: a measurement, run with
/// --ignored --nocapture in release for numbers (docs/benchmarks.md). It asserts only that
/// every byte comes back as sent; speed is not asserted in tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn proxy_overhead_against_direct() {
    let (fabric, _s1, s2) = two_nodes().await;
    let (direct, proxied) = (s2.addr, fabric.raft_proxy(1, 2).unwrap());
    for (name, addr) in [("direct", direct), ("proxied", proxied), ("direct", direct), ("proxied", proxied)] {
        let c = connect_greeted(addr).await;
        c.set_nodelay(true).unwrap();
        let (mut r, mut w) = c.into_split();
        const TOTAL: usize = 512 * 1024 * 1024;
        let t = Instant::now();
        let writer = tokio::spawn(async move {
            let chunk = vec![7u8; 64 * 1024];
            for _ in 0..TOTAL / chunk.len() {
                w.write_all(&chunk).await.unwrap();
            }
            w
        });
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0;
        while got < TOTAL {
            let n = r.read(&mut buf).await.unwrap();
            assert!(n > 0 && buf[..n].iter().all(|b| *b == 7), "{name}: the echo lost or changed bytes");
            got += n;
        }
        let secs = t.elapsed().as_secs_f64();
        let mut c = r.reunite(writer.await.unwrap()).unwrap();
        let mut lat = Vec::new();
        for _ in 0..5000 {
            let t = Instant::now();
            c.write_all(&[1u8; 100]).await.unwrap();
            let mut echo = [0u8; 100];
            c.read_exact(&mut echo).await.unwrap();
            assert_eq!(echo, [1u8; 100], "{name}: the echo changed a message");
            lat.push(t.elapsed());
        }
        lat.sort();
        let p99 = lat[lat.len() * 99 / 100];
        println!(
            "{name}: {:.0} MiB/s echo throughput, p99 round trip {p99:?}",
            TOTAL as f64 / secs / 1048576.0
        );
    }
}

#[tokio::test]
async fn toxics_delay_slice_limit_and_time_out_real_connections() {
    let (fabric, _s1, s2) = two_nodes().await;
    let addr = fabric.raft_proxy(1, 2).unwrap();
    let (a, b) = (Endpoint::Node(1), Endpoint::Node(2));
    let mut c = connect_greeted(addr).await;

    // latency 120 ± 30 ms: the echo comes back no sooner than 90 ms, bytes in order.
    fabric.set(a, b, Mode::Toxic(Toxic::Latency { ms: 120, jitter_ms: 30, percent: 100 })).unwrap();
    let t = Instant::now();
    c.write_all(b"abcdefgh").await.unwrap();
    assert_eq!(read_n(&mut c, 8, Duration::from_secs(2)).await, b"abcdefgh");
    assert!(t.elapsed() >= Duration::from_millis(90), "{:?}", t.elapsed());

    // slicer: 12 bytes in 3-byte slices 20 ms apart take at least 80 ms, and arrive whole.
    fabric.set(a, b, Mode::Toxic(Toxic::Slicer { bytes: 3, delay_ms: 20, percent: 100 })).unwrap();
    let t = Instant::now();
    c.write_all(b"0123456789ab").await.unwrap();
    assert_eq!(read_n(&mut c, 12, Duration::from_secs(2)).await, b"0123456789ab");
    assert!(t.elapsed() >= Duration::from_millis(80), "{:?}", t.elapsed());

    // limit_data: 5 more bytes go through, then the connection is closed.
    fabric.heal_all();
    let before = s2.received.load(Ordering::Relaxed);
    fabric.set(a, b, Mode::Toxic(Toxic::LimitData { bytes: 5, percent: 100 })).unwrap();
    c.write_all(b"0123456789").await.unwrap();
    assert!(is_closed(&mut c).await, "limit_data must end the connection");
    // The server reads on its own task: wait (bounded) for what it got, then check it is 5.
    let deadline = Instant::now() + Duration::from_secs(2);
    while s2.received.load(Ordering::Relaxed) - before < 5 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(s2.received.load(Ordering::Relaxed) - before, 5, "exactly the limit goes through");

    // timeout: silence, then a reset after 200 ms (not before).
    fabric.heal_all();
    let mut c = connect_greeted(addr).await;
    fabric.set(a, b, Mode::Toxic(Toxic::Timeout { ms: 200, percent: 100 })).unwrap();
    let t = Instant::now();
    c.write_all(b"gone").await.unwrap();
    assert!(is_closed(&mut c).await);
    assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());
    assert_eq!(fabric.links()[0].mode, Mode::Toxic(Toxic::Timeout { ms: 200, percent: 100 }));
}

#[tokio::test]
async fn a_dialed_cut_closes_one_sides_connections_and_leaves_the_others() {
    let (fabric, _s1, _s2) = two_nodes().await;
    let (to2, to1) = (fabric.raft_proxy(1, 2).unwrap(), fabric.raft_proxy(2, 1).unwrap());
    let mut from1 = connect_greeted(to2).await;
    let mut from2 = connect_greeted(to1).await;
    fabric.cut_dialed(Endpoint::Node(1), Endpoint::Node(2), true).unwrap();
    assert!(is_closed(&mut from1).await, "node 1's open connection survived the cut");
    let mut again = TcpStream::connect(to2).await.unwrap();
    assert!(is_closed(&mut again).await, "node 1's new connection was not closed");
    // Node 2's own connection to node 1 carries bytes both ways, as before.
    from2.write_all(b"ping").await.unwrap();
    assert_eq!(read_n(&mut from2, 4, Duration::from_secs(2)).await, b"ping");
    fabric.cut_dialed(Endpoint::Node(1), Endpoint::Node(2), false).unwrap();
    let mut back = connect_greeted(to2).await;
    back.write_all(b"back").await.unwrap();
    assert_eq!(read_n(&mut back, 4, Duration::from_secs(2)).await, b"back");
    assert!(fabric.cut_dialed(Endpoint::Node(1), Endpoint::Node(3), true).is_err(), "no such route");
}

#[tokio::test]
async fn a_sever_resets_live_connections_and_forwards_new_ones() {
    let (fabric, _s1, _s2) = two_nodes().await;
    let addr = fabric.client_proxy(1).unwrap();
    let (mut a, mut b) = (connect_greeted(addr).await, connect_greeted(addr).await);
    assert_eq!(fabric.sever_dialed(Endpoint::Client, Endpoint::Node(1)).unwrap(), 2);
    assert!(is_closed(&mut a).await && is_closed(&mut b).await, "a connection survived the sever");
    let mut c = connect_greeted(addr).await;
    c.write_all(b"new").await.unwrap();
    assert_eq!(read_n(&mut c, 3, Duration::from_secs(2)).await, b"new");
}
