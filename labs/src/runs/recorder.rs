//! Recording one run: its timeline events appended to `timeline.jsonl` as they happen.
//!
//! The recorder reads the lab's timeline with `since` (lossless, unlike the live broadcast, which
//! a slow reader may lag behind) once a second, appends the new events and rewrites `run.json`
//! with the counts, so that a crash loses at most the last second. `finish` writes the verdict.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::{write_meta, RunKind, RunMeta, RunStatus, RunStore, TIMELINE};
use crate::error::LabError;
use crate::timeline::{EventKind, Timeline};

/// How often new events reach the file.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// A run being recorded; call `finish` when it ends.
pub struct Recording {
    meta: Arc<Mutex<RunMeta>>,
    dir: PathBuf,
    stop: CancellationToken,
    /// The pump: stopped and awaited by `finish`.
    task: tokio::task::JoinHandle<()>,
    /// A recording dropped without `finish` (its lab dropped mid-run) still stops its pump, which
    /// then appends the last events and ends.
    _stop_on_drop: tokio_util::sync::DropGuard,
}

/// What the run came to, for its summary.
#[derive(Debug, Clone, Default)]
pub struct RunOutcome {
    pub ok: Option<bool>,
    pub summary: Option<String>,
    pub verdict: Option<serde_json::Value>,
}

impl Recording {
    /// Starts recording `timeline` from event `first_seq` on (inclusive) as a new run.
    pub fn start(
        store: &RunStore,
        timeline: Arc<Timeline>,
        first_seq: u64,
        kind: RunKind,
        title: &str,
        settings: Option<serde_json::Value>,
    ) -> Result<Recording, LabError> {
        let now = SystemTime::now();
        let id = run_id(now, kind, title);
        let dir = store.root().join(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|source| LabError::Io { what: format!("creating {}", dir.display()), source })?;
        let meta = RunMeta {
            id,
            kind,
            title: title.to_string(),
            started_ms: millis(now),
            ended_ms: None,
            status: RunStatus::Recording,
            pid: std::process::id(),
            settings,
            ok: None,
            summary: None,
            verdict: None,
            events: 0,
            bytes: 0,
        };
        write_meta(&dir, &meta)?;
        let path = dir.join(TIMELINE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| LabError::Io { what: format!("opening {}", path.display()), source })?;
        tracing::info!(run = %meta.id, dir = %dir.display(), "recording the run");
        let meta = Arc::new(Mutex::new(meta));
        let stop = CancellationToken::new();
        let task =
            tokio::spawn(pump(timeline, first_seq, file, dir.clone(), Arc::clone(&meta), stop.clone()));
        Ok(Recording { meta, dir, _stop_on_drop: stop.clone().drop_guard(), stop, task })
    }

    pub fn id(&self) -> String {
        lock(&self.meta).id.clone()
    }

    pub fn kind(&self) -> RunKind {
        lock(&self.meta).kind
    }

    /// Writes the last events and the outcome; a cluster run without one takes the last verdict
    /// seen on its timeline (e.g. the workload's, when it was stopped).
    pub async fn finish(self, outcome: RunOutcome) -> RunMeta {
        self.stop.cancel();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "the run recorder ended abnormally");
        }
        let mut meta = lock(&self.meta).clone();
        meta.ended_ms = Some(millis(SystemTime::now()));
        meta.status = RunStatus::Complete;
        if outcome.ok.is_some() {
            meta.ok = outcome.ok;
            meta.summary = outcome.summary;
        }
        meta.verdict = outcome.verdict.or(meta.verdict);
        if let Err(e) = write_meta(&self.dir, &meta) {
            tracing::warn!(run = %meta.id, error = %e, "could not write the run's summary");
        }
        meta
    }
}

/// Appends new events every `FLUSH_EVERY` until stopped, then once more.
async fn pump(
    timeline: Arc<Timeline>,
    first_seq: u64,
    mut file: std::fs::File,
    dir: PathBuf,
    meta: Arc<Mutex<RunMeta>>,
    stop: CancellationToken,
) {
    let mut last = first_seq.checked_sub(1);
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(FLUSH_EVERY) => false,
        };
        let events = timeline.since(last);
        if !events.is_empty() {
            let mut buf = Vec::new();
            let mut verdict = None;
            for e in &events {
                if let Ok(line) = serde_json::to_vec(e) {
                    buf.extend_from_slice(&line);
                    buf.push(b'\n');
                }
                if let EventKind::Verdict { ok, summary } = &e.kind {
                    verdict = Some((*ok, summary.clone()));
                }
            }
            last = events.last().map(|e| e.seq);
            match file.write_all(&buf) {
                Ok(()) => {
                    let snapshot = {
                        let mut m = lock(&meta);
                        m.events += events.len() as u64;
                        m.bytes += buf.len() as u64;
                        if let Some((ok, summary)) = verdict {
                            m.ok = Some(ok);
                            m.summary = Some(summary);
                        }
                        m.clone()
                    };
                    if let Err(e) = write_meta(&dir, &snapshot) {
                        tracing::warn!(error = %e, "could not update the run's summary");
                    }
                }
                // A full disk must not stop the lab: the run stays as far as it got.
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not append to the run's timeline")
                }
            }
        }
        if stopping {
            return;
        }
    }
}

fn lock(m: &Mutex<RunMeta>) -> std::sync::MutexGuard<'_, RunMeta> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `20261204-060312123-drill-bridge` (date, time with milliseconds, kind, name): sorts by time.
fn run_id(now: SystemTime, kind: RunKind, title: &str) -> String {
    let stamp: String =
        humantime::format_rfc3339_millis(now).to_string().chars().filter(|c| c.is_ascii_digit()).collect();
    let name: String = title
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let kind = match kind {
        RunKind::Cluster => "cluster",
        RunKind::Drill => "drill",
        RunKind::Lesson => "lesson",
    };
    // stamp: YYYYmmddHHMMSSmmm
    let at = format!("{}-{}", &stamp[..8], &stamp[8..]);
    if name == kind {
        format!("{at}-{kind}")
    } else {
        format!("{at}-{kind}-{name}")
    }
}
