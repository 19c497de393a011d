//! The lab's memory between starts: every run recorded into the recent-runs store, and the
//! preferences (last cluster settings, UI preferences, the store's cap).
//!
//! A cluster run is recorded from "start cluster" to "stop cluster"; a drill run from its first
//! step to its verdict. A lab without a store or a preferences file (tests, benchmarks) records
//! and remembers nothing.

use std::path::Path;

use serde_json::json;

use super::protocol::LabFailure;
use super::Lab;
use crate::prefs::{Preferences, PreferencesPatch};
use crate::runs::recorder::RunOutcome;
use crate::runs::{Recording, RunKind};

fn failure(code: &str) -> impl Fn(crate::LabError) -> LabFailure + '_ {
    move |e| LabFailure::new(code, e.to_string())
}

impl Lab {
    /// Starts recording a run from timeline event `first_seq` on; a run still recorded is
    /// finished first. Failing to record is logged, never fatal to the run itself.
    pub(crate) async fn begin_recording(
        &self,
        first_seq: u64,
        kind: RunKind,
        title: &str,
        settings: &super::protocol::ClusterSettings,
    ) {
        self.end_recording(None, RunOutcome::default()).await;
        let Some(store) = &self.runs else { return };
        let settings = serde_json::to_value(settings).ok();
        match Recording::start(store, std::sync::Arc::clone(&self.timeline), first_seq, kind, title, settings)
        {
            Ok(r) => {
                *self.recording.lock().await = Some(r);
                self.runs_changed();
            }
            Err(e) => tracing::warn!(error = %e, "this run is not recorded"),
        }
    }

    /// Finishes the run being recorded (only if it is of `kind`, when given), then prunes the
    /// store to its cap.
    pub(crate) async fn end_recording(&self, kind: Option<RunKind>, outcome: RunOutcome) {
        let mut slot = self.recording.lock().await;
        if slot.as_ref().is_none_or(|r| kind.is_some_and(|k| r.kind() != k)) {
            return;
        }
        let Some(recording) = slot.take() else { return };
        drop(slot);
        let meta = recording.finish(outcome).await;
        tracing::info!(run = %meta.id, events = meta.events, "run recorded");
        if let Some(store) = &self.runs {
            let cap = self.preferences().runs_cap_mb.saturating_mul(1 << 20);
            if let Err(e) = store.prune(cap) {
                tracing::warn!(error = %e, "could not prune the recent runs");
            }
        }
        self.runs_changed();
    }

    /// Tells front ends to list the runs again (nobody listening is fine).
    fn runs_changed(&self) {
        let _ = self.events.send(super::protocol::LabEvent::RunsChanged);
    }

    /// The remembered preferences (defaults when the lab keeps none).
    pub fn preferences(&self) -> Preferences {
        self.prefs.as_ref().map(|p| p.load()).unwrap_or_default()
    }

    pub(crate) fn update_preferences(&self, patch: PreferencesPatch) -> Result<Preferences, LabFailure> {
        match &self.prefs {
            Some(file) => file.update(patch).map_err(failure("bad_request")),
            None => {
                let mut p = Preferences::default();
                p.apply(patch).map_err(failure("bad_request"))?;
                Ok(p)
            }
        }
    }

    /// Remembers the settings a cluster was started with.
    pub(crate) fn remember_settings(&self, settings: &super::protocol::ClusterSettings) {
        let patch = PreferencesPatch { cluster: serde_json::to_value(settings).ok(), ..Default::default() };
        if let Err(e) = self.update_preferences(patch) {
            tracing::warn!(error = %e.message, "could not remember the cluster settings");
        }
    }

    fn store(&self) -> Result<&crate::runs::RunStore, LabFailure> {
        self.runs.as_ref().ok_or_else(|| LabFailure::new("not_available", "this lab keeps no recent runs"))
    }

    /// The recent runs, newest first, with the store's size and cap.
    pub(crate) fn list_runs(&self) -> Result<serde_json::Value, LabFailure> {
        let store = self.store()?;
        let runs = store.list().map_err(failure("io"))?;
        let bytes = store.total_bytes().map_err(failure("io"))?;
        Ok(
            json!({ "runs": runs, "bytes": bytes, "cap_mb": self.preferences().runs_cap_mb, "dir": store.root() }),
        )
    }

    /// One run's summary and its timeline as JSON Lines (the UI replays it like an import).
    pub(crate) fn open_run(&self, id: &str) -> Result<serde_json::Value, LabFailure> {
        let store = self.store()?;
        let meta = store.get(id).map_err(failure("bad_request"))?;
        let jsonl = store.timeline_text(&meta).map_err(failure("io"))?;
        Ok(json!({ "run": meta, "jsonl": jsonl }))
    }

    pub(crate) fn export_run(
        &self,
        id: &str,
        format: &str,
        dir: &Path,
    ) -> Result<serde_json::Value, LabFailure> {
        let store = self.store()?;
        let dir = std::path::absolute(dir).map_err(|e| LabFailure::new("export_failed", e.to_string()))?;
        let files = super::export::write_run(store, id, format, &dir).map_err(failure("export_failed"))?;
        Ok(json!({ "files": files }))
    }

    pub(crate) fn delete_run(&self, id: &str) -> Result<serde_json::Value, LabFailure> {
        let meta = self.store()?.delete(id).map_err(failure("bad_request"))?;
        self.runs_changed();
        Ok(json!({ "deleted": meta.id }))
    }
}
