//! Join/Sync flows: generations, leader election, protocol choice, MEMBER_ID_REQUIRED.

use std::time::Duration;

use bytes::Bytes;

use super::*;

#[tokio::test(start_paused = true)]
async fn two_members_joining_together_share_one_generation_and_leader() {
    let h = harness();
    let (leader, follower) = join_two(&h).await;
    assert_eq!((leader.error_code, follower.error_code), (codes::NONE, codes::NONE));
    assert_eq!(leader.generation_id, 1);
    assert_eq!(follower.generation_id, 1);
    assert_eq!(follower.leader, leader.member_id);
    assert_ne!(leader.member_id, follower.member_id);
    assert_eq!(leader.protocol_name.as_deref(), Some("range"));
    assert_eq!(leader.protocol_type.as_deref(), Some("consumer"));
    let mut metas: Vec<Bytes> = leader.members.iter().map(|m| m.metadata.clone()).collect();
    metas.sort();
    assert_eq!(metas, vec![Bytes::from("meta-a"), Bytes::from("meta-b")]);
    assert!(follower.members.is_empty());
    assert_eq!(state(&h, "g"), "CompletingRebalance");
}

#[tokio::test(start_paused = true)]
async fn initial_delay_restarts_when_another_member_arrives() {
    let h = harness();
    let a = spawn_join(&h, join_req("g", "", &[("range", "a")]));
    until(&h, "first join parked", |s| awaiting_join(s, "g") == 1).await;
    advance(&h, Duration::from_millis(200)).await;
    let b = spawn_join(&h, join_req("g", "", &[("range", "b")]));
    until(&h, "second join parked", |s| awaiting_join(s, "g") == 2).await;
    // 400 ms after the first join: past the first delay, inside the restarted one.
    advance(&h, Duration::from_millis(200)).await;
    assert_eq!(state(&h, "g"), "PreparingRebalance");
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.leader, b.leader);
}

#[tokio::test(start_paused = true)]
async fn leader_sync_gives_each_member_its_own_assignment() {
    let h = harness();
    let (leader, follower) = join_two(&h).await;
    let (l, f) = (&leader.member_id, &follower.member_id);
    let resp = h.coord.sync(sync_req("g", 1, l, &[(l, "for-leader"), (f, "for-follower")])).await;
    assert_eq!(resp.error_code, codes::NONE);
    assert_eq!(resp.assignment, Bytes::from("for-leader"));
    assert_eq!(resp.protocol_name.as_deref(), Some("range"));
    let resp = h.coord.sync(sync_req("g", 1, f, &[])).await;
    assert_eq!(resp.error_code, codes::NONE);
    assert_eq!(resp.assignment, Bytes::from("for-follower"));
    assert_eq!(state(&h, "g"), "Stable");
    let desc = h.coord.describe("g");
    assert_eq!(desc.members.len(), 2);
    assert!(desc.members.iter().any(|m| m.member_id == *f && m.assignment == "for-follower"));
}

#[tokio::test(start_paused = true)]
async fn follower_sync_parked_before_leader_sync_gets_its_assignment() {
    let h = harness();
    let (leader, follower) = join_two(&h).await;
    let (l, f) = (leader.member_id.clone(), follower.member_id.clone());
    let parked = spawn_sync(&h, sync_req("g", 1, &f, &[]));
    until(&h, "follower sync parked", |s| s.groups[0].members.iter().any(|m| m.awaiting_sync)).await;
    let resp = h.coord.sync(sync_req("g", 1, &l, &[(&l, "x"), (&f, "y")])).await;
    assert_eq!(resp.assignment, Bytes::from("x"));
    let resp = parked.await.unwrap();
    assert_eq!(resp.error_code, codes::NONE);
    assert_eq!(resp.assignment, Bytes::from("y"));
}

#[tokio::test(start_paused = true)]
async fn sync_errors_and_a_leader_that_never_syncs() {
    let h = harness();
    let (leader, follower) = join_two(&h).await;
    let f = follower.member_id.clone();
    assert_eq!(h.coord.sync(sync_req("g", 7, &f, &[])).await.error_code, codes::ILLEGAL_GENERATION);
    assert_eq!(h.coord.sync(sync_req("g", 1, "nobody", &[])).await.error_code, codes::UNKNOWN_MEMBER_ID);
    assert_eq!(h.coord.sync(sync_req("nogroup", 1, &f, &[])).await.error_code, codes::UNKNOWN_MEMBER_ID);
    // The leader never sends SyncGroup: the parked follower is released by the sync deadline
    // (rebalance timeout, 20 s) and the silent leader is dropped.
    let parked = spawn_sync(&h, sync_req("g", 1, &f, &[]));
    until(&h, "follower sync parked", |s| s.groups[0].members.iter().any(|m| m.awaiting_sync)).await;
    advance(&h, Duration::from_secs(21)).await;
    assert_eq!(parked.await.unwrap().error_code, codes::REBALANCE_IN_PROGRESS);
    assert_eq!(h.coord.heartbeat("g", 1, &leader.member_id), codes::UNKNOWN_MEMBER_ID);
    let rejoin = h.coord.join(join_req("g", &f, &[("range", "meta-b")])).await;
    assert_eq!((rejoin.generation_id, rejoin.leader.as_str()), (2, f.as_str()));
}

#[tokio::test(start_paused = true)]
async fn member_id_required_then_rejoin_with_it() {
    let h = harness();
    let mut req = join_req("g", "", &[("range", "m")]);
    req.client_id = "rdkafka".to_string();
    req.require_known_member_id = true;
    let first = h.coord.join(req.clone()).await;
    assert_eq!(first.error_code, codes::MEMBER_ID_REQUIRED);
    assert!(first.member_id.starts_with("rdkafka-"), "{}", first.member_id);
    assert_eq!(state(&h, "g"), "Empty");
    req.member_id = first.member_id.clone();
    let second = h.coord.join(req.clone()).await;
    assert_eq!(second.error_code, codes::NONE);
    assert_eq!(second.member_id, first.member_id);
    assert_eq!(second.leader, first.member_id);
    assert_eq!(second.generation_id, 1);
    assert_eq!(second.members.len(), 1);
    req.member_id = "made-up".to_string();
    assert_eq!(h.coord.join(req).await.error_code, codes::UNKNOWN_MEMBER_ID);
}

#[tokio::test(start_paused = true)]
async fn join_validation_codes() {
    let h = harness();
    assert_eq!(h.coord.join(join_req("", "", &[("range", "")])).await.error_code, codes::INVALID_GROUP_ID);
    let mut req = join_req("g", "", &[("range", "")]);
    req.session_timeout_ms = 500;
    assert_eq!(h.coord.join(req.clone()).await.error_code, codes::INVALID_SESSION_TIMEOUT);
    req.session_timeout_ms = 301_000;
    assert_eq!(h.coord.join(req).await.error_code, codes::INVALID_SESSION_TIMEOUT);
    assert_eq!(h.coord.join(join_req("g", "", &[])).await.error_code, codes::INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(
        h.coord.join(join_req("other", "someone", &[("range", "")])).await.error_code,
        codes::UNKNOWN_MEMBER_ID
    );
}

#[tokio::test(start_paused = true)]
async fn no_common_protocol_or_type_is_inconsistent() {
    let h = harness();
    let a = spawn_join(&h, join_req("g", "", &[("range", "a")]));
    until(&h, "first join parked", |s| awaiting_join(s, "g") == 1).await;
    let b = h.coord.join(join_req("g", "", &[("roundrobin", "b")])).await;
    assert_eq!(b.error_code, codes::INCONSISTENT_GROUP_PROTOCOL);
    let mut other_type = join_req("g", "", &[("range", "c")]);
    other_type.protocol_type = "connect".to_string();
    assert_eq!(h.coord.join(other_type).await.error_code, codes::INCONSISTENT_GROUP_PROTOCOL);
    let a = a.await.unwrap();
    assert_eq!((a.error_code, a.members.len()), (codes::NONE, 1));
}

#[tokio::test(start_paused = true)]
async fn chosen_protocol_is_supported_by_all_and_most_preferred() {
    let h = harness();
    let a = spawn_join(&h, join_req("g", "", &[("cooperative-sticky", ""), ("range", "")]));
    let b = spawn_join(&h, join_req("g", "", &[("range", ""), ("roundrobin", "")]));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.protocol_name.as_deref(), Some("range"));
    assert_eq!(b.protocol_name.as_deref(), Some("range"));

    // All support both; two of three prefer roundrobin.
    let joins: Vec<_> = [["range", "roundrobin"], ["roundrobin", "range"], ["roundrobin", "range"]]
        .iter()
        .map(|p| spawn_join(&h, join_req("h", "", &[(p[0], ""), (p[1], "")])))
        .collect();
    for j in joins {
        assert_eq!(j.await.unwrap().protocol_name.as_deref(), Some("roundrobin"));
    }
}

#[tokio::test(start_paused = true)]
async fn state_changes_are_broadcast() {
    let h = harness();
    let mut events = h.coord.subscribe();
    stable_two(&h).await;
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push((e.old_state, e.new_state, e.generation));
    }
    let s = |a: &str, b: &str, g| (a.to_string(), b.to_string(), g);
    assert_eq!(
        seen,
        vec![
            s("Empty", "PreparingRebalance", 0),
            s("PreparingRebalance", "CompletingRebalance", 1),
            s("CompletingRebalance", "Stable", 1)
        ]
    );
}
