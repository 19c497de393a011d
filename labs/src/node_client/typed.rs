//! The node's answers as the types it writes them from (`broker::telemetry::wire`, decision 37):
//! one function per route the lab reads, so no caller looks a key up in raw JSON.

use std::net::SocketAddr;
use std::time::Duration;

use broker::cluster::rpc_trace::TraceAnswer;
use broker::cluster::watch::GroupState;
use broker::cluster::RaftSummary;
use broker::endpoint::PartitionDigest;
use broker::state::{PartitionState, StateSnapshot};
use broker::telemetry::memory::MemoryReport;
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

/// `GET /memory`.
pub async fn memory(addr: SocketAddr, limit: Duration) -> crate::Result<MemoryReport> {
    get(addr, "/memory", limit).await
}

/// `GET /digest`.
pub async fn digest(addr: SocketAddr) -> crate::Result<Vec<PartitionDigest>> {
    get(addr, "/digest", CALL_TIMEOUT).await
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::*;
    use crate::node_client::get_json;

    /// `raw` read into `T` and written again is `raw`: the type holds every field the node sent.
    fn round_trips<T: DeserializeOwned + Serialize>(what: &str, raw: serde_json::Value) -> T {
        let typed: T = serde_json::from_value(raw.clone()).unwrap_or_else(|e| panic!("{what}: {e}\n{raw}"));
        assert_eq!(serde_json::to_value(&typed).unwrap(), raw, "{what} changed shape on the way through");
        typed
    }

    /// Real nodes with a topic and a workload's worth of traffic: every answer the lab reads, and
    /// the first telemetry events, read into the node's own types and written back unchanged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_answer_round_trips_through_the_nodes_types() {
        use crate::supervisor::{Supervisor, SupervisorConfig};
        let root = std::env::temp_dir().join(format!("clusterlab-typed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut config = SupervisorConfig::new(crate::supervisor::tests_broker_bin());
        config.data_root = Some(root.clone());
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let sup = Supervisor::new(config, tx).await.expect("lab laid out");
        sup.start_all().await.unwrap();
        let addr = sup.node_info(1).unwrap().http;
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let cancel = tokio_util::sync::CancellationToken::new();
        let follow = tokio::spawn(crate::node_client::events::follow(
            addr,
            cancel.clone(),
            move |v| drop(events_tx.send(v)),
            |_| {},
        ));
        crate::workload::admin::create_topic(
            &sup.bootstrap_servers(),
            "typed",
            2,
            3,
            Duration::from_secs(20),
        )
        .await
        .expect("topic created");
        // Every group has a leader, so leaders report their followers' matched indexes too.
        let t = Instant::now();
        while raft_summary(addr, CALL_TIMEOUT).await.ok().map(|s| s.groups - s.leaderless) != Some(3) {
            assert!(t.elapsed() < Duration::from_secs(20), "node 1 did not see 3 led groups within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for path in ["/state", "/state?raft=summary&partitions=summary"] {
            let s: StateSnapshot = round_trips(path, get_json(addr, path).await.unwrap());
            assert!(s.raft.is_some(), "cluster mode");
        }
        round_trips::<RaftSummary>("/raft/summary", get_json(addr, "/raft/summary").await.unwrap());
        let groups: Vec<GroupState> =
            round_trips("/raft/groups", get_json(addr, "/raft/groups").await.unwrap());
        assert_eq!(groups.len(), 3);
        round_trips::<Vec<PartitionState>>("/partitions", get_json(addr, "/partitions").await.unwrap());
        round_trips::<Vec<PartitionDigest>>("/digest", get_json(addr, "/digest").await.unwrap());
        // Three replicas' logs, each holding at least its Raft membership entry.
        let memory: MemoryReport = round_trips("/memory", get_json(addr, "/memory").await.unwrap());
        assert!(
            memory.log_index_entries >= 3 && memory.log_index_bytes >= memory.log_index_entries * 40,
            "{memory:?}"
        );
        assert!(memory.heap_in_use_bytes.is_some_and(|b| b > 1 << 20), "{memory:?}");
        assert_eq!(
            watch_group(addr, Some("typed-0")).await.unwrap().watched.map(|g| g.to_string()).as_deref(),
            Some("typed-0")
        );
        let trace: TraceAnswer = round_trips("/raft/trace", get_json(addr, "/raft/trace").await.unwrap());
        assert_eq!(trace.page.watched.map(|g| g.to_string()).as_deref(), Some("typed-0"));
        // The events so far: lifecycle, topic, Raft states (a leader's with matched indexes), elections.
        cancel.cancel();
        follow.await.unwrap();
        // The follower hands them over already read: none may be left unread, and each must write
        // back as it reads (what keeps `to_timeline`'s verbatim copies as the node wrote them).
        let mut kinds = std::collections::BTreeSet::new();
        while let Ok(event) = events.try_recv() {
            use crate::node_client::events::NodeEvent;
            let NodeEvent::Typed(e) = event else { panic!("an event this lab cannot read: {event:?}") };
            let v = serde_json::to_value(&e).unwrap();
            round_trips::<broker::telemetry::Event>("an event", v.clone());
            kinds.insert(v["type"].as_str().unwrap_or_default().to_string());
            use broker::telemetry::EventKind as Node;
            let drawn =
                matches!(e.kind, Node::Raft(_) | Node::Election { .. } | Node::PartitionOffsets { .. });
            let (_, _, kind) = crate::node_client::events::to_timeline(NodeEvent::Typed(e));
            let kept_raw = matches!(kind, crate::timeline::EventKind::Telemetry { .. });
            assert_eq!(kept_raw, !drawn, "{kind:?}");
        }
        assert!(kinds.contains("raft") && kinds.contains("election"), "events seen: {kinds:?}");
        sup.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&root);
    }
}
