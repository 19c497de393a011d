//! The report a power cut leaves in the data dir, and reading it at the next start-up. Apart
//! from the cut itself (`power_cut`), which needs the whole store, so that the store and recovery
//! can read reports without depending on the cut.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};
use crate::log::durability::sync_dir;
use crate::log::now_ns;

pub(crate) const REPORT_FILE: &str = "power-cut-report.json";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PowerCutReport {
    pub at_ns: u64,
    pub partitions: Vec<PowerCutPartition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct PowerCutPartition {
    pub topic: String,
    pub partition: i32,
    /// Log end before the cut.
    pub log_end_offset: i64,
    /// Log end after the cut (= flushed offset at the time of the cut).
    pub flushed_offset: i64,
    pub lost_records: i64,
}

/// Reads a report left by a power cut and renames it `power-cut-report.<at_ns>.seen.json`, so
/// it is reported by exactly one start-up.
pub(crate) fn take_last_report(dir: &Path) -> Result<Option<PowerCutReport>> {
    let path = dir.join(REPORT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BrokerError::io("read power-cut report", &path, e)),
    };
    let (report, at_ns) = match serde_json::from_slice::<PowerCutReport>(&bytes) {
        Ok(r) => {
            let at = r.at_ns;
            (Some(r), at)
        }
        Err(e) => {
            // Not worth refusing to start over: keep the file under its .seen name and say so.
            tracing::error!(file = %path.display(), error = %e, "unreadable power-cut report");
            (None, now_ns())
        }
    };
    let seen = dir.join(format!("power-cut-report.{at_ns}.seen.json"));
    std::fs::rename(&path, &seen)
        .map_err(|e| BrokerError::io(format!("rename to {}", seen.display()), &path, e))?;
    sync_dir(dir)?;
    Ok(report)
}
