//! Writing the lab's timeline (or part of it) in every format, one call each.

use std::path::{Path, PathBuf};

use super::protocol::LabFailure;
use super::Lab;
use crate::runs::RunStore;
use crate::timeline::export;
use crate::timeline::TimelineEvent;

/// Every format `export` knows; `all` writes each of them.
pub const FORMATS: &[&str] = &["jsonl", "perfetto", "edn", "csv", "charts", "html"];

/// Writes `events` as `format` into `dir`; returns the files written.
pub fn write(
    events: &[TimelineEvent],
    format: &str,
    dir: &Path,
    verdict: Option<&serde_json::Value>,
    title: &str,
) -> crate::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .map_err(|source| crate::LabError::Io { what: format!("creating {}", dir.display()), source })?;
    let one = |name: &str,
               f: &dyn Fn(&mut std::io::BufWriter<std::fs::File>) -> crate::Result<()>|
     -> crate::Result<Vec<PathBuf>> {
        let path = dir.join(name);
        export::write_to_path(&path, |o| f(o))?;
        Ok(vec![path])
    };
    match format {
        "jsonl" => one("timeline.jsonl", &|o| export::write_jsonl(events, o)),
        "perfetto" => one("trace.json", &|o| export::write_perfetto(events, o)),
        "edn" => one("history.edn", &|o| export::write_edn(events, o)),
        "csv" => one("timeline.csv", &|o| export::write_csv(events, o)),
        "charts" => export::write_charts(events, dir),
        "html" => one("report.html", &|o| export::write_html_report(events, verdict, title, o)),
        "all" => {
            let mut files = Vec::new();
            for f in FORMATS {
                files.extend(write(events, f, dir, verdict, title)?);
            }
            Ok(files)
        }
        other => Err(crate::LabError::InvalidArgument {
            what: "export format",
            detail: format!("'{other}' is not one of {} or all", FORMATS.join(", ")),
        }),
    }
}

/// Writes recorded run `id` of `store` as `format` into `dir`, with its verdict and title.
pub fn write_run(store: &RunStore, id: &str, format: &str, dir: &Path) -> crate::Result<Vec<PathBuf>> {
    let (meta, events) = store.events(id)?;
    let summary = serde_json::json!({ "ok": meta.ok, "summary": meta.summary, "verdict": meta.verdict });
    write(&events, format, dir, Some(&summary), &format!("{} ({})", meta.title, meta.id))
}

impl Lab {
    /// Exports the whole timeline.
    pub fn export(&self, format: &str, dir: &Path) -> Result<Vec<String>, LabFailure> {
        // Absolute paths: a UI or CLI reading the answer need not know the server's directory.
        let dir = std::path::absolute(dir)
            .map_err(|e| LabFailure::new("export_failed", format!("{}: {e}", dir.display())))?;
        let dir = dir.as_path();
        let events = self.timeline.snapshot();
        write(&events, format, dir, None, "Cluster Lab run")
            .map(|files| files.iter().map(|f| f.display().to_string()).collect())
            .map_err(|e| LabFailure::new("export_failed", e.to_string()))
    }
}
