//! Starting and stopping the supervised cluster, and pumping what it says onto the timeline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use super::detail::Pager;
use super::protocol::{ClusterSettings, LabFailure, LabState, NodeView};
use super::raft_trace::WatchedGroup;
use super::Lab;
use crate::history::now_ns;
use crate::node_client;
use crate::runs::recorder::RunOutcome;
use crate::runs::RunKind;
use crate::supervisor::{ProcessState, Supervisor, SupervisorConfig, SupervisorEvent};
use crate::timeline::event::ProcessPhase;
use crate::timeline::{EventKind, Source, Timeline};

/// CPU %, memory, disk of a node, as last sampled.
type Resources = Arc<Mutex<HashMap<i32, (f32, u64, u64)>>>;

/// A running cluster.
pub struct Run {
    pub settings: ClusterSettings,
    pub supervisor: Supervisor,
    resources: Resources,
    /// Which page of each node's groups and partitions the next snapshot carries.
    pager: Pager,
    cancel: CancellationToken,
    /// The telemetry and Raft-trace followers: they end on `cancel`, and `stop` waits for them.
    followers: JoinSet<()>,
    /// The supervisor's event pump: it ends once the supervisor is gone, and `stop` waits for it.
    pump: JoinHandle<()>,
    /// Node ids hit by the last fault that hit nodes (`previous` targets).
    pub previous: Vec<i32>,
    /// The minority of the last split, until heal.
    pub minority: Vec<i32>,
    /// Who led what just before the last fault (what `leader_elected` compares with).
    pub before_fault: Option<super::view::ClusterView>,
    /// The Raft group the nodes record message by message (`raft_trace.rs`).
    pub raft_watch: WatchedGroup,
}

impl Run {
    pub async fn state(&self) -> LabState {
        let resources = self.resources.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let nodes: Vec<NodeView> = self
            .supervisor
            .nodes()
            .into_iter()
            .map(|n| {
                let (cpu, mem, disk) = resources.get(&n.id).copied().unwrap_or_default();
                NodeView {
                    id: n.id,
                    state: serde_json::to_value(n.state)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    pid: n.pid,
                    kafka: n.kafka_advertised.to_string(),
                    http: n.http.to_string(),
                    cpu_percent: cpu,
                    memory_bytes: mem,
                    disk_bytes: disk,
                }
            })
            .collect();
        let details = futures::future::join_all(
            self.http_addrs().into_iter().map(|(id, addr)| async move { self.pager.fetch(id, addr).await }),
        )
        .await;
        let (raft, partitions) = details.into_iter().flatten().map(|d| (d.raft, d.partitions)).unzip();
        LabState {
            running: true,
            settings: Some(self.settings.clone()),
            bootstrap: Some(self.supervisor.bootstrap_servers()),
            nodes,
            raft,
            partitions,
            links: self.supervisor.fabric().links(),
            workload: None,
            drill: None,
            timeline_len: 0,
            raft_watch: self.raft_watch.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }

    /// Stops every node; once they all stopped, deletes their data dirs (the run's timeline is
    /// what the recent runs keep; 250 kept node dirs had grown to 565 MB on one machine). After
    /// an unclean stop the data stays for a post-mortem. Returns once the run's tasks have ended,
    /// every event of its nodes on the timeline.
    pub async fn stop(self) {
        let Run { supervisor, cancel, mut followers, pump, .. } = self;
        let dir = supervisor.run_dir().to_path_buf();
        match supervisor.shutdown().await {
            Ok(()) => {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not delete the stopped cluster's data");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cluster did not stop cleanly; its data is kept")
            }
        }
        cancel.cancel();
        crate::tasks::join_all(&mut followers, "the run's node followers").await;
        drop(supervisor);
        crate::tasks::join(pump, "the supervisor's event pump").await;
    }

    /// Node ids with their telemetry address.
    pub fn http_addrs(&self) -> Vec<(i32, std::net::SocketAddr)> {
        self.supervisor.nodes().iter().map(|n| (n.id, n.http)).collect()
    }
}

pub fn supervisor_config(lab: &Lab, s: &ClusterSettings) -> SupervisorConfig {
    let mut c = SupervisorConfig::new(lab.config.broker_bin.clone());
    c.nodes = s.nodes;
    c.data_root = lab.config.data_root.clone().map(|r| r.join(format!("run-{}", now_ns())));
    c.fsync = s.fsync.clone();
    c.election_timeout_ms = (s.election_timeout_min_ms, s.election_timeout_max_ms);
    c.heartbeat_ms = s.heartbeat_ms;
    c.replication_factor = s.replication_factor;
    c.default_partitions = s.partitions;
    c
}

/// Supervisor events onto the timeline (and resource samples into the run's table), until the
/// supervisor and its nodes' output threads, the senders, are all gone.
async fn pump_supervisor(
    timeline: Arc<Timeline>,
    resources: Resources,
    mut rx: mpsc::UnboundedReceiver<SupervisorEvent>,
) {
    while let Some(e) = rx.recv().await {
        let now = now_ns();
        match e {
            SupervisorEvent::Log { node, stream, line } => {
                timeline.append(
                    Source::Node(node),
                    now,
                    EventKind::Log { stream: format!("{stream:?}").to_lowercase(), line },
                );
            }
            SupervisorEvent::Process { node, state, pid, detail } => {
                let state = match state {
                    ProcessState::Started => ProcessPhase::Started,
                    ProcessState::Ready => ProcessPhase::Ready,
                    ProcessState::Exited => ProcessPhase::Exited,
                    ProcessState::Died => ProcessPhase::Died,
                };
                timeline.append(
                    Source::Node(node),
                    now,
                    EventKind::Process { state, pid: Some(pid), detail: Some(detail) },
                );
            }
            SupervisorEvent::Resources { node, cpu_percent, memory_bytes, disk_bytes, node_memory } => {
                resources
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(node, (cpu_percent, memory_bytes, disk_bytes));
                timeline.append(
                    Source::Node(node),
                    now,
                    EventKind::Resources { cpu_percent, memory_bytes, disk_bytes, node_memory },
                );
            }
        }
    }
}

/// Every node's telemetry stream onto the timeline, reconnecting across restarts; one task per
/// node in `followers`, each ending when `cancel` is cancelled (the run stops).
fn follow_nodes(
    timeline: &Arc<Timeline>,
    nodes: &[(i32, std::net::SocketAddr)],
    cancel: &CancellationToken,
    followers: &mut JoinSet<()>,
) {
    for (id, addr) in nodes {
        let (id, addr) = (*id, *addr);
        let t = Arc::clone(timeline);
        let t2 = Arc::clone(timeline);
        followers.spawn(node_client::events::follow(
            addr,
            cancel.clone(),
            move |v| {
                let (ts, node, kind) = node_client::events::to_timeline(v);
                t.append(Source::Node(if node >= 0 { node } else { id }), ts, kind);
            },
            move |reason| {
                tracing::debug!(node_id = id, %reason, "telemetry stream interrupted");
                let _ = &t2;
            },
        ));
    }
}

/// A cluster laid out, not yet the lab's run (drills take ports before starting it), with the
/// task pumping its supervisor's events: [`Lab::install_run`] makes it the run, or
/// [`Prepared::discard`] drops it.
pub(crate) struct Prepared {
    pub supervisor: Supervisor,
    resources: Resources,
    pump: JoinHandle<()>,
}

impl Prepared {
    /// Drops a cluster that will not run (killing any node it started), and waits until the
    /// last of its events are on the timeline.
    pub(crate) async fn discard(self) {
        drop(self.supervisor);
        crate::tasks::join(self.pump, "the supervisor's event pump").await;
    }
}

impl Lab {
    /// Starts a cluster with `settings`; answers its bootstrap servers once every node is ready.
    pub async fn start_cluster(&self, settings: ClusterSettings) -> Result<String, LabFailure> {
        if self.run.lock().await.is_some() {
            return Err(LabFailure::new("already_running", "a cluster is already running: stop it first"));
        }
        if settings.pre_vote {
            return Err(LabFailure::new(
                "bad_request",
                "pre-vote is not available: openraft 0.9 has none, and the broker refuses \
                 cluster.pre_vote = true",
            ));
        }
        self.remember_settings(&settings);
        // Recorded from here: a start that fails (a taken port, a bad binary) is a run too.
        self.begin_recording(self.timeline.next_seq(), RunKind::Cluster, "cluster", &settings).await;
        let prepared = match self.prepare_and_start(&settings).await {
            Ok(prepared) => prepared,
            Err(e) => {
                let outcome = RunOutcome {
                    ok: Some(false),
                    summary: Some(format!("start failed: {}", e.message)),
                    verdict: None,
                };
                self.end_recording(Some(RunKind::Cluster), outcome).await;
                return Err(e);
            }
        };
        let bootstrap = prepared.supervisor.bootstrap_servers();
        self.install_run(settings, prepared).await;
        self.note(EventKind::Process {
            state: ProcessPhase::ClusterStarted,
            pid: None,
            detail: Some(bootstrap.clone()),
        });
        Ok(bootstrap)
    }

    /// A prepared cluster with every node started; one that fails to start is discarded.
    async fn prepare_and_start(&self, settings: &ClusterSettings) -> Result<Prepared, LabFailure> {
        let prepared = self.prepare(settings).await?;
        match prepared.supervisor.start_all().await {
            Ok(()) => Ok(prepared),
            Err(e) => {
                prepared.discard().await;
                Err(LabFailure::new("start_failed", e.to_string()))
            }
        }
    }

    /// A supervisor with its event pump, not yet started (drills take ports before starting).
    pub(crate) async fn prepare(&self, settings: &ClusterSettings) -> Result<Prepared, LabFailure> {
        let (tx, rx) = mpsc::unbounded_channel();
        let supervisor = Supervisor::new(supervisor_config(self, settings), tx)
            .await
            .map_err(|e| LabFailure::new("start_failed", e.to_string()))?;
        let resources: Resources = Arc::default();
        let pump = tokio::spawn(pump_supervisor(Arc::clone(&self.timeline), Arc::clone(&resources), rx));
        Ok(Prepared { supervisor, resources, pump })
    }

    /// Makes a prepared (and started) cluster the lab's run, and starts following its nodes.
    pub(crate) async fn install_run(&self, settings: ClusterSettings, prepared: Prepared) {
        let Prepared { supervisor, resources, pump } = prepared;
        let mut r = Run {
            settings,
            supervisor,
            resources,
            pager: Pager::default(),
            cancel: CancellationToken::new(),
            followers: JoinSet::new(),
            pump,
            previous: Vec::new(),
            minority: Vec::new(),
            before_fault: None,
            raft_watch: Arc::new(Mutex::new(Some("controller".to_string()))),
        };
        follow_nodes(&self.timeline, &r.http_addrs(), &r.cancel, &mut r.followers);
        r.followers.spawn(super::raft_trace::follow(
            Arc::clone(&self.timeline),
            r.http_addrs(),
            Arc::clone(&r.raft_watch),
            r.cancel.clone(),
        ));
        *self.run.lock().await = Some(r);
    }

    pub async fn stop_cluster(&self) -> Result<(), LabFailure> {
        if let Some(w) = self.workload.lock().await.take() {
            w.finish().await;
        }
        match self.run.lock().await.take() {
            Some(run) => {
                run.stop().await;
                self.note(EventKind::Process {
                    state: ProcessPhase::ClusterStopped,
                    pid: None,
                    detail: None,
                });
                self.end_recording(Some(RunKind::Cluster), RunOutcome::default()).await;
                Ok(())
            }
            None => Err(LabFailure::new("not_running", "no cluster is running")),
        }
    }

    /// Makes every node record `group`'s messages in full (`None`: no group's); answers the
    /// group's name. Nodes that do not answer now are told by the next poll.
    pub async fn watch_raft_group(&self, group: Option<String>) -> Result<Option<String>, LabFailure> {
        if let Some(g) = &group {
            if let Err(why) = g.parse::<broker::telemetry::wire::GroupId>() {
                return Err(LabFailure::new("bad_request", why));
            }
        }
        let run = self.run.lock().await;
        let run = run.as_ref().ok_or_else(|| LabFailure::new("not_running", "start the cluster first"))?;
        *run.raft_watch.lock().unwrap_or_else(|p| p.into_inner()) = group.clone();
        let calls = run.http_addrs().into_iter().map(|(_, addr)| {
            let group = group.as_deref();
            async move { node_client::typed::watch_group(addr, group).await }
        });
        futures::future::join_all(calls).await;
        Ok(group)
    }

    /// Starts a free-running workload (the workload panel's start button).
    pub async fn start_workload(
        &self,
        rate_per_sec: Option<u32>,
        messages: Option<u64>,
    ) -> Result<(), LabFailure> {
        let run = self.run.lock().await;
        let run = run.as_ref().ok_or_else(|| LabFailure::new("not_running", "start the cluster first"))?;
        let mut slot = self.workload.lock().await;
        if slot.is_some() {
            return Err(LabFailure::new("already_running", "a workload is already running"));
        }
        let config = crate::workload::WorkloadConfig {
            bootstrap: run.supervisor.bootstrap_servers(),
            topic: "lab".into(),
            messages: messages.unwrap_or(1_000_000),
            rate_per_sec: rate_per_sec.or(Some(200)),
            duration: Duration::from_secs(3600),
            acks: run.settings.acks.clone(),
            idempotence: run.settings.idempotence,
            ..Default::default()
        };
        let timeline = Arc::clone(&self.timeline);
        let listener: crate::workload::OpListener = Arc::new(move |op| {
            timeline.append(Source::Client(op.process), op.time_ns, EventKind::Client { op: op.clone() });
        });
        *slot = Some(
            crate::workload::Workload::start(config, Some(listener), false)
                .map_err(|e| LabFailure::new("bad_request", e.to_string()))?,
        );
        Ok(())
    }

    /// Stops the workload and checks its history (without a final read: a live sanity check).
    pub async fn stop_workload(&self) -> Result<serde_json::Value, LabFailure> {
        let w = self
            .workload
            .lock()
            .await
            .take()
            .ok_or_else(|| LabFailure::new("not_running", "no workload is running"))?;
        let history = w.finish().await;
        let verdict = crate::checker::check(&history, &[], &crate::checker::CheckOptions::default());
        self.note(EventKind::Verdict { ok: verdict.ok, summary: verdict.summary.clone() });
        Ok(serde_json::to_value(&verdict).unwrap_or_default())
    }
}
