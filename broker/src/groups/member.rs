//! One member of a classic consumer group and the replies it may be waiting for.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::codes;
use super::types::{JoinResponse, SyncResponse};

#[derive(Debug)]
pub(crate) struct Member {
    pub id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    /// Order of arrival in the group; the earliest member becomes leader when one is needed.
    pub seq: u64,
    pub session_deadline: Instant,
    /// Set while the member's JoinGroup is parked for the current rebalance.
    pub join_waiter: Option<oneshot::Sender<JoinResponse>>,
    /// Set while the member's SyncGroup is parked for the leader's assignments.
    pub sync_waiter: Option<oneshot::Sender<SyncResponse>>,
    /// The member sent SyncGroup for the current generation (parked or answered); members that
    /// never do are dropped when the sync phase times out.
    pub synced: bool,
}

impl Member {
    pub fn awaiting_join(&self) -> bool {
        self.join_waiter.is_some()
    }

    pub fn refresh_session(&mut self, now: Instant) {
        self.session_deadline = now + self.session_timeout;
    }

    /// A member whose reply is parked is kept alive: the rebalance or sync deadline bounds that
    /// wait instead, and expiring it mid-wait would restart the rebalance it is part of.
    pub fn session_expired(&self, now: Instant) -> bool {
        self.join_waiter.is_none() && self.sync_waiter.is_none() && now >= self.session_deadline
    }

    /// Metadata this member sent for `protocol` (empty if it does not support it).
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    pub fn matches(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        self.protocol_type == protocol_type && self.protocols == protocols
    }

    /// Answer a parked join, if any. A send error only means the client went away.
    /// The session clock restarts with the answer: the wait itself was not the client's silence.
    pub fn answer_join(&mut self, resp: JoinResponse) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(resp);
            self.refresh_session(Instant::now());
        }
    }

    pub fn answer_sync(&mut self, resp: SyncResponse) {
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(resp);
            self.refresh_session(Instant::now());
        }
    }

    /// Fail whatever the member is waiting for, e.g. because it was removed or a new rebalance
    /// began; the client reacts to the code by rejoining.
    pub fn fail_waiters(&mut self, code: i16) {
        let id = self.id.clone();
        self.answer_join(JoinResponse::error(code, &id));
        self.answer_sync(SyncResponse::error(code));
    }
}

impl Drop for Member {
    /// Removal must never leave a client waiting on a reply that will not come.
    fn drop(&mut self) {
        self.fail_waiters(codes::UNKNOWN_MEMBER_ID);
    }
}

static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<prefix>-<uuid-shaped unique suffix>`, as Kafka builds member ids. The counter makes ids
/// unique within the process; the random half keeps ids from a restarted broker from colliding
/// with ids clients still remember from the previous run.
pub(crate) fn new_member_id(prefix: &str) -> String {
    let count = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(count);
    let random = h.finish();
    format!(
        "{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        prefix,
        (random >> 32) as u32,
        (random >> 16) as u16,
        random as u16,
        (count >> 48) as u16,
        count & 0xffff_ffff_ffff
    )
}
