//! Recent runs: every cluster session, drill run and lesson kept on disk, to list, reopen, export and
//! delete later, from the window or with `clusterlab runs`.
//!
//! One directory per run under the store's root: `run.json` (a `RunMeta`) and `timeline.jsonl`
//! (the run's timeline events, appended while it runs by a `recorder::Recording`). A run whose
//! recorder died with its process (the app crashed, was SIGKILLed) still says `recording` on
//! disk; it is shown as `interrupted`, with every event that reached the file.
//!
//! The store has a size cap: when a run ends, the oldest runs go first until the rest fit.

pub mod recorder;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::timeline::TimelineEvent;

pub use recorder::Recording;

/// The file of a run's summary, and of its events.
const META: &str = "run.json";
const TIMELINE: &str = "timeline.jsonl";

/// What a run was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// A cluster started by hand (window, `clusterlab up`), until it was stopped.
    Cluster,
    /// One drill run.
    Drill,
    /// One guided lesson (a drill that waits for the learner).
    Lesson,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Its recorder is writing it now.
    Recording,
    /// It ended and its summary was written.
    Complete,
    /// Its recorder's process ended without finishing it (a crash): events up to then are kept.
    Interrupted,
}

/// The summary of one run, as `run.json` holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct RunMeta {
    /// Time-ordered and unique: `YYYYmmdd-HHMMSS-<kind>-<name>`.
    pub id: String,
    pub kind: RunKind,
    /// The drill's name, or "cluster".
    pub title: String,
    pub started_ms: u64,
    #[serde(default)]
    pub ended_ms: Option<u64>,
    pub status: RunStatus,
    /// The process that records it (to tell a crash from a run still going).
    pub pid: u32,
    /// The cluster settings it ran with (as JSON: a run recorded by an older lab may hold
    /// settings this one no longer reads).
    #[serde(default)]
    #[ts(type = "ClusterSettings | null")]
    pub settings: Option<serde_json::Value>,
    /// The verdict: passed or not, in one line, and the checker's full verdict if there was one.
    #[serde(default)]
    pub ok: Option<bool>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    #[ts(type = "unknown")]
    pub verdict: Option<serde_json::Value>,
    /// Events and bytes of `timeline.jsonl` so far.
    #[serde(default)]
    pub events: u64,
    #[serde(default)]
    pub bytes: u64,
}

/// The recent runs under one directory.
#[derive(Debug, Clone)]
pub struct RunStore {
    root: PathBuf,
}

impl RunStore {
    pub fn new(root: impl Into<PathBuf>) -> RunStore {
        RunStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every run, newest first. A directory without a readable `run.json` is skipped with a
    /// warning (it is not ours to delete).
    pub fn list(&self) -> Result<Vec<RunMeta>, LabError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(LabError::Io { what: format!("listing {}", self.root.display()), source })
            }
        };
        let mut runs: Vec<RunMeta> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| match read_meta(&e.path()) {
                Ok(m) => Some(m),
                Err(err) => {
                    tracing::warn!(dir = %e.path().display(), error = %err, "not a recorded run; skipped");
                    None
                }
            })
            .map(with_liveness)
            .collect();
        runs.sort_by(|a, b| b.started_ms.cmp(&a.started_ms).then_with(|| b.id.cmp(&a.id)));
        Ok(runs)
    }

    /// One run's summary; `id` may be a unique prefix (as `git` takes hashes).
    pub fn get(&self, id: &str) -> Result<RunMeta, LabError> {
        let runs = self.list()?;
        let exact: Vec<&RunMeta> = runs.iter().filter(|r| r.id == id).collect();
        let matches: Vec<&RunMeta> =
            if exact.is_empty() { runs.iter().filter(|r| r.id.starts_with(id)).collect() } else { exact };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(LabError::InvalidArgument {
                what: "run id",
                detail: format!("no run {id:?} in {} (see `clusterlab runs list`)", self.root.display()),
            }),
            many => Err(LabError::InvalidArgument {
                what: "run id",
                detail: format!(
                    "{id:?} matches {} runs: {}",
                    many.len(),
                    many.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }),
        }
    }

    /// A run's events. A run cut short by a crash may end in a half-written line: that line is
    /// left out (and said so in the log); a bad line anywhere else is an error with its number.
    pub fn events(&self, id: &str) -> Result<(RunMeta, Vec<TimelineEvent>), LabError> {
        let meta = self.get(id)?;
        let text = self.timeline_text(&meta)?;
        let mut lines: Vec<&str> = text.lines().collect();
        if !text.ends_with('\n')
            && lines.last().is_some_and(|l| serde_json::from_str::<TimelineEvent>(l).is_err())
        {
            tracing::warn!(
                run = %meta.id,
                "the last line of the timeline is incomplete (the run was cut short); left out"
            );
            lines.pop();
        }
        let joined = lines.join("\n");
        let events = crate::timeline::export::read_jsonl(std::io::Cursor::new(joined.as_bytes()))?;
        Ok((meta, events))
    }

    /// A run's `timeline.jsonl` as written (for the window's replay, which parses it itself).
    pub fn timeline_text(&self, meta: &RunMeta) -> Result<String, LabError> {
        let path = self.dir_of(&meta.id).join(TIMELINE);
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(LabError::Io { what: format!("reading {}", path.display()), source }),
        }
    }

    /// Deletes a run; refuses one that is still being recorded.
    pub fn delete(&self, id: &str) -> Result<RunMeta, LabError> {
        let meta = self.get(id)?;
        if meta.status == RunStatus::Recording {
            return Err(LabError::InvalidArgument {
                what: "run id",
                detail: format!("run {} is still being recorded (pid {}); stop it first", meta.id, meta.pid),
            });
        }
        let dir = self.dir_of(&meta.id);
        std::fs::remove_dir_all(&dir)
            .map_err(|source| LabError::Io { what: format!("deleting {}", dir.display()), source })?;
        Ok(meta)
    }

    /// Deletes the oldest finished runs until all runs take at most `cap_bytes`; answers the
    /// ids deleted. Runs being recorded are counted but never deleted.
    pub fn prune(&self, cap_bytes: u64) -> Result<Vec<String>, LabError> {
        let runs = self.list()?;
        let mut total: u64 = runs.iter().map(|r| dir_size(&self.dir_of(&r.id))).sum();
        let mut deleted = Vec::new();
        for run in runs.iter().rev() {
            if total <= cap_bytes {
                break;
            }
            if run.status == RunStatus::Recording {
                continue;
            }
            let dir = self.dir_of(&run.id);
            let size = dir_size(&dir);
            std::fs::remove_dir_all(&dir)
                .map_err(|source| LabError::Io { what: format!("pruning {}", dir.display()), source })?;
            tracing::info!(run = %run.id, bytes = size, cap_bytes, "recent runs over their cap: oldest deleted");
            total = total.saturating_sub(size);
            deleted.push(run.id.clone());
        }
        Ok(deleted)
    }

    /// Bytes on disk of every run.
    pub fn total_bytes(&self) -> Result<u64, LabError> {
        Ok(self.list()?.iter().map(|r| dir_size(&self.dir_of(&r.id))).sum())
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

fn read_meta(dir: &Path) -> Result<RunMeta, LabError> {
    let path = dir.join(META);
    let text = std::fs::read_to_string(&path)
        .map_err(|source| LabError::Io { what: format!("reading {}", path.display()), source })?;
    serde_json::from_str(&text)
        .map_err(|source| LabError::Json { what: format!("reading {}", path.display()), source })
}

/// Writes `run.json` whole or not at all (a crash mid-write leaves the previous one).
fn write_meta(dir: &Path, meta: &RunMeta) -> Result<(), LabError> {
    let tmp = dir.join(format!("{META}.tmp"));
    let text = serde_json::to_vec_pretty(meta)
        .map_err(|source| LabError::Json { what: format!("writing run {}", meta.id), source })?;
    std::fs::write(&tmp, text)
        .map_err(|source| LabError::Io { what: format!("writing {}", tmp.display()), source })?;
    std::fs::rename(&tmp, dir.join(META))
        .map_err(|source| LabError::Io { what: format!("writing {}", dir.join(META).display()), source })
}

/// A run that says `recording` but whose process is gone was interrupted.
fn with_liveness(mut meta: RunMeta) -> RunMeta {
    if meta.status == RunStatus::Recording && !process_alive(meta.pid) {
        meta.status = RunStatus::Interrupted;
    }
    meta
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    // Signal 0 checks existence only; EPERM means it exists but is not ours.
    // SAFETY: kill(2) with signal 0 sends nothing.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
