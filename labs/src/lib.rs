//! The Cluster Lab engine behind the `clusterlab` CLI.
//!
//! The library drives `clusterlab-broker` processes (and, for comparison, peer brokers) with
//! stock Kafka clients (rdkafka) and turns what it observes into reports. It logs through
//! `tracing` and never prints; the binary decides what reaches the terminal.
//!
//! ## Layout
//!
//! - [`error`]: [`error::LabError`], the one error type of the library.
//! - [`bench`]: `clusterlab bench`, single-node throughput and ack latency per fsync policy.
//!   - `bench::cases`: the case matrix and the `--cases` filter.
//!   - `bench::broker_process`: one broker on a fresh directory (through [`launcher`]), its `/state`.
//!   - `bench::tansu`: the Tansu peer broker (in-memory storage).
//!   - `bench::produce` / `bench::consume`: the measured client halves of a case.
//!   - `bench::report`: results, percentile/rate/ratio maths and table rendering.
//! - [`node_client`]: a node's HTTP endpoint: JSON calls and the live event stream.
//! - [`chaos`]: `clusterlab chaos`: seeded fault schedules run as drills, saved as drill files, shrunk.
//! - [`checker`]: history (+ replica digests) -> verdict: lost, duplicated, reordered, phantom,
//!   divergent; live form too.
//! - [`fabric`]: lab-owned TCP proxies on every link; pass, delay, black-hole or reset each direction.
//! - [`supervisor`]: broker processes: ports, configs, start/stop/kill/pause, logs, resources, no orphans.
//! - [`launcher`]: the one way to run a child the lab owns (supervisor and benches): output lines,
//!   ready line, stderr tail, signals by PID while unreaped, SIGTERM-then-SIGKILL stop, kill on drop.
//! - [`server`]: `clusterlab serve`: the lab protocol over HTTP/WebSocket next to the UI.
//! - [`drill`]: drills as data: the TOML format, its validation with file:line errors, the catalog.
//! - [`lab`]: the lab itself and its command/event protocol.
//! - [`history`]: client operations as a Jepsen-style history (invoke / ok / fail / info).
//! - [`timeline`]: the run's ordered event log and its exports.
//! - [`workload`]: rdkafka producers and consumers that record every operation.
//! - [`settings`]: the settings a cluster starts with and their defaults.
//! - [`paths`]: where the broker binary and drills are found, and where state is kept.
//! - [`prefs`]: preferences remembered between starts.
//! - [`runs`]: the recent-runs store (one directory per run) and its recorder.
//! - `tasks`: background tasks owned by the component that started them, joined (bounded) when it stops.
//!
//! ## Dependency direction
//!
//! A module uses only modules on later lines; `scripts/module-cycles.py` (CI) checks every use
//! between top-level modules against this list:
//!
//! 1. `bench`, `server`
//! 2. `lab`
//! 3. `chaos`, `supervisor`
//! 4. `drill`, `node_client`, `runs`
//! 5. `timeline`
//! 6. `checker`
//! 7. `fabric`, `launcher`, `paths`, `prefs`, `workload`
//! 8. `error`, `history`, `settings`, `tasks`
//!
//! Across crates: labs depends on broker (the node's own wire types, decision 37) and nothing of
//! the workspace depends on labs but the desktop app (and broker's process tests, decision 41).

pub mod bench;
pub mod chaos;
pub mod checker;
pub mod drill;
pub mod error;
pub mod fabric;
pub mod history;
pub mod lab;
pub mod launcher;
pub mod node_client;
pub mod paths;
pub mod prefs;
pub mod runs;
pub mod server;
pub mod settings;
pub mod supervisor;
mod tasks;
pub mod timeline;
pub mod workload;

pub use error::{LabError, Result};
