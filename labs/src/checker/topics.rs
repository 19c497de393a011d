//! The verdict per topic: what was acknowledged, lost, duplicated and otherwise wrong in each
//! topic of a multi-topic run (every check itself already keys on topic and partition).
//!
//! An anomaly's topic comes from its value (values are unique across a run's topics: a producer
//! numbers its sends whatever the topic), or from the topic it names (group anomalies, replica
//! divergence).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::anomaly::Anomaly;
use crate::history::{History, OpKind, OpType};

/// One topic's share of a verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct TopicCounts {
    pub acked: u64,
    pub lost: u64,
    /// Distinct duplicated values.
    pub duplicates: u64,
    /// Every other anomaly.
    pub other: u64,
}

/// Counts per topic, for every topic a value was sent to.
pub(crate) fn by_topic(history: &History, anomalies: &[Anomaly]) -> BTreeMap<String, TopicCounts> {
    let mut out: BTreeMap<String, TopicCounts> = BTreeMap::new();
    let mut topic_of: HashMap<&str, &str> = HashMap::new();
    for op in history.ops.iter().filter(|op| op.kind == OpKind::Send) {
        let entry = out.entry(op.topic.clone()).or_default();
        if op.op_type == OpType::Ok {
            entry.acked += 1;
        }
        if let Some(v) = op.value.as_deref() {
            topic_of.insert(v, op.topic.as_str());
        }
    }
    let mut duplicated: Vec<(&str, &str)> = Vec::new();
    for a in anomalies {
        let by_value = |v: &str| topic_of.get(v).map(|t| t.to_string());
        let topic = match a {
            Anomaly::PollSkip { topic, .. }
            | Anomaly::NonmonotonicPoll { topic, .. }
            | Anomaly::Unseen { topic, .. }
            | Anomaly::CommittedOffsetBackwards { topic, .. }
            | Anomaly::ReplicaDivergence { topic, .. } => Some(topic.clone()).filter(|t| !t.is_empty()),
            Anomaly::LostWrite { value, .. }
            | Anomaly::Duplicate { value, .. }
            | Anomaly::InconsistentOffset { value, .. }
            | Anomaly::PhantomRead { value, .. }
            | Anomaly::FailedButPresent { value, .. } => by_value(value),
            Anomaly::Reordered { first_value, .. } | Anomaly::NonmonotonicSend { first_value, .. } => {
                by_value(first_value)
            }
        };
        // An anomaly whose topic is unknown (a phantom value nobody sent) is counted under "?".
        let topic = topic.unwrap_or_else(|| "?".into());
        let c = out.entry(topic).or_default();
        match a {
            Anomaly::LostWrite { .. } => c.lost += 1,
            Anomaly::Duplicate { value, .. } => {
                duplicated.push((topic_of.get(value.as_str()).copied().unwrap_or("?"), value))
            }
            _ => c.other += 1,
        }
    }
    // A value duplicated in two partitions is one duplicated write, as in `duplicate_count`.
    duplicated.sort_unstable();
    duplicated.dedup();
    for (topic, _) in duplicated {
        out.entry(topic.to_string()).or_default().duplicates += 1;
    }
    out
}
