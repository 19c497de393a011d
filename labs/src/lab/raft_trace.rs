//! Following the nodes' RPC-level Raft telemetry (`GET /raft/trace`) onto the timeline.
//!
//! Every `POLL_EVERY` the lab asks each node for the events since its cursor and appends what
//! came back as one timeline entry for all nodes ([`EventKind::RaftTrace`]): front ends get one
//! message per poll, not one per Raft message, and exports and replays carry the batches like
//! any other entry. The lab also keeps every node watching the group a front end chose: a node
//! that restarted watches the controller again until told otherwise.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker::cluster::rpc_trace::{ReplicaLog, TraceAnswer};
use tokio_util::sync::CancellationToken;

use crate::node_client::typed;
use crate::timeline::event::NodeTrace;
use crate::timeline::{EventKind, Source, Timeline};

/// How often nodes are polled: ten batches a second is smooth enough to animate (the view
/// plays messages back in slow motion anyway) and a trivial load on a node.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// A node that does not answer within this (paused, dead) is skipped for one poll.
const CALL_LIMIT: Duration = Duration::from_millis(500);

/// The group every node should watch (shared with the lab's `watch_raft_group` command).
pub type WatchedGroup = Arc<Mutex<Option<String>>>;

/// What the lab remembers of one node between polls.
#[derive(Default)]
struct Cursor {
    next: u64,
    replica: Option<ReplicaLog>,
}

/// Polls `nodes` until `cancel`, appending one [`EventKind::RaftTrace`] per poll that brought
/// anything new. The run spawns it among its followers and waits for it when it stops.
pub async fn follow(
    timeline: Arc<Timeline>,
    nodes: Vec<(i32, SocketAddr)>,
    watched: WatchedGroup,
    cancel: CancellationToken,
) {
    let mut cursors: HashMap<i32, Cursor> = HashMap::new();
    let mut ticks = tokio::time::interval(POLL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let want = watched.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let polls = nodes.iter().map(|(id, addr)| {
            let since = cursors.get(id).map_or(0, |c| c.next);
            let want = want.clone();
            async move { (*id, poll(*addr, since, want.as_deref()).await) }
        });
        let mut batch = Vec::new();
        for (id, page) in futures::future::join_all(polls).await {
            let Some(page) = page else { continue };
            let cursor = cursors.entry(id).or_default();
            if let Some(trace) = absorb(id, cursor, page) {
                batch.push(trace);
            }
        }
        if !batch.is_empty() {
            timeline.append(
                Source::Lab,
                crate::history::now_ns(),
                EventKind::RaftTrace { group: want.as_deref().and_then(|w| w.parse().ok()), nodes: batch },
            );
        }
    }
}

/// One node's page, after making it watch `want` if it watches something else.
async fn poll(addr: SocketAddr, since: u64, want: Option<&str>) -> Option<TraceAnswer> {
    let page = typed::raft_trace(addr, since, None, CALL_LIMIT).await.ok()?;
    if page.page.watched.as_deref() != want {
        if let Err(e) = typed::watch_group(addr, want).await {
            tracing::debug!(%addr, error = %e, "could not set the watched Raft group");
        }
    }
    Some(page)
}

/// Folds one page into the node's cursor; returns what is new. A `next` below the cursor means
/// the node restarted (its ring starts again at 0): everything in the page is new.
fn absorb(node: i32, cursor: &mut Cursor, answer: TraceAnswer) -> Option<NodeTrace> {
    let TraceAnswer { page, suspect_after_ms, replica } = answer;
    let restarted = page.next < cursor.next;
    let since = if restarted { 0 } else { cursor.next };
    let missed = page.oldest.saturating_sub(since);
    let events: Vec<_> = page.events.into_iter().filter(|e| e.seq >= since).collect();
    cursor.next = if restarted { 0 } else { page.next };
    let replica_changed = replica != cursor.replica;
    cursor.replica = replica.clone();
    if events.is_empty() && !replica_changed && missed == 0 {
        return None;
    }
    Some(NodeTrace {
        node,
        events,
        replica: if replica_changed { replica } else { None },
        missed,
        suspect_after_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker::raft::trace::{CounterValues, Outcome, TraceEvent, TraceKind, TracePage};

    fn page(next: u64, oldest: u64, seqs: &[u64]) -> TraceAnswer {
        let heartbeat = |seq: u64| TraceEvent {
            seq,
            ts_ns: 0,
            group: None,
            kind: TraceKind::NodeHeartbeat { to: 2, outcome: Outcome::Ok, rtt_us: 0 },
        };
        let replica = crate::lab::raft_expect::tests::replica_log(1, Vec::new(), None);
        TraceAnswer {
            page: TracePage {
                node_id: 1,
                watched: None,
                next,
                oldest,
                events: seqs.iter().map(|s| heartbeat(*s)).collect(),
                counters: CounterValues::default(),
            },
            suspect_after_ms: 300,
            replica: Some(replica),
        }
    }

    #[test]
    fn pages_advance_the_cursor_and_a_restart_starts_it_again() {
        let mut c = Cursor::default();
        let t = absorb(1, &mut c, page(3, 0, &[0, 1, 2])).expect("new events");
        assert_eq!((t.events.len(), t.missed, c.next), (3, 0, 3));
        assert!(t.replica.is_some(), "the first replica state is news");
        assert!(absorb(1, &mut c, page(3, 0, &[])).is_none(), "nothing new, same replica: no entry");
        let t = absorb(1, &mut c, page(10, 5, &[5, 6, 7, 8, 9])).expect("new events");
        assert_eq!(t.missed, 2, "seqs 3 and 4 left the ring before the lab read them");
        assert!(t.replica.is_none(), "an unchanged replica is not sent again");
        // The node restarted: its seqs start at 0 again.
        let t = absorb(1, &mut c, page(2, 0, &[0, 1])).expect("a restarted node's events");
        assert_eq!((t.events.len(), c.next), (2, 0));
    }

    /// Every event of `group` of kind `kind` in the lab's timeline, with the node that
    /// recorded it.
    fn recorded(
        lab: &crate::lab::Lab,
        group: &str,
        kind: impl Fn(&TraceKind) -> bool,
    ) -> Vec<(i32, TraceKind)> {
        let mut out = Vec::new();
        for e in lab.timeline.snapshot() {
            if let EventKind::RaftTrace { nodes, .. } = e.kind {
                for n in nodes {
                    out.extend(
                        n.events
                            .into_iter()
                            .filter(|v| kind(&v.kind) && v.group.as_ref().is_some_and(|g| g == group))
                            .map(|v| (n.node, v.kind)),
                    );
                }
            }
        }
        out
    }

    /// A lab over the test broker in a fresh temporary root (removed by the caller).
    fn test_lab(name: &str) -> (std::sync::Arc<crate::lab::Lab>, std::path::PathBuf) {
        let root = std::env::temp_dir().join(format!("clusterlab-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let lab = crate::lab::Lab::new(crate::lab::LabConfig::for_tests(&root).remembering());
        (lab, root)
    }

    /// A real lab: after `watch_raft_group lab-0` the timeline fills with batches of the nodes'
    /// messages for that group; killing its leader brings vote requests in a higher term, one
    /// granted, into the same timeline (what a replay of the run will show).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lab_records_the_watched_groups_election_after_a_leader_kill() {
        use crate::lab::protocol::{ClusterSettings, Command};
        let (lab, root) = test_lab("trace");
        lab.start_cluster(ClusterSettings::default()).await.expect("cluster started");
        // The workload creates topic "lab" (3 partitions) and keeps appends flowing.
        lab.start_workload(Some(100), None).await.expect("workload started");
        let wait = |what: &'static str, limit: Duration| {
            let deadline = std::time::Instant::now() + limit;
            move || {
                assert!(std::time::Instant::now() < deadline, "timed out after {limit:?} waiting for {what}")
            }
        };
        let bad = lab.handle(Command::WatchRaftGroup { group: Some("lab".into()) }).await;
        assert_eq!(bad.expect_err("not a group name").code, "bad_request");
        lab.handle(Command::WatchRaftGroup { group: Some("lab-0".into()) }).await.expect("watch");
        assert_eq!(lab.state().await.raft_watch.as_deref(), Some("lab-0"));
        let check = wait("an acknowledged append of lab-0", Duration::from_secs(30));
        let (leader, old_term) = loop {
            check();
            let is_append = |k: &TraceKind| matches!(k, TraceKind::Append { .. });
            let acked = recorded(&lab, "lab-0", is_append).into_iter().find(|(_, v)| v.succeeded());
            if let Some((node, v)) = acked {
                break (node, v.term().expect("an append carries its term"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let killed = lab.fault("kill", "leader:lab/0", None).await.expect("leader killed");
        assert_eq!(killed, vec![leader], "the node that appended as leader of lab-0 was its leader");
        let check = wait("a granted vote for lab-0 in a higher term", Duration::from_secs(30));
        let (winner, vote) = loop {
            check();
            let granted = recorded(&lab, "lab-0", |k| matches!(k, TraceKind::Vote { .. }))
                .into_iter()
                .find(|(_, v)| v.succeeded() && v.term() > Some(old_term));
            if let Some(found) = granted {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_ne!(winner, leader, "a survivor campaigned: {vote:?}");
        assert_ne!(vote.to(), Some(leader as u64), "the dead node granted nothing: {vote:?}");
        // Batched: one timeline entry per poll carries many messages.
        let biggest = lab
            .timeline
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::RaftTrace { nodes, .. } => {
                    Some(nodes.iter().map(|n| n.events.len()).sum::<usize>())
                }
                _ => None,
            })
            .max()
            .unwrap_or(0);
        assert!(biggest > 1, "batches of one message each: the lab would send one message per event");
        // The run's HTML report draws that election message by message.
        let files = lab.export("html", &root.join("export")).expect("report written");
        let report =
            std::fs::read_to_string(files.iter().find(|f| f.ends_with(".html")).expect("an .html file"))
                .expect("report readable");
        let figure =
            report.split("<figure class=\"election\">").nth(1).expect("an election diagram in the report");
        let figure = &figure[..figure.find("</figure>").expect("closed")];
        assert_eq!(figure.matches("class=\"lane\"").count(), 3, "a lane per node");
        assert!(figure.contains("class=\"msg vote\"") && figure.contains("✓ granted"), "{figure}");
        // The killed node comes back watching the controller (its default); the poller tells it
        // to watch lab-0 again.
        lab.fault("restart", &format!("node:{leader}"), None).await.expect("restarted");
        let addr = lab.run.lock().await.as_ref().expect("running").supervisor.node_info(leader).unwrap().http;
        let check = wait("the restarted node to watch lab-0 again", Duration::from_secs(30));
        loop {
            check();
            let page = typed::raft_trace(addr, 0, Some(0), Duration::from_secs(3)).await;
            if page.is_ok_and(|p| p.page.watched.as_deref() == Some("lab-0")) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lab.close().await;
        let _ = std::fs::remove_dir_all(&root);
    }

    /// At teaching tempo the nodes really slow down: node heartbeats half a second apart, and
    /// killing the controller's leader still ends in a granted vote in a higher term.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_teaching_tempo_heartbeats_are_half_a_second_apart_and_elections_still_finish() {
        use crate::lab::protocol::ClusterSettings;
        use crate::lab::Lab;
        let (lab, root) = test_lab("tempo");
        lab.start_cluster(ClusterSettings::teaching_tempo()).await.expect("cluster started");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let beats_1_to_2 = |lab: &Lab| -> Vec<u64> {
            let mut ts: Vec<u64> = Vec::new();
            for e in lab.timeline.snapshot() {
                if let EventKind::RaftTrace { nodes, .. } = e.kind {
                    for n in nodes.into_iter().filter(|n| n.node == 1) {
                        ts.extend(
                            n.events
                                .iter()
                                .filter(|v| matches!(v.kind, TraceKind::NodeHeartbeat { to: 2, .. }))
                                .map(|v| v.ts_ns),
                        );
                    }
                }
            }
            ts
        };
        let beats = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for 6 node heartbeats from n1 to n2"
            );
            let b = beats_1_to_2(&lab);
            if b.len() >= 6 {
                break b;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let gaps: Vec<u64> = beats.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
        assert!(gaps.iter().all(|g| (400..=1_000).contains(g)), "heartbeats every ~500 ms: gaps {gaps:?} ms");
        let addrs = lab.run.lock().await.as_ref().expect("running").http_addrs();
        // The term of the leader about to be killed: a vote in a higher one is the re-election.
        let old_term = loop {
            let view = crate::lab::view::ClusterView::observe(&addrs).await;
            if let Some(l) = view.leader_of("controller") {
                break l.term;
            }
            assert!(std::time::Instant::now() < deadline, "timed out waiting for a controller leader");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let killed = lab.fault("kill", "controller", None).await.expect("controller leader killed");
        let granted = loop {
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for a granted controller vote after killing n{killed:?}"
            );
            let found = recorded(&lab, "controller", |k| matches!(k, TraceKind::Vote { .. }))
                .into_iter()
                .find(|(_, v)| v.succeeded() && v.term() > Some(old_term));
            if let Some(f) = found {
                break f;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(!killed.contains(&granted.0), "a survivor won: {granted:?}");
        lab.close().await;
        let _ = std::fs::remove_dir_all(&root);
    }
}
