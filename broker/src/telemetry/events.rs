//! The node's event stream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::groups::GroupEvent;
use crate::log::{PartitionLog, PartitionOffsets, PowerCutReport};
use crate::telemetry::wire::{ElectionPhase, GroupId, LifecyclePhase};

/// Subscribers that fall this far behind lose the oldest events (and are told how many they
/// missed by the SSE endpoint); a slow viewer must never slow the broker down.
const STREAM_CAPACITY: usize = 4096;
/// Warnings kept for `/state`, so a viewer that connects late still sees what went wrong.
const RECENT_WARNINGS: usize = 100;

/// Bounds of [`Telemetry::progress_window`], and the partitions per millisecond between them.
const PROGRESS_WINDOW_MIN_MS: u64 = 5;
const PROGRESS_WINDOW_MAX_MS: u64 = 50;
const PARTITIONS_PER_WINDOW_MS: u64 = 20;

/// One telemetry event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Per-node sequence number: gaps tell a viewer it missed events.
    pub seq: u64,
    /// Wall-clock Unix nanoseconds.
    pub ts_ns: u64,
    pub node_id: i32,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Lifecycle: `started`, `handing_off`, `draining`, `flushed`, `stopped`.
    Lifecycle {
        phase: LifecyclePhase,
    },
    /// A partition's log end / flushed offset / high watermark changed.
    PartitionOffsets {
        topic: String,
        partition: i32,
        offsets: PartitionOffsets,
    },
    TopicCreated {
        topic: String,
        partitions: i32,
    },
    TopicDeleted {
        topic: String,
    },
    /// A consumer group changed state or generation.
    Group(GroupEvent),
    /// A fault call was applied (`power_cut`, `slow_fsync`).
    Fault {
        fault: String,
        detail: serde_json::Value,
    },
    PowerCut {
        report: PowerCutReport,
    },
    /// A Raft group's state changed (cluster mode).
    Raft(crate::telemetry::wire::GroupState),
    /// An election began or ended in a group.
    Election {
        group: GroupId,
        term: u64,
        phase: ElectionPhase,
        leader: Option<u64>,
    },
    Warning {
        message: String,
    },
}

/// The sending side, shared by the whole node.
pub struct Telemetry {
    node_id: i32,
    seq: AtomicU64,
    tx: broadcast::Sender<Event>,
    warnings: Mutex<VecDeque<Event>>,
    /// Partitions whose offsets are being watched: the node's partition count.
    partitions_watched: AtomicUsize,
}

impl Telemetry {
    pub fn new(node_id: i32) -> Arc<Telemetry> {
        let (tx, _) = broadcast::channel(STREAM_CAPACITY);
        Arc::new(Telemetry {
            node_id,
            seq: AtomicU64::new(0),
            tx,
            warnings: Mutex::new(VecDeque::new()),
            partitions_watched: AtomicUsize::new(0),
        })
    }

    pub fn emit(&self, kind: EventKind) {
        let event = Event {
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
            ts_ns: super::now_ns(),
            node_id: self.node_id,
            kind,
        };
        if matches!(event.kind, EventKind::Warning { .. }) {
            let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
            w.push_back(event.clone());
            while w.len() > RECENT_WARNINGS {
                w.pop_front();
            }
        }
        // No subscriber is fine: nobody is watching.
        let _ = self.tx.send(event);
    }

    pub fn warn(&self, message: String) {
        self.emit(EventKind::Warning { message });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn recent_warnings(&self) -> Vec<Event> {
        self.warnings.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// How long the watchers of this node let progress (offsets and Raft indexes moving under
    /// the same leader) fold before they read it again: 5 ms up to 100 partitions, then 1 ms
    /// more per 20 partitions, up to 50 ms at 1,000. Each step of an entry (appended, flushed,
    /// matched, committed, applied) changes what they watch; at a thousand busy partitions the
    /// longer window cut the cluster's CPU per message by 5-8 % (docs/benchmarks.md, session
    /// 36). A teaching lab of a few partitions keeps its 5 ms steps.
    pub fn progress_window(&self) -> Duration {
        progress_window_for(self.partitions_watched.load(Ordering::Relaxed))
    }

    /// Forwards a partition's offsets onto the stream until `cancel` fires or the partition is
    /// dropped: a change is sent at once, and the changes in the [`Self::progress_window`] after
    /// it as one event with the latest offsets (a fast producer yields no backlog). A partition
    /// already watched is left to its watcher.
    pub fn watch_partition(
        self: &Arc<Self>,
        log: &Arc<PartitionLog>,
        cancel: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        if !log.claim_telemetry_watch() {
            return;
        }
        let mut rx = log.subscribe();
        let topic = log.topic().to_string();
        let partition = log.partition();
        let this = Arc::clone(self);
        let counted = WatchedPartition::new(&this);
        tasks.spawn(async move {
            let _counted = counted;
            let cancelled = cancel.cancelled();
            tokio::pin!(cancelled);
            loop {
                tokio::select! {
                    _ = &mut cancelled => return,
                    changed = rx.changed() => if changed.is_err() { return },
                }
                // Clone out at once: never hold the watch borrow across anything else.
                let offsets = rx.borrow_and_update().clone();
                this.emit(EventKind::PartitionOffsets { topic: topic.clone(), partition, offsets });
                tokio::select! {
                    _ = &mut cancelled => return,
                    _ = tokio::time::sleep(this.progress_window()) => {}
                }
            }
        });
    }
}

/// Counts a partition watcher in [`Telemetry::progress_window`] for as long as it runs.
struct WatchedPartition(Arc<Telemetry>);

impl WatchedPartition {
    fn new(telemetry: &Arc<Telemetry>) -> WatchedPartition {
        telemetry.partitions_watched.fetch_add(1, Ordering::Relaxed);
        WatchedPartition(Arc::clone(telemetry))
    }
}

impl Drop for WatchedPartition {
    fn drop(&mut self) {
        self.0.partitions_watched.fetch_sub(1, Ordering::Relaxed);
    }
}

fn progress_window_for(partitions: usize) -> Duration {
    let ms = partitions as u64 / PARTITIONS_PER_WINDOW_MS;
    Duration::from_millis(ms.clamp(PROGRESS_WINDOW_MIN_MS, PROGRESS_WINDOW_MAX_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_partition_reached_twice_is_watched_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) =
            crate::log::LogStore::open(dir.path(), crate::config::FsyncPolicy::Never, 1 << 20).unwrap();
        let log = store.create_partition("t", 0).unwrap();
        let telemetry = Telemetry::new(1);
        let (cancel, tasks) = (CancellationToken::new(), tokio_util::task::TaskTracker::new());
        telemetry.watch_partition(&log, cancel.clone(), &tasks);
        telemetry.watch_partition(&store.partition("t", 0).unwrap(), cancel.clone(), &tasks);
        assert_eq!(telemetry.partitions_watched.load(Ordering::Relaxed), 1);
        assert_eq!(tasks.len(), 1, "one watcher task");
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
        assert_eq!(
            telemetry.partitions_watched.load(Ordering::Relaxed),
            0,
            "a stopped watcher is not counted"
        );
    }

    #[test]
    fn progress_folds_longer_with_more_partitions_within_its_bounds() {
        let ms = |partitions| progress_window_for(partitions).as_millis();
        assert_eq!((ms(0), ms(3), ms(100)), (5, 5, 5), "a teaching lab keeps 5 ms steps");
        assert_eq!((ms(300), ms(1_000)), (15, 50));
        assert_eq!(ms(10_000), 50, "never longer than 50 ms");
    }
}
