//! Committed offsets: the in-memory map, its JSON form, and durable, coalesced writes.
//!
//! A commit returns only after the whole map (including it) has been handed to the `persist`
//! function and that call succeeded, so an acknowledged offset survives a crash. Commits that
//! arrive while a write is in flight are queued and written together by the next write, so N
//! concurrent committers cost about two fsyncs, not N.

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

type GroupOffsets = BTreeMap<(String, i32), (i64, Option<String>)>;
type OffsetMap = BTreeMap<String, GroupOffsets>;

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
}

fn corrupt(reason: String) -> BrokerError {
    BrokerError::CorruptState { what: "committed offsets".to_string(), reason }
}

fn decode(bytes: &[u8]) -> Result<OffsetMap> {
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
            offsets.insert((e.topic, e.partition), (e.offset, e.metadata));
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
                .map(|((t, p), (o, m))| PersistedOffset {
                    topic: t.clone(),
                    partition: *p,
                    offset: *o,
                    metadata: m.clone(),
                })
                .collect();
            (g.clone(), entries)
        })
        .collect();
    serde_json::to_vec(&Persisted { version: FORMAT_VERSION, groups })
        .map_err(|e| BrokerError::Invalid(format!("cannot serialize committed offsets: {e}")))
}

struct StoreState {
    /// What the last successful write contained; the only offsets fetch ever reports.
    durable: OffsetMap,
    queued: Vec<(u64, String, Vec<OffsetCommit>)>,
    next_ticket: u64,
    writing: bool,
    /// Outcome per ticket of finished writes, removed by the committer that owns it.
    results: HashMap<u64, bool>,
}

/// A queued commit's place in line (`OffsetStore::enqueue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitTicket(u64);

pub(crate) struct OffsetStore {
    state: Mutex<StoreState>,
    written: Condvar,
    persist: PersistFn,
}

impl OffsetStore {
    pub fn new(persisted: Option<Vec<u8>>, persist: PersistFn) -> Result<Self> {
        let durable = match persisted {
            Some(bytes) => decode(&bytes)?,
            None => OffsetMap::new(),
        };
        let state = StoreState {
            durable,
            queued: Vec::new(),
            next_ticket: 0,
            writing: false,
            results: HashMap::new(),
        };
        Ok(OffsetStore { state: Mutex::new(state), written: Condvar::new(), persist })
    }

    fn lock(&self) -> MutexGuard<'_, StoreState> {
        // A panic elsewhere while holding the lock leaves the maps consistent (every update is
        // a single insert), so keep serving rather than cascading the panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `entries` behind every commit queued before, without blocking. Commits are applied
    /// in queue order, so a connection that queues its commits in the order it received them
    /// (at dispatch, before any await) can never see an older one overwrite a newer one.
    pub fn enqueue(&self, group: &str, entries: Vec<OffsetCommit>) -> CommitTicket {
        let mut st = self.lock();
        let ticket = st.next_ticket;
        st.next_ticket += 1;
        st.queued.push((ticket, group.to_string(), entries));
        CommitTicket(ticket)
    }

    /// Blocks until the commit of `ticket` is durable (true; nothing recorded otherwise) or its
    /// write failed (false). Blocks the calling thread for the write: call it from a
    /// blocking-capable context.
    pub fn wait(&self, CommitTicket(ticket): CommitTicket) -> bool {
        let mut st = self.lock();
        loop {
            if let Some(ok) = st.results.remove(&ticket) {
                return ok;
            }
            if st.writing {
                st = self.written.wait(st).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Nobody is writing: this committer writes everything queued so far, its own
            // entries included, then wakes the others whose entries rode along.
            st.writing = true;
            let batch = std::mem::take(&mut st.queued);
            let mut next = st.durable.clone();
            for (_, g, entries) in &batch {
                let offsets = next.entry(g.clone()).or_default();
                for e in entries {
                    offsets.insert((e.topic.clone(), e.partition), (e.offset, e.metadata.clone()));
                }
            }
            drop(st);
            let outcome = encode(&next).and_then(|bytes| {
                catch_unwind(AssertUnwindSafe(|| (self.persist)(&bytes))).unwrap_or_else(|_| {
                    Err(BrokerError::Invalid("offset persist function panicked".to_string()))
                })
            });
            st = self.lock();
            st.writing = false;
            let ok = match outcome {
                Ok(()) => {
                    st.durable = next;
                    debug!(commits = batch.len(), "committed offsets persisted");
                    true
                }
                Err(e) => {
                    warn!(error = %e, commits = batch.len(), "persisting committed offsets failed; commits rejected");
                    false
                }
            };
            for (t, _, _) in &batch {
                st.results.insert(*t, ok);
            }
            self.written.notify_all();
        }
    }

    /// Offsets of `group`; `None` = every partition it has, otherwise -1 for ones it lacks.
    pub fn fetch(&self, group: &str, partitions: Option<&[(String, i32)]>) -> Vec<CommittedOffset> {
        let st = self.lock();
        let offsets = st.durable.get(group);
        let entry = |topic: &str, partition: i32, found: Option<&(i64, Option<String>)>| CommittedOffset {
            topic: topic.to_string(),
            partition,
            offset: found.map_or(-1, |(o, _)| *o),
            metadata: found.and_then(|(_, m)| m.clone()),
            error_code: codes::NONE,
        };
        match partitions {
            Some(wanted) => wanted
                .iter()
                .map(|(t, p)| entry(t, *p, offsets.and_then(|o| o.get(&(t.clone(), *p)))))
                .collect(),
            None => offsets.into_iter().flatten().map(|((t, p), v)| entry(t, *p, Some(v))).collect(),
        }
    }

    pub fn count(&self, group: &str) -> usize {
        self.lock().durable.get(group).map_or(0, |o| o.len())
    }

    /// Every group with committed offsets (such groups are listed even with no members).
    pub fn groups(&self) -> Vec<String> {
        self.lock().durable.keys().cloned().collect()
    }
}
