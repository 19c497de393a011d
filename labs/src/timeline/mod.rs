//! The run's timeline: one ordered event log and its exports.
//!
//! - `event` — the event model.
//! - `store` — the thread-safe in-memory timeline (`Timeline`).
//! - `export` — JSON Lines, Perfetto trace, EDN history, CSV, charts and the HTML report.

pub mod event;
pub mod export;
pub mod store;

pub use event::{EventKind, Source, TimelineEvent};
pub use store::{sort_by_time, Timeline};
