//! Replication: one openraft group per partition plus one controller group.
//!
//! - `typ`           — the openraft type configuration and the commands a group replicates.
//! - `committed_mark` — where a restarted partition replica resumes applying.
//! - `entry_codec`   — Raft entries <-> stored Kafka batches (control batches for non-data).
//! - `raft_log`      — openraft log storage over a `PartitionLog`.
//! - `state_machine` — applying committed entries (partition watermark, controller commands).
//! - `storage_suite_tests` — (tests) openraft's storage test suite run against the two above.
//! - `trace`         — RPC-level telemetry: the watched group's messages, counters for all.
//! - `transport`     — one multiplexed TCP connection per peer carrying every group's RPCs.

pub mod committed_mark;
pub mod entry_codec;
pub mod raft_log;
pub mod state_machine;
#[cfg(test)]
mod storage_suite_tests;
pub mod trace;
pub mod transport;
pub mod typ;
