//! The node's answers as the types it writes them from (`broker::telemetry::wire`, decision 40):
//! one function per route the lab reads, so no caller looks a key up in raw JSON.

use std::net::SocketAddr;
use std::time::Duration;

use broker::cluster::rpc_trace::TraceAnswer;
use broker::cluster::watch::GroupState;
use broker::cluster::RaftSummary;
use broker::state::{PartitionState, StateSnapshot};
use broker::telemetry::http::PartitionDigest;
use broker::telemetry::wire::TraceWatch;

use super::{call, get, parse, CALL_TIMEOUT};

/// How much of `/state` to ask for: the per-group Raft list and the per-partition offsets are
/// megabytes at 10,000 partitions, and most readers need only one of them, or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateParts {
    pub raft_groups: bool,
    pub partitions: bool,
}

impl StateParts {
    pub const ALL: StateParts = StateParts { raft_groups: true, partitions: true };
    /// Every Raft group, partitions as counts only (what `lab::view` polls).
    pub const GROUPS: StateParts = StateParts { raft_groups: true, partitions: false };
    /// Counts only.
    pub const SUMMARY: StateParts = StateParts { raft_groups: false, partitions: false };

    fn path(self) -> String {
        let word = |all: bool| if all { "all" } else { "summary" };
        format!("/state?raft={}&partitions={}", word(self.raft_groups), word(self.partitions))
    }
}

/// `GET /state`.
pub async fn state(addr: SocketAddr, parts: StateParts, limit: Duration) -> crate::Result<StateSnapshot> {
    get(addr, &parts.path(), limit).await
}

/// `GET /raft/summary`.
pub async fn raft_summary(addr: SocketAddr, limit: Duration) -> crate::Result<RaftSummary> {
    get(addr, "/raft/summary", limit).await
}

/// `GET /raft/groups`, one page (every topic).
pub async fn raft_groups(
    addr: SocketAddr,
    offset: usize,
    page: usize,
    limit: Duration,
) -> crate::Result<Vec<GroupState>> {
    get(addr, &format!("/raft/groups?offset={offset}&limit={page}"), limit).await
}

/// `GET /partitions`, one page (every topic).
pub async fn partitions(
    addr: SocketAddr,
    offset: usize,
    page: usize,
    limit: Duration,
) -> crate::Result<Vec<PartitionState>> {
    get(addr, &format!("/partitions?offset={offset}&limit={page}"), limit).await
}

/// `GET /raft/trace?since=` (`page: None`: the node's largest page).
pub async fn raft_trace(
    addr: SocketAddr,
    since: u64,
    page: Option<usize>,
    limit: Duration,
) -> crate::Result<TraceAnswer> {
    let path = match page {
        Some(n) => format!("/raft/trace?since={since}&limit={n}"),
        None => format!("/raft/trace?since={since}"),
    };
    get(addr, &path, limit).await
}

/// `POST /raft/trace/watch`: record `group` in full (`None`: no group).
pub async fn watch_group(addr: SocketAddr, group: Option<&str>) -> crate::Result<TraceWatch> {
    let body = serde_json::json!({ "group": group }).to_string();
    let path = "/raft/trace/watch";
    let text = call(addr, reqwest::Method::POST, path, Some(body), CALL_TIMEOUT).await?;
    parse(addr, "POST", path, &text)
}

/// `GET /digest`.
pub async fn digest(addr: SocketAddr) -> crate::Result<Vec<PartitionDigest>> {
    get(addr, "/digest", CALL_TIMEOUT).await
}
