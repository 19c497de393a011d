//! The lab: one object that owns a cluster, its links, the workload, the timeline and drills.
//!
//! - `protocol` — the command/event vocabulary spoken by every front end.

pub mod protocol;
