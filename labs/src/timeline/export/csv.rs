//! CSV: one row per event — `seq,ts_ns,source,type,label,details` — where `details` is the
//! event's fields as JSON (without the type tag), for spreadsheets and quick greps.
//! Quoting follows RFC 4180: fields with commas, quotes or line breaks are quoted and inner
//! quotes doubled; rows end with CRLF.

use std::io::Write;

use crate::error::LabError;
use crate::timeline::event::TimelineEvent;

use super::{io_err, source_text, type_name};

pub const HEADER: [&str; 6] = ["seq", "ts_ns", "source", "type", "label", "details"];

/// Write `events` as CSV with a header row, in the order given.
pub fn write_csv(events: &[TimelineEvent], out: &mut impl Write) -> Result<(), LabError> {
    let mut row = String::with_capacity(512);
    push_row(&mut row, HEADER.iter().copied());
    out.write_all(row.as_bytes()).map_err(io_err("writing CSV"))?;
    for e in events {
        let mut details = serde_json::to_value(&e.kind)
            .map_err(|source| LabError::Json { what: format!("writing CSV row {}", e.seq), source })?;
        if let Some(m) = details.as_object_mut() {
            m.remove("type"); // already its own column
        }
        row.clear();
        let (seq, ts) = (e.seq.to_string(), e.ts_ns.to_string());
        let (source, label, details) = (source_text(&e.source), e.label(), details.to_string());
        push_row(
            &mut row,
            [
                seq.as_str(),
                ts.as_str(),
                source.as_str(),
                type_name(&e.kind),
                label.as_str(),
                details.as_str(),
            ],
        );
        out.write_all(row.as_bytes()).map_err(io_err("writing CSV"))?;
    }
    Ok(())
}

fn push_row<'a>(row: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            row.push(',');
        }
        push_field(row, f);
    }
    row.push_str("\r\n");
}

/// One RFC 4180 field. Leading/trailing spaces are quoted too, so tools that trim keep them.
pub(crate) fn push_field(row: &mut String, f: &str) {
    let needs = f.contains([',', '"', '\n', '\r']) || f.starts_with(' ') || f.ends_with(' ');
    if !needs {
        row.push_str(f);
        return;
    }
    row.push('"');
    for c in f.chars() {
        if c == '"' {
            row.push('"');
        }
        row.push(c);
    }
    row.push('"');
}
