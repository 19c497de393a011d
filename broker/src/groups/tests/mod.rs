//! Shared fixtures for the coordinator tests. Timing tests run on paused tokio time and move
//! it with `advance` + an explicit `tick()`; nothing synchronises by sleeping.

mod membership;
mod offsets;
mod rebalance;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;

pub(super) struct Harness {
    pub coord: Arc<GroupCoordinator>,
    /// What the persist fn last wrote.
    pub stored: Arc<Mutex<Option<Vec<u8>>>>,
    cancel: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

pub(super) fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        initial_rebalance_delay: Duration::from_millis(300),
        min_session_timeout: Duration::from_secs(1),
        max_session_timeout: Duration::from_secs(300),
    }
}

pub(super) fn memory_persist(stored: Arc<Mutex<Option<Vec<u8>>>>) -> PersistFn {
    Arc::new(move |bytes: &[u8]| {
        *stored.lock().unwrap() = Some(bytes.to_vec());
        Ok(())
    })
}

/// A coordinator with an in-memory persist fn and its timer task running.
pub(super) fn harness() -> Harness {
    harness_from(None)
}

pub(super) fn harness_from(persisted: Option<Vec<u8>>) -> Harness {
    let stored = Arc::new(Mutex::new(None));
    let coord =
        GroupCoordinator::new(config(), persisted, memory_persist(stored.clone())).expect("coordinator");
    let cancel = CancellationToken::new();
    tokio::spawn(coord.clone().run_timers(cancel.clone()));
    Harness { coord, stored, cancel }
}

pub(super) fn join_req(group: &str, member: &str, protocols: &[(&str, &str)]) -> JoinRequest {
    JoinRequest {
        group_id: group.to_string(),
        member_id: member.to_string(),
        group_instance_id: None,
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
        protocol_type: "consumer".to_string(),
        protocols: protocols.iter().map(|(n, m)| (n.to_string(), Bytes::from(m.to_string()))).collect(),
        require_known_member_id: false,
    }
}

pub(super) fn sync_req(
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        group_id: group.to_string(),
        generation_id: generation,
        member_id: member.to_string(),
        group_instance_id: None,
        protocol_type: Some("consumer".to_string()),
        protocol_name: None,
        assignments: assignments.iter().map(|(m, a)| (m.to_string(), Bytes::from(a.to_string()))).collect(),
    }
}

pub(super) fn spawn_join(h: &Harness, req: JoinRequest) -> JoinHandle<JoinResponse> {
    let coord = h.coord.clone();
    tokio::spawn(async move { coord.join(req).await })
}

pub(super) fn spawn_sync(h: &Harness, req: SyncRequest) -> JoinHandle<SyncResponse> {
    let coord = h.coord.clone();
    tokio::spawn(async move { coord.sync(req).await })
}

/// Let spawned tasks run until `cond` holds (bounded; no time passes).
pub(super) async fn until(h: &Harness, what: &str, cond: impl Fn(&GroupsSnapshot) -> bool) {
    for _ in 0..1000 {
        if cond(&h.coord.snapshot()) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("condition never held: {what}");
}

pub(super) fn awaiting_join(s: &GroupsSnapshot, group: &str) -> usize {
    s.groups
        .iter()
        .filter(|g| g.group_id == group)
        .flat_map(|g| &g.members)
        .filter(|m| m.awaiting_join)
        .count()
}

pub(super) fn state(h: &Harness, group: &str) -> String {
    h.coord.describe(group).state
}

/// Move paused time forward and run one timer pass at the new instant.
pub(super) async fn advance(h: &Harness, d: Duration) {
    tokio::time::advance(d).await;
    h.coord.tick();
}

/// Two members join "g" together (same protocols); returns (leader response, follower response).
pub(super) async fn join_two(h: &Harness) -> (JoinResponse, JoinResponse) {
    let a = spawn_join(h, join_req("g", "", &[("range", "meta-a")]));
    let b = spawn_join(h, join_req("g", "", &[("range", "meta-b")]));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    if a.member_id == a.leader {
        (a, b)
    } else {
        (b, a)
    }
}

/// Two members in a Stable "g": returns (leader id, follower id, generation).
pub(super) async fn stable_two(h: &Harness) -> (String, String, i32) {
    let (leader, follower) = join_two(h).await;
    let gen = leader.generation_id;
    let l = h
        .coord
        .sync(sync_req("g", gen, &leader.member_id, &[(&leader.member_id, "A"), (&follower.member_id, "B")]))
        .await;
    assert_eq!(l.error_code, codes::NONE);
    let f = h.coord.sync(sync_req("g", gen, &follower.member_id, &[])).await;
    assert_eq!(f.error_code, codes::NONE);
    assert_eq!(state(h, "g"), "Stable");
    (leader.member_id, follower.member_id, gen)
}
