//! Durable log storage: one log of Kafka record batches per partition.
//!
//! ```text
//! <dir>/.lock                                   flock + holder pid (lock.rs)
//! <dir>/<meta name>                             small metadata, written atomically (durability.rs)
//! <dir>/power-cut-report.json                   written by a simulated power cut (power_cut_report.rs)
//! <dir>/raft-votes.log                          every Raft group's vote, one record each (votes.rs)
//! <dir>/partitions/<topic>-<partition>/<base_offset:020>.log   segments (entry.rs format)
//! ```
//!
//! Durability model: `append` reaches the OS before returning; a dedicated flusher thread
//! fsyncs (flusher.rs, serving the requests queued in durability.rs) according to the
//! [`FsyncPolicy`](crate::config::FsyncPolicy), and each
//! partition publishes `flushed_offset`, the first offset not known to be on disk. Every
//! offset here is an exclusive end ("next offset"), like Kafka's high watermark.
//!
//! The same log is a replicated partition's Raft log (raft_view.rs): each entry stores a term,
//! entry *i* is Raft index *i*, Raft's own entries occupy no offset (decision 46), and
//! `truncate_entries_from` resolves conflicts.
//!
//! Layout:
//! - [`store`]: the data dir as a whole: its [`lock`], the partition logs, metadata files, and
//!   opening them through [`recovery`] (which checks every [`entry`] of every [`segment`]);
//! - [`partition`]: one partition's log (appends, offsets, truncation; reads in
//!   `partition/read.rs`), [`log_start`] for DeleteRecords, [`raft_view`] for its use as a Raft
//!   log, [`recent`] for the unapplied tail a replicated log keeps in memory;
//! - durability: [`durability`] (the store's life cycle and flush requests), the [`flusher`]
//!   thread, the Raft [`votes`] of every group, and the simulated [`power_cut`] with its
//!   [`power_cut_report`];
//! - Kafka's record batches: [`batch`] (the header, splitting a Produce's records) and
//!   [`batch_builder`] (control batches, and batches the broker writes itself).

pub mod batch;
pub mod batch_builder;
mod durability;
mod entry;
mod flusher;
mod lock;
mod log_start;
#[cfg(test)]
mod offsetless_tests;
mod partition;
#[cfg(test)]
mod partition_tests;
mod power_cut;
mod power_cut_report;
mod raft_view;
mod recent;
mod recovery;
mod segment;
mod store;
#[cfg(test)]
pub(crate) mod test_batches;
mod votes;

use std::sync::{Mutex, MutexGuard};

pub use batch::{split_batches, with_offset_and_epoch, BatchHeader};
pub use durability::StoreStats;
pub use partition::{AppendOutcome, PartitionLog, PartitionOffsets};
pub use power_cut_report::{PowerCutPartition, PowerCutReport};
pub use raft_view::{RaftEntryBytes, ReplicaDigest};
pub use recovery::{Corruption, PartitionRecovery, RecoveryReport};
pub use store::{partition_dir, LogStore};

/// Wall-clock Unix nanoseconds: events from several broker processes must merge on one axis.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Locks a mutex, ignoring poisoning: every critical section here leaves state consistent at
/// each step (files are cut back on failed writes), so a panic elsewhere must not wedge storage.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
