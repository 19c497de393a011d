//! Telemetry: what the node tells the lab, live.
//!
//! - `events`  — the event stream (wall-clock nanosecond timestamps, so the lab can merge three
//!   processes into one timeline) and a bounded memory of recent warnings.
//! - `memory`  — where the node's memory goes (`GET /memory`): heap in use, held free, log index.
//! - `wire`    — the contract: where each answer's type lives, and the closed words (role, phase).

pub mod events;
pub mod memory;
pub mod wire;

pub use events::{Event, EventKind, Telemetry};

/// Wall-clock Unix time in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
