//! Preferences remembered between starts: the last cluster settings, the UI's own preferences
//! (theme, presentation mode, collapsed panels: the lab stores them without reading them) and
//! the recent-runs size cap. One JSON file in the config dir (`paths::preferences_file`).
//!
//! A file that cannot be read is not fatal and not lost: it is moved aside to
//! `preferences.json.unreadable`, the reason is logged, and the defaults apply.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LabError;

/// The default size cap of the recent runs.
pub const DEFAULT_RUNS_CAP_MB: u64 = 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// The settings of the last cluster started (the lab's `ClusterSettings`, as JSON).
    pub cluster: Option<serde_json::Value>,
    /// The UI's preferences, kept as the UI sent them.
    pub ui: serde_json::Map<String, serde_json::Value>,
    /// Recent runs beyond this many MB: the oldest are deleted.
    pub runs_cap_mb: u64,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences { cluster: None, ui: serde_json::Map::new(), runs_cap_mb: DEFAULT_RUNS_CAP_MB }
    }
}

/// A change: fields left out stay as they are; `ui` keys are merged (a null deletes one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct PreferencesPatch {
    #[ts(optional, type = "ClusterSettings")]
    pub cluster: Option<serde_json::Value>,
    #[ts(optional, type = "Record<string, unknown>")]
    pub ui: Option<serde_json::Map<String, serde_json::Value>>,
    #[ts(optional)]
    pub runs_cap_mb: Option<u64>,
}

impl Preferences {
    pub fn apply(&mut self, patch: PreferencesPatch) -> Result<(), LabError> {
        if let Some(mb) = patch.runs_cap_mb {
            if mb == 0 {
                return Err(LabError::InvalidArgument {
                    what: "runs_cap_mb",
                    detail: "the recent-runs cap must be at least 1 MB".into(),
                });
            }
            self.runs_cap_mb = mb;
        }
        if let Some(c) = patch.cluster {
            self.cluster = Some(c);
        }
        for (k, v) in patch.ui.into_iter().flatten() {
            if v.is_null() {
                self.ui.remove(&k);
            } else {
                self.ui.insert(k, v);
            }
        }
        Ok(())
    }
}

/// The preferences file and what it holds.
#[derive(Debug)]
pub struct PreferencesFile {
    path: PathBuf,
}

impl PreferencesFile {
    pub fn new(path: impl Into<PathBuf>) -> PreferencesFile {
        PreferencesFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds; the defaults when there is none or it is unreadable (moved aside).
    pub fn load(&self) -> Preferences {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Preferences::default(),
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "preferences unreadable; using defaults");
                return Preferences::default();
            }
        };
        match serde_json::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                let aside = self.path.with_extension("json.unreadable");
                let moved = std::fs::rename(&self.path, &aside);
                tracing::warn!(
                    file = %self.path.display(), error = %e, kept_as = %aside.display(), moved = moved.is_ok(),
                    "preferences are not valid JSON; using defaults and keeping the old file aside"
                );
                Preferences::default()
            }
        }
    }

    /// Writes the preferences whole (temporary file, then rename).
    pub fn save(&self, prefs: &Preferences) -> Result<(), LabError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|source| LabError::Io { what: format!("creating {}", dir.display()), source })?;
        }
        let text = serde_json::to_vec_pretty(prefs)
            .map_err(|source| LabError::Json { what: "writing preferences".into(), source })?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .map_err(|source| LabError::Io { what: format!("writing {}", tmp.display()), source })?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|source| LabError::Io { what: format!("writing {}", self.path.display()), source })
    }

    /// Loads, applies `patch`, saves; answers the result.
    pub fn update(&self, patch: PreferencesPatch) -> Result<Preferences, LabError> {
        let mut prefs = self.load();
        prefs.apply(patch)?;
        self.save(&prefs)?;
        Ok(prefs)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn patches_merge_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let file = PreferencesFile::new(dir.path().join("conf/preferences.json"));
        assert_eq!(file.load(), Preferences::default());
        let patch: PreferencesPatch =
            serde_json::from_value(json!({ "ui": { "theme": "light", "presentation": true } })).unwrap();
        file.update(patch).unwrap();
        let patch: PreferencesPatch =
            serde_json::from_value(json!({ "ui": { "presentation": null }, "runs_cap_mb": 50 })).unwrap();
        let prefs = file.update(patch).unwrap();
        assert_eq!(file.load(), prefs);
        assert_eq!(prefs.ui, json!({ "theme": "light" }).as_object().unwrap().clone());
        assert_eq!(prefs.runs_cap_mb, 50);
    }

    #[test]
    fn a_corrupt_file_gives_defaults_and_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("preferences.json");
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(PreferencesFile::new(&path).load(), Preferences::default());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("preferences.json.unreadable")).unwrap(),
            "{ not json"
        );
    }

    #[test]
    fn a_zero_cap_and_unknown_fields_are_refused() {
        let mut p = Preferences::default();
        assert!(p.apply(PreferencesPatch { runs_cap_mb: Some(0), ..Default::default() }).is_err());
        assert!(serde_json::from_value::<PreferencesPatch>(json!({ "runs_cap": 5 })).is_err());
    }
}
