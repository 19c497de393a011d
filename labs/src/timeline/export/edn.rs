//! Jepsen-style EDN history of the client operations, one map per line, e.g.
//! `{:type :invoke, :f :send, :value "v-12", :process 0, :time 123456789, :index 3}`, so the
//! run can be fed to Jepsen/Knossos/Elle tooling. Completed ops carry `:partition`/`:offset`
//! when known and `:error` for `fail`/`info`.
//!
//! `:index` is the position in this exported history (0, 1, 2, ...), as Jepsen expects, and
//! `:time` is nanoseconds since the first client op.

use std::fmt::Write as _;
use std::io::Write;

use crate::error::LabError;
use crate::history::{Op, OpKind, OpType};
use crate::timeline::event::{EventKind, TimelineEvent};

use super::{io_err, time_ordered};

/// Write the client ops among `events` (any order; written in time order) as EDN lines.
pub fn write_edn(events: &[TimelineEvent], out: &mut impl Write) -> Result<(), LabError> {
    let ops: Vec<&Op> = time_ordered(events)
        .into_iter()
        .filter_map(|e| match &e.kind {
            EventKind::Client { op } => Some(op),
            _ => None,
        })
        .collect();
    // Relative to the first op's own clock: the history's times, not the event timestamps
    // (they are the same clock in practice, but the op's time is what the client measured).
    let t0 = ops.iter().map(|o| o.time_ns).min().unwrap_or(0);
    let mut line = String::with_capacity(256);
    for (index, op) in ops.iter().enumerate() {
        line.clear();
        edn_line(op, index, t0, &mut line);
        out.write_all(line.as_bytes()).map_err(io_err("writing EDN history"))?;
    }
    Ok(())
}

fn edn_line(op: &Op, index: usize, t0: u64, s: &mut String) {
    let ty = match op.op_type {
        OpType::Invoke => "invoke",
        OpType::Ok => "ok",
        OpType::Fail => "fail",
        OpType::Info => "info",
    };
    let f = match op.kind {
        OpKind::Send => "send",
        OpKind::Poll => "poll",
        OpKind::Commit => "commit",
        OpKind::Assign => "assign",
    };
    // Writing to a String cannot fail.
    let _ = write!(s, "{{:type :{ty}, :f :{f}, :value ");
    match &op.value {
        Some(v) => edn_string(v, s),
        None => s.push_str("nil"),
    }
    let _ = write!(s, ", :process {}, :time {}, :index {index}", op.process, op.time_ns.saturating_sub(t0));
    if let Some(p) = op.partition {
        let _ = write!(s, ", :partition {p}");
    }
    if let Some(o) = op.offset {
        let _ = write!(s, ", :offset {o}");
    }
    if let Some(e) = &op.error {
        s.push_str(", :error ");
        edn_string(e, s);
    }
    s.push_str("}\n");
}

/// An EDN string literal: quotes, backslashes and control characters escaped (EDN accepts the
/// same escapes as Clojure: \" \\ \n \t \r and \uXXXX).
pub(crate) fn edn_string(v: &str, s: &mut String) {
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
}
