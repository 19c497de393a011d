//! The run's timeline: one ordered event log and its exports.
//!
//! - `event` — the event model.

pub mod event;

pub use event::{EventKind, Source, TimelineEvent};
