//! Drills as data: the `drills/*.toml` format, its parser/validator and the catalog.
//!
//! A drill runs a real Kafka workload against the local cluster while injecting timed faults,
//! then checks the history against the drill's expectations. This module only reads and checks
//! drill files; the engine executes the resulting [`DrillSpec`].
//!
//! # Layout
//! - `spec`: the typed, validated drill ([`DrillSpec`], [`Step`], [`Fault`], [`Expect`], ...).
//! - `selector`: the string forms inside a drill (targets, waits, fsync, acks) and their parsing.
//! - `raw`: the TOML as written (serde, unknown keys refused), with source spans.
//! - `source`: the file being read (errors as `file:line:column`) and target checks.
//! - `parse`: [`parse_drill`], setup/workload/expect checks.
//! - `steps`: `[[steps]]` checks (fault / wait / narration, timing order, waits, repeats).
//! - `faults`: a fault step's parameters and what its targets may refer to at that point.
//! - `catalog`: [`load_catalog`], [`load_lessons`] and [`find`].
//!
//! # Lessons
//! A guided lesson (`labs/lessons/*.toml`, [`parse_lesson`]) is a drill file with a few more
//! keys, so it shares the parser, selectors, fault steps, expectations and runner:
//! `watch = "<group>"` (required: the Raft group it is about), per step `explain = "..."` (what
//! happened and why, shown after the step) and `await = "learner" | "next"` (the step waits for
//! the learner to perform its fault, or to press Next; headless the runner goes on itself), and
//! `[expect]` keys over the watched group's Raft trace (`elected_in_higher_term`,
//! `discarded_uncommitted`, `min_commits`, `min_flush_lag`), which drills may use too.
//!
//! # File format (see `labs/drills/` for the full catalog)
//! ```toml
//! name = "leader-crash"
//! title = "Leader crash during produce"
//! description = "SIGKILL the leader mid-stream; a new one takes over and nothing acked is lost."
//! tags = ["seed", "failover"]
//!
//! [setup]
//! topic = "orders"
//! partitions = 1
//! acks = "all"
//!
//! [workload]
//! messages = 2000
//! duration_ms = 15000
//!
//! [[steps]]
//! at_ms = 3000
//! fault = "kill"
//! target = "leader:orders/0"
//! narrate = "SIGKILL the leader while producers are writing."
//!
//! [[steps]]
//! until = "leader_elected:orders/0"
//! timeout_ms = 5000
//!
//! [expect]
//! lost = "none"
//! duplicates = "any"
//! ```

mod catalog;
mod faults;
mod parse;
mod raw;
mod selector;
mod source;
mod spec;
mod steps;

pub use catalog::{find, load_catalog, load_lessons};
pub use parse::{parse_drill, parse_lesson};
pub use spec::*;

#[cfg(test)]
mod lesson_tests;
#[cfg(test)]
mod tests;
