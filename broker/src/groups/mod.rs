//! Consumer-group coordinator for Kafka's classic group protocol (JoinGroup / SyncGroup /
//! Heartbeat / LeaveGroup) plus committed offsets, independent of wire encoding.
//!
//! The broker computes no assignments: it elects a leader, picks a protocol every member
//! supports, relays the members' metadata to the leader and the leader's assignments back.
//!
//! Modules: `coordinator` (one lock over all groups, replies awaited outside it), `group` (one
//! group's state machine) with `join` (JoinGroup) and `membership` (SyncGroup, Heartbeat,
//! LeaveGroup, timeouts), `member`, `offsets` (committed offsets and their durable writes),
//! `types` (the coordinator's requests and answers), `codes` (Kafka error codes it answers).

pub mod codes;
mod coordinator;
mod group;
mod join;
mod member;
mod membership;
mod offsets;
mod types;

pub use coordinator::{GroupCoordinator, PendingCommit};
pub(crate) use offsets::decode as decode_offsets;
pub use offsets::{merge_offsets, Committed, GroupCommit, OffsetBackend, OffsetMap, PersistFn};
pub use types::*;

#[cfg(test)]
mod tests;
