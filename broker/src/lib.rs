//! # broker — one Cluster Lab broker node
//!
//! A Kafka-compatible broker whose durability promises are exact and observable.
//!
//! ## Layout
//! - `config`    — node configuration from a TOML file and/or flags; fsync policy parsing.
//! - `error`     — the crate's one error enum.
//! - `group_id`  — which Raft group: the controller or a partition (one type, every process).
//! - `log`       — durable storage: segment files with a CRC per entry, fsync policy with group
//!   commit, flushed-offset tracking, torn-tail recovery, data-dir lock, power-cut.
//! - `groups`    — consumer-group coordinator (join/sync/heartbeat/leave, rebalances, session
//!   expiry) and committed offsets that survive restarts.
//! - `producers` — idempotent-producer state: producer ids, epochs, per-partition sequences.
//! - `topics`    — the topic catalogue (persisted) on top of the log store.
//! - `acls`      — ACL bindings (CreateAcls/DescribeAcls/DeleteAcls): stored and matched, not enforced.
//! - `topic_config` — Kafka's topic configs: names, value checks, defaults, what is applied.
//! - `broker_configs` — a broker's configs for the admin APIs: static ones described, Kafka's
//!   dynamic ones stored per broker and described, not acted on.
//! - `protocol`  — bytes <-> Kafka frames and the connection loop that hands requests to `api`.
//! - `budget`    — what requests in progress may hold: per connection and per node, Kafka and Raft
//!   alike, and how slowly a frame may arrive or an answer leave while it holds its share.
//! - `api`       — one module per Kafka API (typed request -> typed response) and the dispatch
//!   by API key.
//! - `registry`  — which APIs and versions the node serves (routing and the ApiVersions answer).
//! - `telemetry` — the event stream the lab merges into its timeline, and the wire types.
//! - `endpoint`  — loopback HTTP: `/state`, `/events` (SSE), `/metrics`, `/raft/*`, fault calls.
//! - `coordination` — where the consumer-group coordinator runs (the controller leader, in
//!   cluster mode) and what it persists to.
//! - `state`     — `NodeState`, what every handler may touch.
//! - `cluster`   — cluster mode: the controller's metadata, one Raft group per partition replica,
//!   node liveness, the election driver, what `/state` and `/raft/*` report.
//! - `raft`      — the openraft plumbing: type config, log storage over the partition log, state
//!   machine, RPC trace and the multiplexed transport between nodes.
//! - `node`      — start-up, serving and the graceful stop.
//!
//! ## Dependency direction
//!
//! A module uses only modules on later lines; `scripts/module-cycles.py` (CI) checks every use
//! between top-level modules against this list:
//!
//! 1. `node`
//! 2. `protocol` (the connection loop hands each frame to `api`)
//! 3. `api`, `coordination`, `endpoint`
//! 4. `state`
//! 5. `cluster`
//! 6. `raft`, `topics`
//! 7. `acls`, `broker_configs`, `producers`, `telemetry`
//! 8. `groups`, `log`
//! 9. `budget`, `config`, `registry` (`budget` uses `error` for its stall errors)
//! 10. `error`, `topic_config`
//! 11. `group_id`
//!
//! Across crates: broker depends on no other crate of the workspace; labs and the desktop app
//! depend on it. Its process-level tests (`tests/`) use the lab's launcher, node client and link
//! fabric, a test-only edge (decision 41).

pub mod acls;
pub mod api;
pub mod broker_configs;
pub mod budget;
pub mod cluster;
pub mod config;
pub mod coordination;
pub mod endpoint;
pub mod error;
pub mod group_id;
pub mod groups;
pub mod log;
pub mod node;
pub mod producers;
pub mod protocol;
pub mod raft;
pub mod registry;
pub mod state;
pub mod telemetry;
pub mod topic_config;
pub mod topics;

pub use config::{Config, FsyncPolicy};
pub use error::{BrokerError, Result};
pub use node::Node;
