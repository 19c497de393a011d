//! The node's event stream.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
}

impl Telemetry {
    pub fn new(node_id: i32) -> Arc<Telemetry> {
        let (tx, _) = broadcast::channel(STREAM_CAPACITY);
        Arc::new(Telemetry { node_id, seq: AtomicU64::new(0), tx, warnings: Mutex::new(VecDeque::new()) })
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

    /// Forwards every change of a partition's offsets onto the stream until `cancel` fires or the
    /// partition is dropped. The watch channel coalesces bursts, so a fast producer yields the
    /// latest offsets rather than a backlog.
    pub fn watch_partition(
        self: &Arc<Self>,
        log: &Arc<PartitionLog>,
        cancel: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        let mut rx = log.subscribe();
        let topic = log.topic().to_string();
        let partition = log.partition();
        let this = Arc::clone(self);
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    changed = rx.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        // Clone out at once: never hold the watch borrow across anything else.
                        let offsets = rx.borrow_and_update().clone();
                        this.emit(EventKind::PartitionOffsets { topic: topic.clone(), partition, offsets });
                    }
                }
            }
        });
    }
}
