//! Heartbeats, session expiry, leaving, rebalance timeouts, static members, reporting.

use std::time::Duration;

use super::*;

#[tokio::test(start_paused = true)]
async fn heartbeat_codes() {
    let h = harness();
    let (leader, follower, gen) = stable_two(&h).await;
    assert_eq!(h.coord.heartbeat("g", gen, &follower), codes::NONE);
    assert_eq!(h.coord.heartbeat("g", gen + 1, &follower), codes::ILLEGAL_GENERATION);
    assert_eq!(h.coord.heartbeat("g", gen, "stranger"), codes::UNKNOWN_MEMBER_ID);
    assert_eq!(h.coord.heartbeat("nogroup", gen, &follower), codes::UNKNOWN_MEMBER_ID);
    assert_eq!(h.coord.heartbeat("", gen, &follower), codes::INVALID_GROUP_ID);

    let third = spawn_join(&h, join_req("g", "", &[("range", "c")]));
    until(&h, "rebalance started", |s| s.groups[0].state == "PreparingRebalance").await;
    assert_eq!(h.coord.heartbeat("g", gen, &leader), codes::REBALANCE_IN_PROGRESS);
    assert_eq!(h.coord.heartbeat("g", gen, &follower), codes::REBALANCE_IN_PROGRESS);
    assert_eq!(
        h.coord.sync(sync_req("g", gen, &follower, &[])).await.error_code,
        codes::REBALANCE_IN_PROGRESS
    );

    // Everyone rejoins: the rebalance completes at once into the next generation.
    let l = spawn_join(&h, join_req("g", &leader, &[("range", "meta-a")]));
    let f = h.coord.join(join_req("g", &follower, &[("range", "meta-b")])).await;
    let (l, third) = (l.await.unwrap(), third.await.unwrap());
    assert_eq!((f.generation_id, l.generation_id, third.generation_id), (gen + 1, gen + 1, gen + 1));
    assert_eq!(l.leader, leader);
    assert_eq!(l.members.len(), 3);
    // Between JoinGroup and SyncGroup Kafka answers heartbeats with NONE.
    assert_eq!(h.coord.heartbeat("g", gen + 1, &follower), codes::NONE);
}

#[tokio::test(start_paused = true)]
async fn session_timeout_evicts_silent_member_and_survivor_rebalances() {
    let h = harness();
    let (leader, follower, gen) = stable_two(&h).await;
    for _ in 0..11 {
        advance(&h, Duration::from_secs(1)).await;
        if state(&h, "g") == "Stable" {
            assert_eq!(h.coord.heartbeat("g", gen, &leader), codes::NONE);
        }
    }
    assert_eq!(state(&h, "g"), "PreparingRebalance");
    assert_eq!(h.coord.heartbeat("g", gen, &follower), codes::UNKNOWN_MEMBER_ID);
    assert_eq!(h.coord.heartbeat("g", gen, &leader), codes::REBALANCE_IN_PROGRESS);
    let rejoin = h.coord.join(join_req("g", &leader, &[("range", "meta-a")])).await;
    assert_eq!(rejoin.error_code, codes::NONE);
    assert_eq!(rejoin.generation_id, gen + 1);
    assert_eq!(rejoin.leader, leader);
    assert_eq!(rejoin.members.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn leave_triggers_rebalance_and_last_leave_empties_group() {
    let h = harness();
    let (leader, follower, gen) = stable_two(&h).await;
    let lm = |id: &str| LeaveMember { member_id: id.to_string(), group_instance_id: None };
    let (top, each) = h.coord.leave("g", &[lm(&follower), lm("ghost")]);
    assert_eq!((top, each), (codes::NONE, vec![codes::NONE, codes::UNKNOWN_MEMBER_ID]));
    assert_eq!(state(&h, "g"), "PreparingRebalance");
    assert_eq!(h.coord.heartbeat("g", gen, &leader), codes::REBALANCE_IN_PROGRESS);
    let rejoin = h.coord.join(join_req("g", &leader, &[("range", "meta-a")])).await;
    assert_eq!((rejoin.generation_id, rejoin.members.len()), (gen + 1, 1));

    let (top, each) = h.coord.leave("g", &[lm(&leader)]);
    assert_eq!((top, each), (codes::NONE, vec![codes::NONE]));
    assert_eq!(state(&h, "g"), "Empty");
    assert_eq!(h.coord.leave("nogroup", &[lm(&leader)]).1, vec![codes::UNKNOWN_MEMBER_ID]);
}

#[tokio::test(start_paused = true)]
async fn member_not_rejoining_within_rebalance_timeout_is_dropped() {
    let h = harness();
    let (leader, follower, gen) = stable_two(&h).await;
    // The leader rejoining starts a rebalance; the follower keeps heartbeating but never
    // rejoins, so only the 20 s rebalance timeout can finish it.
    let rejoin = spawn_join(&h, join_req("g", &leader, &[("range", "meta-a")]));
    until(&h, "leader parked", |s| awaiting_join(s, "g") == 1).await;
    for _ in 0..3 {
        advance(&h, Duration::from_secs(5)).await;
        assert_eq!(h.coord.heartbeat("g", gen, &follower), codes::REBALANCE_IN_PROGRESS);
    }
    advance(&h, Duration::from_secs(5)).await;
    let rejoin = rejoin.await.unwrap();
    assert_eq!(rejoin.error_code, codes::NONE);
    assert_eq!(rejoin.generation_id, gen + 1);
    assert_eq!(rejoin.members.len(), 1);
    assert_eq!(h.coord.heartbeat("g", gen + 1, &follower), codes::UNKNOWN_MEMBER_ID);
}

#[tokio::test(start_paused = true)]
async fn static_member_restart_fences_old_incarnation() {
    let h = harness();
    let mut req = join_req("g", "", &[("range", "s")]);
    req.group_instance_id = Some("instance-1".to_string());
    req.require_known_member_id = true; // static members skip MEMBER_ID_REQUIRED
    let first = h.coord.join(req.clone()).await;
    assert_eq!(first.error_code, codes::NONE);
    assert!(first.member_id.starts_with("instance-1-"));
    let second = h.coord.join(req.clone()).await;
    assert_eq!(second.error_code, codes::NONE);
    assert_ne!(second.member_id, first.member_id);
    assert_eq!(second.generation_id, first.generation_id + 1);
    assert_eq!(h.coord.heartbeat("g", second.generation_id, &first.member_id), codes::UNKNOWN_MEMBER_ID);
    req.member_id = first.member_id.clone();
    assert_eq!(h.coord.join(req).await.error_code, codes::FENCED_INSTANCE_ID);
    let leave = LeaveMember { member_id: String::new(), group_instance_id: Some("instance-1".to_string()) };
    assert_eq!(h.coord.leave("g", &[leave]).1, vec![codes::NONE]);
}

#[tokio::test(start_paused = true)]
async fn describe_list_and_snapshot() {
    let h = harness();
    let unknown = h.coord.describe("nope");
    assert_eq!((unknown.error_code, unknown.state.as_str()), (codes::NONE, "Dead"));
    let (leader, _, gen) = stable_two(&h).await;
    let desc = h.coord.describe("g");
    assert_eq!(
        (desc.state.as_str(), desc.protocol_type.as_str(), desc.protocol.as_str()),
        ("Stable", "consumer", "range")
    );
    assert_eq!(desc.members.len(), 2);
    assert!(desc.members.iter().all(|m| m.client_id == "client" && !m.metadata.is_empty()));
    assert_eq!(
        h.coord.commit_offsets(
            "solo",
            -1,
            "",
            &[OffsetCommit { topic: "t".into(), partition: 0, offset: 5, metadata: None, leader_epoch: -1 }]
        ),
        vec![codes::NONE]
    );
    let list = h.coord.list();
    let names: Vec<(&str, &str)> = list.iter().map(|l| (l.group_id.as_str(), l.state.as_str())).collect();
    assert_eq!(names, vec![("g", "Stable"), ("solo", "Empty")]);
    let snap = h.coord.snapshot();
    let g = &snap.groups[0];
    assert_eq!((g.generation, g.leader.as_deref(), g.members.len()), (gen, Some(leader.as_str()), 2));
    assert!(g.members.iter().all(|m| m.assignment_bytes == 1));
    assert_eq!(snap.groups[1].committed_offsets, 1);
    let json = serde_json::to_string(&snap).unwrap();
    assert!(json.contains("\"state\":\"Stable\""));
}
