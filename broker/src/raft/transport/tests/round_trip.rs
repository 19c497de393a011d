//! Requests that get answered: payloads, id matching, group routing, timeouts.

use super::*;

#[tokio::test]
async fn append_entries_and_vote_round_trip() {
    let (_b, router, addr) = start_b().await;
    let a = client_a(addr);
    let entries: Vec<Entry> = (1..=2)
        .map(|i| Entry {
            log_id: log_id(3, i),
            payload: EntryPayload::Normal(Command::Batch(Bytes::from(vec![i as u8; 100]))),
        })
        .collect();
    let req = AppendEntriesRequest {
        vote: Vote::new_committed(3, 1),
        prev_log_id: None,
        entries,
        leader_commit: None,
    };
    let reply = a.request(2, partition("t"), RaftRequest::AppendEntries(req), TTL).await.unwrap();
    assert!(matches!(
        reply,
        RaftReply::AppendEntries(Ok(AppendEntriesResponse::PartialSuccess(Some(id)))) if id == log_id(3, 2)
    ));
    assert_eq!(
        *router.appended.lock().unwrap(),
        vec![Command::Batch(Bytes::from(vec![1u8; 100])), Command::Batch(Bytes::from(vec![2u8; 100]))]
    );

    let RaftReply::Vote(Ok(resp)) = vote(&a, GroupId::Controller, 5, TTL).await.unwrap() else {
        panic!("not a vote reply")
    };
    assert_eq!((resp.vote, resp.last_log_id), (Vote::new(5, 1), Some(log_id(5, 7))));
    let groups = vec![partition("t"), GroupId::Controller];
    let elect = a.request(2, GroupId::Controller, RaftRequest::Elect { groups }, TTL).await.unwrap();
    assert!(matches!(&elect, RaftReply::Elected(started) if started.len() == 2), "{elect:?}");

    // The same through openraft's interface.
    let mut network = a.network_factory(partition("t")).new_client(2, &BasicNode::default()).await;
    let resp = network.vote(vote_req(9), RPCOption::new(TTL)).await.unwrap();
    assert_eq!(resp.vote, Vote::new(9, 1));

    let status = a.peer_status();
    assert_eq!(status.len(), 1);
    assert!(status[0].connected && status[0].last_connected_ns.is_some());
    assert_eq!((status[0].requests_sent, status[0].replies_received, status[0].reconnects), (4, 4, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_matched_by_id() {
    let (_b, _router, addr) = start_b().await;
    let a = client_a(addr);
    let replies = join_all((1..=200u64).map(|term| {
        let a = a.clone();
        async move { (term, vote(&a, GroupId::Controller, term, TTL).await) }
    }))
    .await;
    for (term, reply) in replies {
        let RaftReply::Vote(Ok(resp)) = reply.unwrap() else { panic!("not a vote reply") };
        assert_eq!(resp.vote, Vote::new(term, 1), "reply routed to the wrong request");
    }
    assert_eq!(a.peer_status()[0].reconnects, 0, "all requests share one connection");
}

#[tokio::test]
async fn unknown_group_maps_to_unreachable_and_silence_to_timeout() {
    let (_b, _router, addr) = start_b().await;
    let a = client_a(addr);
    assert!(matches!(vote(&a, partition("other"), 1, TTL).await, Ok(RaftReply::NoSuchGroup(_))));
    let mut network = a.network_factory(partition("other")).new_client(2, &BasicNode::default()).await;
    assert!(matches!(network.vote(vote_req(1), RPCOption::new(TTL)).await, Err(RPCError::Unreachable(_))));

    let short = Duration::from_millis(200);
    assert!(matches!(vote(&a, partition("hang"), 1, short).await, Err(BrokerError::RpcTimeout { .. })));
    let mut network = a.network_factory(partition("hang")).new_client(2, &BasicNode::default()).await;
    assert!(matches!(network.vote(vote_req(1), RPCOption::new(short)).await, Err(RPCError::Timeout(_))));
    // A timed-out request does not poison the connection.
    assert!(matches!(vote(&a, GroupId::Controller, 2, TTL).await, Ok(RaftReply::Vote(Ok(_)))));
}

/// openraft retries any failure but `Unreachable` at once: a peer answering with replies of the
/// wrong kind must be reported so that replication backs off instead of spinning against it.
#[tokio::test]
async fn replies_of_the_wrong_kind_map_to_unreachable() {
    let (_b, _router, addr) = start_b().await;
    let a = client_a(addr);
    let mut network = a.network_factory(partition("liar")).new_client(2, &BasicNode::default()).await;
    let voted = network.vote(vote_req(1), RPCOption::new(TTL)).await;
    assert!(matches!(voted, Err(RPCError::Unreachable(_))), "vote: {voted:?}");
    let append = AppendEntriesRequest {
        vote: Vote::new(1, 1),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let appended = network.append_entries(append, RPCOption::new(TTL)).await;
    assert!(matches!(appended, Err(RPCError::Unreachable(_))), "append_entries: {appended:?}");
}
