//! The live checker: fed the history op by op while a run is going, it raises each anomaly the
//! moment it is certain, so a workshop screen can flash it when it happens.
//!
//! Certain online: duplicates (a second offset for a value), phantom reads (a value read before
//! anyone invoked its send: reads cannot precede sends), failed-but-present, two values at one
//! position, and an ack/read mismatch once the acked position is known to hold another value.
//! Lost writes and reorderings need the end of the run: use [`super::check`] for those.
//! Every op costs O(1) amortized hash operations (plus the value's few read positions).

use std::collections::{HashMap, HashSet};

use crate::history::Op;

use super::anomaly::{ack_mismatch, duplicates_of, slot_conflict, Anomaly};
use super::index::{Index, Ingested, Outcome, Slot};

#[derive(Debug, Default)]
pub struct LiveChecker {
    index: Index,
    /// Which value the broker acknowledged at each position, to notice when someone else is read
    /// there.
    acked_slots: HashMap<Slot, usize>,
    /// Values already reported for an ack/read mismatch (reported once, unlike duplicates, whose
    /// every further offset is a further write).
    mismatched: HashSet<usize>,
}

impl LiveChecker {
    pub fn new() -> LiveChecker {
        LiveChecker::default()
    }

    /// Records `op` and returns the anomalies it made certain (usually none).
    pub fn observe(&mut self, op: &Op) -> Vec<Anomaly> {
        let mut out = Vec::new();
        match self.index.ingest(op) {
            Ingested::Acked(id) => {
                if let Some(ack) = self.index.values[id].ack_slot() {
                    self.acked_slots.insert(ack, id);
                }
                self.mismatch(id, &mut out);
            }
            Ingested::Failed(id) => {
                let v = &self.index.values[id];
                out.extend(v.reads.iter().map(|s| Anomaly::FailedButPresent {
                    value: v.value.to_string(),
                    partition: s.partition,
                    offset: s.offset,
                }));
            }
            // A re-read of a known position adds nothing new.
            Ingested::Read { id, slot, new_slot: true, conflict_with } => {
                if let Some(other) = conflict_with {
                    out.push(slot_conflict(&self.index, slot, id, other));
                }
                let v = &self.index.values[id];
                let at = (v.value.to_string(), slot.partition, slot.offset);
                match v.send.as_ref().map(|s| s.outcome) {
                    None => out.push(Anomaly::PhantomRead { value: at.0, partition: at.1, offset: at.2 }),
                    Some(Outcome::Fail) => {
                        out.push(Anomaly::FailedButPresent { value: at.0, partition: at.1, offset: at.2 })
                    }
                    _ => {}
                }
                match v.reads.len() {
                    0 | 1 => {}
                    // First duplication: show every partition involved, so a cross-partition
                    // duplicate is explained by the first report alone.
                    2 => out.extend(duplicates_of(&self.index, id, None)),
                    _ => out.extend(duplicates_of(&self.index, id, Some(slot))),
                }
                self.mismatch(id, &mut out);
                if let Some(&acked_here) = self.acked_slots.get(&slot) {
                    if acked_here != id {
                        self.mismatch(acked_here, &mut out);
                    }
                }
            }
            _ => {}
        }
        out
    }

    /// Value `id` was acked at one position and read elsewhere. That is only certain once its
    /// acked position has been read holding another value; until then a later read there could
    /// still turn the extra read into a duplicate instead.
    fn mismatch(&mut self, id: usize, out: &mut Vec<Anomaly>) {
        let v = &self.index.values[id];
        let Some(ack) = v.ack_slot() else { return };
        if v.reads.is_empty() || v.reads.contains(&ack) || self.mismatched.contains(&id) {
            return;
        }
        if self.index.slots.get(&ack).is_some_and(|&holder| holder != id) {
            self.mismatched.insert(id);
            out.push(ack_mismatch(&self.index, id, ack));
        }
    }
}
