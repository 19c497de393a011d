//! JSON Lines: one event per line, exactly the serde form of `TimelineEvent`, so a run can be
//! re-imported for replay and read by `jq` line by line.

use std::io::{BufRead, Write};

use crate::error::LabError;
use crate::timeline::event::TimelineEvent;

use super::io_err;

/// Write `events` as JSON Lines, in the order given.
pub fn write_jsonl(events: &[TimelineEvent], out: &mut impl Write) -> Result<(), LabError> {
    for e in events {
        serde_json::to_writer(&mut *out, e)
            .map_err(|source| LabError::Json { what: format!("writing event {}", e.seq), source })?;
        out.write_all(b"\n").map_err(io_err("writing JSON Lines"))?;
    }
    Ok(())
}

/// Read events written by `write_jsonl`. Blank lines are skipped; any other bad line fails with
/// its 1-based line number and what was wrong with it.
pub fn read_jsonl(reader: impl BufRead) -> Result<Vec<TimelineEvent>, LabError> {
    let mut events = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io_err("reading timeline JSON Lines"))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line).map_err(|e| LabError::Import {
            what: "timeline JSON Lines".into(),
            line: i + 1,
            detail: describe(&e),
        })?;
        events.push(event);
    }
    Ok(events)
}

/// serde_json's message says "at line 1 column N" because it parsed one line on its own; keep
/// only the column, so the error's line number is the file's.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(p) => msg[..p].to_string(),
        None => msg,
    };
    format!("{msg} (column {})", e.column())
}
