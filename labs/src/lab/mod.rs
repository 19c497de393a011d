//! The lab: one object that owns a cluster, its links, the workload, the timeline and drills.
//!
//! - `protocol` — the command/event vocabulary spoken by every front end.
//! - `view`     — who leads what, read from the nodes' `/state`.
//! - `detail`   — which groups and partitions each state snapshot carries, at any count.
//! - `cluster`  — starting and stopping the supervised cluster and pumping its events.
//! - `faults`   — role targets resolved to nodes, and faults applied.
//! - `raft_trace` — the nodes' RPC-level Raft telemetry onto the timeline, one batch per poll.
//! - `drill_run`— executing a drill: setup, workload, timed steps, waits, checking.
//! - `drill_support` — a drill's settings, clients aimed at roles, terms, digests, recovery.
//! - `waits`    — a wait step's conditions, polled against the cluster.
//! - `lesson`   — guided lessons run as drills: the catalog, the learner's gate, Next.
//! - `raft_expect` — the `[expect]` keys over the watched group's Raft trace.
//! - `chaos_run`— a seeded chaos schedule run as a drill (`crate::chaos` draws it).
//! - `export`   — writing the timeline in every format.
//! - `recent`   — recording every run into the recent-runs store; remembered preferences.
//!
//! Front ends call `handle(Command)` and `subscribe()`; the CLI calls the same methods directly.

pub mod chaos_run;
pub mod cluster;
pub mod detail;
mod drill_phases;
pub mod drill_run;
mod drill_support;
pub mod export;
pub mod faults;
pub mod lesson;
pub mod protocol;
pub mod raft_expect;
pub mod raft_trace;
pub mod recent;
pub mod ts_export;
pub mod view;
mod waits;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::broadcast;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::timeline::{EventKind, Source, Timeline};
use crate::workload::Workload;
use cluster::Run;
use protocol::{Command, DrillProgress, LabEvent, LabFailure, LabState};

/// Where the lab finds and puts things.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub broker_bin: PathBuf,
    /// Node data dirs; None = the platform data dir.
    pub data_root: Option<PathBuf>,
    pub drills_dir: PathBuf,
    /// The guided lessons (`paths::lessons_dir`).
    pub lessons_dir: PathBuf,
    /// Default directory for exports.
    pub export_dir: PathBuf,
    /// The recent-runs store (`paths::recent_runs_dir`); None records no runs.
    pub runs_dir: Option<PathBuf>,
    /// The preferences file (`paths::preferences_file`); None remembers nothing.
    pub preferences_file: Option<PathBuf>,
}

impl LabConfig {
    /// The tests' lab: the test broker, everything under `root`, nothing remembered.
    #[cfg(test)]
    pub(crate) fn for_tests(root: &std::path::Path) -> LabConfig {
        LabConfig {
            broker_bin: crate::supervisor::tests_broker_bin(),
            data_root: Some(root.join("data")),
            drills_dir: root.join("drills"),
            lessons_dir: root.join("lessons"),
            export_dir: root.join("export"),
            runs_dir: None,
            preferences_file: None,
        }
    }

    /// A lab that records its runs and remembers its preferences in the user's platform dirs,
    /// or, given a private `data_root` (tests, one-off labs), under that.
    pub fn remembering(mut self) -> LabConfig {
        let root = self.data_root.as_deref();
        self.runs_dir = Some(crate::paths::recent_runs_dir(root));
        self.preferences_file = Some(crate::paths::preferences_file(root));
        self
    }
}

/// Events kept for slow front ends before they skip ahead to the next state snapshot.
const EVENT_BUFFER: usize = 8192;
/// A chaos run from the window: long enough for a few episodes, short enough to watch.
const MIN_CHAOS_MS: u64 = 10_000;
const MAX_CHAOS_MS: u64 = 600_000;
/// Topics a chaos run from the window may write (the CLI allows as many).
const MAX_CHAOS_TOPICS: u32 = 16;
/// How often running front ends get a full state snapshot.
const STATE_EVERY: Duration = Duration::from_millis(500);

pub struct Lab {
    pub config: LabConfig,
    pub timeline: Arc<Timeline>,
    events: broadcast::Sender<LabEvent>,
    run: tokio::sync::Mutex<Option<Run>>,
    workload: tokio::sync::Mutex<Option<Workload>>,
    drill: Mutex<Option<DrillProgress>>,
    /// Where an interactive lesson's step waits for the learner.
    gate: lesson::Gate,
    shutdown: CancellationToken,
    /// Drills, lessons and chaos runs started by a command: they run in the background (the
    /// command answers at once) and `close` ends them before it stops the cluster.
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The timeline and state forwarders (`spawn_forwarders`): `close` ends them and waits.
    forwarders: Mutex<JoinSet<()>>,
    runs: Option<crate::runs::RunStore>,
    prefs: Option<crate::prefs::PreferencesFile>,
    recording: tokio::sync::Mutex<Option<crate::runs::Recording>>,
}

impl Lab {
    pub fn new(config: LabConfig) -> Arc<Lab> {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let runs = config.runs_dir.clone().map(crate::runs::RunStore::new);
        let prefs = config.preferences_file.clone().map(crate::prefs::PreferencesFile::new);
        let lab = Arc::new(Lab {
            config,
            timeline: Arc::new(Timeline::new()),
            events,
            run: tokio::sync::Mutex::new(None),
            workload: tokio::sync::Mutex::new(None),
            drill: Mutex::new(None),
            gate: lesson::Gate::default(),
            shutdown: CancellationToken::new(),
            background: Mutex::new(Vec::new()),
            forwarders: Mutex::new(JoinSet::new()),
            runs,
            prefs,
            recording: tokio::sync::Mutex::new(None),
        });
        lab.spawn_forwarders();
        lab
    }

    /// Timeline entries become protocol events; running labs also send periodic snapshots.
    /// Both tasks end when `close` cancels the shutdown token (or the lab is gone), and `close`
    /// waits for them.
    fn spawn_forwarders(self: &Arc<Self>) {
        let mut forwarders = self.forwarders.lock().unwrap_or_else(|p| p.into_inner());
        let mut rx = self.timeline.subscribe();
        let events = self.events.clone();
        let stop = self.shutdown.clone();
        forwarders.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    e = rx.recv() => match e {
                        Ok(entry) => { let _ = events.send(LabEvent::Timeline { entry: (*entry).clone() }); }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(_) => return,
                    }
                }
            }
        });
        let weak = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        forwarders.spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(STATE_EVERY) => {}
                }
                let Some(lab) = weak.upgrade() else { return };
                if lab.events.receiver_count() > 0 && lab.run.lock().await.is_some() {
                    let state = lab.state().await;
                    let _ = lab.events.send(LabEvent::State { state: Box::new(state) });
                }
            }
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LabEvent> {
        self.events.subscribe()
    }

    /// A note on the timeline from the lab itself.
    pub fn note(&self, kind: EventKind) -> u64 {
        self.timeline.append(Source::Lab, crate::history::now_ns(), kind)
    }

    pub(crate) fn set_drill(&self, progress: Option<DrillProgress>) {
        *self.drill.lock().unwrap_or_else(|p| p.into_inner()) = progress;
    }

    /// Changes the running drill's or lesson's progress in place (nothing when none runs).
    pub(crate) fn update_progress(&self, change: impl FnOnce(&mut DrillProgress)) {
        if let Some(p) = self.drill.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            change(p);
        }
    }

    /// Runs one command.
    pub async fn handle(self: &Arc<Self>, command: Command) -> Result<serde_json::Value, LabFailure> {
        match command {
            Command::StartCluster { settings } => {
                self.start_cluster(settings).await.map(|b| json!({ "bootstrap": b }))
            }
            Command::StopCluster => self.stop_cluster().await.map(|()| json!({})),
            Command::Fault { fault, target, param } => {
                self.fault(&fault, &target, param).await.map(|nodes| json!({ "nodes": nodes }))
            }
            Command::CutLink { from, to, both } => self.cut_link(from, to, both).await.map(|()| json!({})),
            Command::HealLink { from, to } => self.heal_link(from, to).await.map(|()| json!({})),
            Command::HealAll => self.heal_all().await.map(|()| json!({})),
            Command::StartWorkload { rate_per_sec, messages } => {
                self.start_workload(rate_per_sec, messages).await.map(|()| json!({}))
            }
            Command::StopWorkload => self.stop_workload().await.map(|v| json!({ "verdict": v })),
            Command::ListDrills => self.list_drills().map(|d| json!(d)),
            Command::RunDrill { name, seed } => self.start_drill(name, seed),
            Command::ListLessons => self.list_lessons().map(|l| json!(l)),
            Command::RunLesson { name } => self.start_lesson(name),
            Command::LessonNext => self.lesson_next().map(|()| json!({})),
            Command::RunChaos { seed, duration_ms, faults, topics } => {
                self.start_chaos(seed, duration_ms, faults.as_deref(), topics)
            }
            Command::Export { format, dir } => {
                let dir = dir.map(PathBuf::from).unwrap_or_else(|| self.config.export_dir.clone());
                self.export(&format, &dir).map(|files| json!({ "files": files }))
            }
            Command::ImportTimeline { jsonl } => self.import(&jsonl).map(|n| json!({ "events": n })),
            Command::Snapshot => Ok(json!(self.state().await)),
            Command::WatchRaftGroup { group } => {
                self.watch_raft_group(group).await.map(|g| json!({ "group": g }))
            }
            Command::GetPreferences => Ok(json!(self.preferences())),
            Command::SetPreferences { patch } => self.update_preferences(patch).map(|p| json!(p)),
            Command::ListRuns => self.list_runs(),
            Command::OpenRun { run } => self.open_run(&run),
            Command::ExportRun { run, format, dir } => {
                let dir = dir.map(PathBuf::from).unwrap_or_else(|| self.config.export_dir.join(&run));
                self.export_run(&run, &format, &dir)
            }
            Command::DeleteRun { run } => self.delete_run(&run),
        }
    }

    /// Starts drill `name` in the background: drills take seconds, so the command answers at
    /// once and progress comes as events.
    fn start_drill(
        self: &Arc<Self>,
        name: String,
        seed: Option<u64>,
    ) -> Result<serde_json::Value, LabFailure> {
        let lab = Arc::clone(self);
        self.spawn_run(format!("drill {name}"), async move {
            lab.run_drill(&name, seed, None).await.map(drop).map_err(|e| e.message)
        });
        Ok(json!({ "started": true }))
    }

    /// Starts lesson `name` in the background, once it is known to exist: a typo'd name is an
    /// error now, not a verdict later.
    fn start_lesson(self: &Arc<Self>, name: String) -> Result<serde_json::Value, LabFailure> {
        self.list_lessons()?
            .iter()
            .find(|l| l["name"] == name.as_str())
            .ok_or_else(|| LabFailure::new("bad_request", format!("no lesson named '{name}'")))?;
        let lab = Arc::clone(self);
        self.spawn_run(format!("lesson {name}"), async move {
            lab.run_lesson(&name, true).await.map(drop).map_err(|e| e.message)
        });
        Ok(json!({ "started": true }))
    }

    /// Starts a chaos run from the window in the background; answers its planned schedule.
    fn start_chaos(
        self: &Arc<Self>,
        seed: u64,
        duration_ms: u64,
        faults: Option<&str>,
        topics: Option<u32>,
    ) -> Result<serde_json::Value, LabFailure> {
        let opts = window_chaos_options(seed, duration_ms, faults, topics)?;
        let plan = crate::chaos::run::describe(&crate::chaos::run::planned(&opts));
        let lab = Arc::clone(self);
        self.spawn_run(format!("chaos seed {seed}"), async move {
            let save = lab.config.export_dir.clone();
            lab.run_chaos(&opts, None, &save).await.map(drop).map_err(|e| e.to_string())
        });
        Ok(json!({ "started": true, "schedule": plan }))
    }

    /// The whole lab now.
    pub async fn state(&self) -> LabState {
        let drill = self.drill.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let workload = self.workload.lock().await.as_ref().map(|w| w.counters());
        let mut state = match self.run.lock().await.as_ref() {
            Some(run) => run.state().await,
            None => LabState::default(),
        };
        state.workload = workload;
        state.drill = drill;
        state.timeline_len = self.timeline.len() as u64;
        state
    }

    pub fn list_drills(&self) -> Result<Vec<serde_json::Value>, LabFailure> {
        let catalog = crate::drill::load_catalog(&self.config.drills_dir)
            .map_err(|e| LabFailure::new("bad_request", e.to_string()))?;
        Ok(catalog
            .iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "title": d.title,
                    "description": d.description,
                    "tags": d.tags,
                    "steps": d.steps.len()
                })
            })
            .collect())
    }

    fn import(&self, jsonl: &str) -> Result<usize, LabFailure> {
        let events = crate::timeline::export::jsonl::read_jsonl(std::io::Cursor::new(jsonl.as_bytes()))
            .map_err(|e| LabFailure::new("bad_request", e.to_string()))?;
        let n = events.len();
        for e in events {
            self.timeline.append(e.source, e.ts_ns, e.kind);
        }
        Ok(n)
    }

    /// Runs `run` in the background, owned by the lab; a failure to run becomes a verdict on
    /// the timeline.
    fn spawn_run(
        self: &Arc<Self>,
        what: String,
        run: impl std::future::Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let lab = Arc::clone(self);
        let handle = tokio::spawn(async move {
            if let Err(e) = run.await {
                lab.note(EventKind::Verdict { ok: false, summary: format!("{what} could not run: {e}") });
            }
        });
        let mut background = self.background.lock().unwrap_or_else(|p| p.into_inner());
        background.retain(|h| !h.is_finished());
        background.push(handle);
    }

    /// Stops everything the lab started; call before dropping it.
    pub async fn close(&self) {
        // A drill still running would go on driving a cluster that is being stopped.
        let background = std::mem::take(&mut *self.background.lock().unwrap_or_else(|p| p.into_inner()));
        for run in background {
            run.abort();
            let _ = run.await;
        }
        if let Some(w) = self.workload.lock().await.take() {
            w.finish().await;
        }
        if let Some(run) = self.run.lock().await.take() {
            run.stop().await;
        }
        self.end_recording(None, crate::runs::recorder::RunOutcome::default()).await;
        self.shutdown.cancel();
        let mut forwarders = std::mem::take(&mut *self.forwarders.lock().unwrap_or_else(|p| p.into_inner()));
        crate::tasks::join_all(&mut forwarders, "the lab's event forwarders").await;
    }
}

/// A chaos run's options as the window asks for it, within the window's bounds (longer soaks and
/// more topics are the CLI's).
fn window_chaos_options(
    seed: u64,
    duration_ms: u64,
    faults: Option<&str>,
    topics: Option<u32>,
) -> Result<crate::chaos::ChaosOptions, LabFailure> {
    let families = crate::chaos::parse_families(faults.unwrap_or("all"))
        .map_err(|e| LabFailure::new("bad_request", e))?;
    if !(MIN_CHAOS_MS..=MAX_CHAOS_MS).contains(&duration_ms) {
        return Err(LabFailure::new(
            "bad_request",
            format!("duration_ms must be {MIN_CHAOS_MS} to {MAX_CHAOS_MS} (longer soaks: clusterlab chaos)"),
        ));
    }
    let topics = topics.unwrap_or(1);
    if !(1..=MAX_CHAOS_TOPICS).contains(&topics) {
        return Err(LabFailure::new("bad_request", format!("topics must be 1 to {MAX_CHAOS_TOPICS}")));
    }
    Ok(crate::chaos::ChaosOptions { seed, duration_ms, families, topics, ..Default::default() })
}
