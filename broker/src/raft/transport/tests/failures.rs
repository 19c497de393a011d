//! Peers that are absent, hang up, send garbage, or are shut down.

use super::*;

#[tokio::test]
async fn absent_peer_fails_fast_then_reconnects_when_it_comes_up() {
    // Reserve a free port, then free it so nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let a = client_a(addr);
    let started = Instant::now();
    let err = vote(&a, GroupId::Controller, 1, TTL).await.unwrap_err();
    assert!(matches!(err, BrokerError::PeerUnreachable { peer: 2, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    // Within the backoff window the transport does not dial again; it answers at once.
    assert!(matches!(vote(&a, GroupId::Controller, 1, TTL).await, Err(BrokerError::PeerUnreachable { .. })));
    assert!(a.peer_status()[0].last_error.is_some());

    let (_b, _router) = serve_b(TcpListener::bind(addr).await.unwrap());
    let up = eventually(Duration::from_secs(10), || async {
        matches!(vote(&a, GroupId::Controller, 2, TTL).await, Ok(RaftReply::Vote(Ok(_))))
    })
    .await;
    assert!(up, "no successful request after the peer came up");
    assert!(a.peer_status()[0].connected);
}

#[tokio::test]
async fn connection_loss_fails_pending_requests_promptly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = client_a(listener.local_addr().unwrap());
    // A fake peer that reads five requests and then hangs up without answering.
    let peer = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        for _ in 0..5 {
            let frame = wire::read_frame(&mut stream).await.unwrap().unwrap();
            assert!(matches!(wire::decode_body(&frame).unwrap().body, Body::Request(_)));
        }
        listener // keep listening so a redial would not be refused
    });
    let started = Instant::now();
    let replies = join_all((1..=5).map(|term| vote(&a, GroupId::Controller, term, TTL))).await;
    for reply in replies {
        assert!(matches!(reply, Err(BrokerError::PeerUnreachable { .. })), "{reply:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let _listener = peer.await.unwrap();
    let status = &a.peer_status()[0];
    assert!(!status.connected && status.last_error.is_some());
}

#[tokio::test]
async fn garbage_frame_closes_only_that_connection() {
    let (_b, _router, addr) = start_b().await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&[0, 0, 0, 5, 1, 2, 3, 4, 5]).await.unwrap();
    assert_closed_by_server(raw).await;

    let a = client_a(addr);
    assert!(matches!(vote(&a, GroupId::Controller, 1, TTL).await, Ok(RaftReply::Vote(Ok(_)))));
}

/// Anyone can dial the Raft port: past MAX_PEER_CONNECTIONS a connection is closed at accept,
/// and once one of the others goes away a real peer is served again.
#[tokio::test]
async fn connections_past_the_cap_are_closed_at_accept() {
    let (_b, _router, addr) = start_b().await;
    let mut held = Vec::new();
    for _ in 0..server::MAX_PEER_CONNECTIONS {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Accepted in the order they connected: this one is past the cap.
    let extra = TcpStream::connect(addr).await.unwrap();
    assert_closed_by_server(extra).await;
    drop(held);
    let a = client_a(addr);
    let served = eventually(Duration::from_secs(10), || async {
        matches!(vote(&a, GroupId::Controller, 1, TTL).await, Ok(RaftReply::Vote(Ok(_))))
    })
    .await;
    assert!(served, "a real peer was not served once the held connections closed");
}

#[tokio::test]
async fn oversized_frames_are_refused_both_ways() {
    let (_b, _router, addr) = start_b().await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert_closed_by_server(raw).await;

    let err = wire::read_frame(&mut &u32::MAX.to_be_bytes()[..]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);

    // The sender refuses too, before anything reaches the socket, and the link stays usable.
    let a = client_a(addr);
    let big = Entry {
        log_id: log_id(1, 1),
        payload: EntryPayload::Normal(Command::Batch(Bytes::from(vec![0u8; MAX_FRAME_LEN + 1]))),
    };
    let req = AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: None,
        entries: vec![big],
        leader_commit: None,
    };
    let err = a.request(2, partition("t"), RaftRequest::AppendEntries(req), TTL).await.unwrap_err();
    assert!(matches!(&err, BrokerError::Frame(msg) if msg.contains("frame limit")), "{err}");
    assert!(matches!(vote(&a, GroupId::Controller, 1, TTL).await, Ok(RaftReply::Vote(Ok(_)))));
}

#[tokio::test]
async fn close_stops_everything() {
    let (b, _router, addr) = start_b().await;
    let a = client_a(addr);
    let hanging = tokio::spawn({
        let a = a.clone();
        async move { vote(&a, partition("hang"), 1, TTL).await }
    });
    assert!(eventually(Duration::from_secs(5), || async { a.peer_status()[0].requests_sent == 1 }).await);
    tokio::time::timeout(Duration::from_secs(5), b.close()).await.expect("server close hung");
    let reply =
        tokio::time::timeout(Duration::from_secs(5), hanging).await.expect("pending not failed").unwrap();
    assert!(matches!(reply, Err(BrokerError::PeerUnreachable { .. })), "{reply:?}");
    tokio::time::timeout(Duration::from_secs(5), a.close()).await.expect("client close hung");
    assert!(matches!(vote(&a, GroupId::Controller, 1, TTL).await, Err(BrokerError::ShuttingDown)));
    // openraft retries any other error at once: a replication stream that outlived the
    // transport would spin instead of backing off.
    let mut network = a.network_factory(partition("t")).new_client(2, &BasicNode::default()).await;
    let reply = network.vote(vote_req(1), RPCOption::new(TTL)).await;
    assert!(matches!(reply, Err(RPCError::Unreachable(_))), "{reply:?}");
}
