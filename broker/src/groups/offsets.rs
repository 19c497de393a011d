//! Committed offsets: the map, its JSON form, and durable, ordered, coalesced writes.
//!
//! Where offsets are made durable is the `OffsetBackend`'s business: a single node rewrites one
//! fsynced file with the whole map (`FileBackend`); a cluster replicates each batch of commits as
//! a delta through the controller's Raft log and reads offsets back from the applied state
//! (`coordination`). Either way a commit returns only after the backend said it is
//! durable, and fetches report only what the backend holds. Commits that arrive while a write is
//! in flight are queued and written together by the next write, in arrival order, so N
//! concurrent committers cost about two writes, not N.

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::codes;
use super::types::{CommittedOffset, OffsetCommit};
use crate::error::{BrokerError, Result};

/// Writes the serialized offsets durably (the broker wires an atomic, fsynced file write).
pub type PersistFn = Arc<dyn Fn(&[u8]) -> Result<()> + Send + Sync>;

const FORMAT_VERSION: u32 = 1;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    #[serde(default)]
    pub metadata: Option<String>,
    #[serde(default = "super::types::no_leader_epoch")]
    pub leader_epoch: i32,
}

/// group -> topic -> partition -> committed offset. Nested string/integer keys so that the
/// controller's metadata (which holds one) serializes to JSON as it is.
pub type OffsetMap = BTreeMap<String, BTreeMap<String, BTreeMap<i32, Committed>>>;

/// One group's part of a write, in the order its commits arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupCommit {
    pub group: String,
    pub offsets: Vec<OffsetCommit>,
    /// DeleteGroups: every offset of the group goes (and then `offsets`, normally none, apply).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
    /// OffsetDelete: these (topic, partition) offsets go, before `offsets` apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<(String, i32)>,
}

/// Applies commits, in order, to `map`: the one merge rule of every backend and of the
/// controller's state machine.
pub fn merge_offsets(map: &mut OffsetMap, commits: &[GroupCommit]) {
    for c in commits {
        if c.delete {
            map.remove(&c.group);
            if c.offsets.is_empty() {
                continue;
            }
        }
        if !c.removed.is_empty() {
            remove_partitions(map, &c.group, &c.removed);
            if c.offsets.is_empty() {
                continue;
            }
        }
        let group = map.entry(c.group.clone()).or_default();
        for o in &c.offsets {
            let committed =
                Committed { offset: o.offset, metadata: o.metadata.clone(), leader_epoch: o.leader_epoch };
            group.entry(o.topic.clone()).or_default().insert(o.partition, committed);
        }
    }
}

/// Drops `partitions` from a group's offsets, and the topics and the group left without any.
fn remove_partitions(map: &mut OffsetMap, group: &str, partitions: &[(String, i32)]) {
    let Some(topics) = map.get_mut(group) else { return };
    for (topic, partition) in partitions {
        if let Some(parts) = topics.get_mut(topic) {
            parts.remove(partition);
            if parts.is_empty() {
                topics.remove(topic);
            }
        }
    }
    if topics.is_empty() {
        map.remove(group);
    }
}

/// Where committed offsets are made durable and read back from.
pub trait OffsetBackend: Send + Sync {
    /// Makes `commits` durable, applied in order. Blocks the calling thread until they are.
    /// `BrokerError::NotCoordinator` when this node may no longer take commits.
    fn write(&self, commits: &[GroupCommit]) -> Result<()>;
    /// Runs `f` over the durable offsets.
    fn read(&self, f: &mut dyn FnMut(&OffsetMap));
}

/// Single node: the whole map rewritten through `persist` (an atomic, fsynced file write).
pub struct FileBackend {
    durable: Mutex<OffsetMap>,
    persist: PersistFn,
}

impl FileBackend {
    /// `persisted` is what `persist` last wrote in a previous run, if anything.
    pub fn new(persisted: Option<Vec<u8>>, persist: PersistFn) -> Result<FileBackend> {
        let durable = match persisted {
            Some(bytes) => decode(&bytes)?,
            None => OffsetMap::new(),
        };
        Ok(FileBackend { durable: Mutex::new(durable), persist })
    }

    fn lock(&self) -> MutexGuard<'_, OffsetMap> {
        self.durable.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl OffsetBackend for FileBackend {
    fn write(&self, commits: &[GroupCommit]) -> Result<()> {
        // Writes are serialised by the store (one writer at a time), so a copy taken here is
        // still the durable state when the write succeeds.
        let mut next = self.lock().clone();
        merge_offsets(&mut next, commits);
        let bytes = encode(&next)?;
        catch_unwind(AssertUnwindSafe(|| (self.persist)(&bytes)))
            .unwrap_or_else(|_| Err(BrokerError::Internal("offset persist function panicked".to_string())))?;
        *self.lock() = next;
        Ok(())
    }

    fn read(&self, f: &mut dyn FnMut(&OffsetMap)) {
        f(&self.lock())
    }
}

#[derive(Serialize, Deserialize)]
struct Persisted {
    version: u32,
    groups: BTreeMap<String, Vec<PersistedOffset>>,
}

#[derive(Serialize, Deserialize)]
struct PersistedOffset {
    topic: String,
    partition: i32,
    offset: i64,
    #[serde(default)]
    metadata: Option<String>,
    #[serde(default = "super::types::no_leader_epoch")]
    leader_epoch: i32,
}

fn corrupt(reason: String) -> BrokerError {
    BrokerError::CorruptState { what: "committed offsets".to_string(), reason }
}

/// The file format (also what the controller's old `SetGroupOffsets` commands carry).
pub(crate) fn decode(bytes: &[u8]) -> Result<OffsetMap> {
    let persisted: Persisted =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid offsets JSON: {e}")))?;
    if persisted.version != FORMAT_VERSION {
        return Err(corrupt(format!(
            "unsupported format version {} (expected {FORMAT_VERSION})",
            persisted.version
        )));
    }
    let mut map = OffsetMap::new();
    for (group, entries) in persisted.groups {
        let offsets = map.entry(group.clone()).or_default();
        for e in entries {
            if e.partition < 0 {
                return Err(corrupt(format!(
                    "group {group:?} topic {:?} has negative partition {}",
                    e.topic, e.partition
                )));
            }
            let committed =
                Committed { offset: e.offset, metadata: e.metadata, leader_epoch: e.leader_epoch };
            offsets.entry(e.topic).or_default().insert(e.partition, committed);
        }
    }
    Ok(map)
}

fn encode(map: &OffsetMap) -> Result<Vec<u8>> {
    let groups = map
        .iter()
        .map(|(g, offs)| {
            let entries = offs
                .iter()
                .flat_map(|(t, parts)| {
                    parts.iter().map(move |(p, c)| PersistedOffset {
                        topic: t.clone(),
                        partition: *p,
                        offset: c.offset,
                        metadata: c.metadata.clone(),
                        leader_epoch: c.leader_epoch,
                    })
                })
                .collect();
            (g.clone(), entries)
        })
        .collect();
    serde_json::to_vec(&Persisted { version: FORMAT_VERSION, groups })
        .map_err(|e| BrokerError::Internal(format!("cannot serialize committed offsets: {e}")))
}

struct StoreState {
    queued: Vec<(u64, GroupCommit)>,
    next_ticket: u64,
    writing: bool,
    /// Outcome per ticket of finished writes (NONE or the error code for every offset of the
    /// commit), removed by the committer that owns it.
    results: HashMap<u64, i16>,
}

/// A queued commit's place in line (`OffsetStore::enqueue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitTicket(u64);

pub(crate) struct OffsetStore {
    state: Mutex<StoreState>,
    written: Condvar,
    backend: Arc<dyn OffsetBackend>,
}

impl OffsetStore {
    pub fn new(backend: Arc<dyn OffsetBackend>) -> Self {
        let state =
            StoreState { queued: Vec::new(), next_ticket: 0, writing: false, results: HashMap::new() };
        OffsetStore { state: Mutex::new(state), written: Condvar::new(), backend }
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        // A panic elsewhere while holding the lock leaves the queue consistent (every update is
        // a single push or insert), so keep serving rather than cascading the panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `entries` behind every commit queued before, without blocking. Commits are applied
    /// in queue order, so a connection that queues its commits in the order it received them
    /// (at dispatch, before any await) can never see an older one overwrite a newer one.
    pub fn enqueue(&self, group: &str, entries: Vec<OffsetCommit>) -> CommitTicket {
        self.enqueue_commit(GroupCommit {
            group: group.to_string(),
            offsets: entries,
            delete: false,
            removed: Vec::new(),
        })
    }

    /// Queues the removal of every offset of `group` (DeleteGroups), in line with the commits.
    pub fn enqueue_delete(&self, group: &str) -> CommitTicket {
        self.enqueue_commit(GroupCommit {
            group: group.to_string(),
            offsets: Vec::new(),
            delete: true,
            removed: Vec::new(),
        })
    }

    /// Queues the removal of some partitions' offsets of `group` (OffsetDelete), in line with
    /// the commits.
    pub fn enqueue_removal(&self, group: &str, partitions: Vec<(String, i32)>) -> CommitTicket {
        self.enqueue_commit(GroupCommit {
            group: group.to_string(),
            offsets: Vec::new(),
            delete: false,
            removed: partitions,
        })
    }

    fn enqueue_commit(&self, commit: GroupCommit) -> CommitTicket {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queued.push((ticket, commit));
        CommitTicket(ticket)
    }

    /// Blocks until the commit of `ticket` is durable (NONE) or its write failed (the code to
    /// answer: NOT_COORDINATOR when this node no longer coordinates, otherwise
    /// COORDINATOR_NOT_AVAILABLE; nothing of it is recorded then). Blocks the calling thread
    /// for the write: call it from a blocking-capable context.
    pub fn wait(&self, CommitTicket(ticket): CommitTicket) -> i16 {
        let mut st = self.lock();
        loop {
            if let Some(code) = st.results.remove(&ticket) {
                return code;
            }
            if st.writing {
                st = self.written.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Nobody is writing: this committer writes everything queued so far, its own
            // entries included, then wakes the others whose entries rode along.
            st.writing = true;
            let batch = std::mem::take(&mut st.queued);
            drop(st);
            let commits: Vec<GroupCommit> = batch.iter().map(|(_, c)| c.clone()).collect();
            let outcome = catch_unwind(AssertUnwindSafe(|| self.backend.write(&commits)))
                .unwrap_or_else(|_| Err(BrokerError::Internal("offset backend panicked".to_string())));
            st = self.lock();
            st.writing = false;
            let code = match outcome {
                Ok(()) => {
                    debug!(commits = batch.len(), "committed offsets durable");
                    codes::NONE
                }
                Err(BrokerError::NotCoordinator(why)) => {
                    warn!(reason = %why, commits = batch.len(), "offset commits refused: not the coordinator");
                    codes::NOT_COORDINATOR
                }
                Err(e) => {
                    warn!(error = %e, commits = batch.len(), "persisting committed offsets failed; commits rejected");
                    codes::COORDINATOR_NOT_AVAILABLE
                }
            };
            for (t, _) in &batch {
                st.results.insert(*t, code);
            }
            self.written.notify_all();
        }
    }

    /// Offsets of `group`; `None` = every partition it has, otherwise -1 for ones it lacks.
    pub fn fetch(&self, group: &str, partitions: Option<&[(String, i32)]>) -> Vec<CommittedOffset> {
        let entry = |topic: &str, partition: i32, found: Option<&Committed>| CommittedOffset {
            topic: topic.to_string(),
            partition,
            offset: found.map_or(-1, |c| c.offset),
            metadata: found.and_then(|c| c.metadata.clone()),
            leader_epoch: found.map_or(-1, |c| c.leader_epoch),
            error_code: codes::NONE,
        };
        let mut out = Vec::new();
        self.backend.read(&mut |map| {
            let offsets = map.get(group);
            out = match partitions {
                Some(wanted) => wanted
                    .iter()
                    .map(|(t, p)| entry(t, *p, offsets.and_then(|o| o.get(t)).and_then(|o| o.get(p))))
                    .collect(),
                None => offsets
                    .into_iter()
                    .flatten()
                    .flat_map(|(t, parts)| parts.iter().map(move |(p, c)| (t, *p, c)))
                    .map(|(t, p, c)| entry(t, p, Some(c)))
                    .collect(),
            };
        });
        out
    }

    pub fn count(&self, group: &str) -> usize {
        let mut n = 0;
        self.backend.read(&mut |map| n = map.get(group).map_or(0, |o| o.values().map(|p| p.len()).sum()));
        n
    }

    /// Every group with committed offsets (such groups are listed even with no members).
    pub fn groups(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.backend.read(&mut |map| out = map.keys().cloned().collect());
        out
    }
}
