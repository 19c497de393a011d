//! Replica divergence from per-replica digests.
//!
//! Only replicas that end at the same offset are comparable: a follower that is behind has a
//! shorter log and a different checksum without anything being wrong.

use std::collections::BTreeMap;

use super::{Anomaly, ReplicaDigest};

pub(crate) fn divergence(digests: &[ReplicaDigest]) -> Vec<Anomaly> {
    // BTreeMap so the verdict lists partitions in a stable order.
    let mut groups: BTreeMap<(&str, i32, i64), Vec<&ReplicaDigest>> = BTreeMap::new();
    for d in digests {
        groups.entry((d.topic.as_str(), d.partition, d.end_offset)).or_default().push(d);
    }
    groups
        .into_iter()
        .filter(|(_, ds)| ds.iter().any(|d| d.crc32c != ds[0].crc32c))
        .map(|((topic, partition, _), ds)| {
            let mut nodes: Vec<(i32, u32, i64)> =
                ds.iter().map(|d| (d.node, d.crc32c, d.end_offset)).collect();
            nodes.sort_unstable();
            Anomaly::ReplicaDivergence { topic: topic.to_string(), partition, nodes }
        })
        .collect()
}
