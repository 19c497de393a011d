//! What a state snapshot carries about each node's Raft groups and partitions, at any count.
//!
//! Every snapshot carries each node's summaries (leaders per node, leaderless groups, max term,
//! the replica furthest behind on fsync) and one page of up to `PAGE` groups and `PAGE` partitions.
//! Up to `PAGE` per node that page is everything and says it is complete. Above, the page is the
//! next one; the cursor moves on every snapshot, so every record is refreshed every
//! ceil(N / PAGE) snapshots while one snapshot stays bounded by `PAGE` x nodes records whatever the
//! partition count. Leadership changes do not wait for their page: they reach front ends at once
//! as timeline events from the nodes' event streams. Front ends merge pages (`complete: false`)
//! and replace on complete ones.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::lab::protocol::{PartitionReport, RaftReport};
use crate::node_client::typed::{self, StateParts};

/// Records of each kind per node in one snapshot: with three nodes about 380 KB of JSON every
/// 500 ms whatever the partition count (1.3 MB at 1,000 partitions and 13 MB at 10,000 when every
/// snapshot carried everything); 1,000 partitions are refreshed every 2 s, 10,000 every 20 s.
pub const PAGE: usize = 250;

/// A node that does not answer within this (paused, overloaded) is left out of one snapshot.
const CALL_LIMIT: Duration = Duration::from_secs(1);

/// Where each node's next page starts, and how many records it had last time.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    groups_at: usize,
    groups_total: usize,
    partitions_at: usize,
    partitions_total: usize,
}

/// One node's part of a snapshot.
pub struct NodeDetail {
    pub raft: RaftReport,
    pub partitions: PartitionReport,
}

#[derive(Debug)]
pub struct Pager {
    page: usize,
    cursors: Mutex<HashMap<i32, Cursor>>,
}

impl Default for Pager {
    fn default() -> Self {
        Pager::with_page(PAGE)
    }
}

impl Pager {
    pub fn with_page(page: usize) -> Pager {
        Pager { page: page.max(1), cursors: Mutex::default() }
    }

    fn cursor(&self, id: i32) -> Cursor {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner()).get(&id).copied().unwrap_or_default()
    }

    fn store(&self, id: i32, c: Cursor) {
        self.cursors.lock().unwrap_or_else(|p| p.into_inner()).insert(id, c);
    }

    /// This node's records for the next snapshot; None if it did not answer. Three small calls:
    /// the counts, then one page of groups and one of partitions (all of them when they fit).
    pub async fn fetch(&self, id: i32, addr: SocketAddr) -> Option<NodeDetail> {
        let mut c = self.cursor(id);
        let s = typed::state(addr, StateParts::SUMMARY, CALL_LIMIT).await.ok()?;
        c.groups_total = s.raft.as_ref().map_or(0, |r| r.summary.groups);
        c.partitions_total = s.partition_summary.partitions;
        // Counts shrink when a topic is deleted: start again from the first page.
        if c.groups_at >= c.groups_total {
            c.groups_at = 0;
        }
        if c.partitions_at >= c.partitions_total {
            c.partitions_at = 0;
        }
        let mut raft = s.raft;
        if let Some(raft) = &mut raft {
            raft.groups = typed::raft_groups(addr, c.groups_at, self.page, CALL_LIMIT).await.ok()?;
        }
        let partitions = typed::partitions(addr, c.partitions_at, self.page, CALL_LIMIT).await.ok()?;
        let detail = NodeDetail {
            raft: RaftReport {
                node: id,
                raft,
                complete: c.groups_at == 0 && c.groups_total <= self.page,
                offset: c.groups_at,
                total: c.groups_total,
            },
            partitions: PartitionReport {
                node: id,
                partitions,
                summary: s.partition_summary,
                complete: c.partitions_at == 0 && c.partitions_total <= self.page,
                offset: c.partitions_at,
                total: c.partitions_total,
            },
        };
        c.groups_at = next_page(c.groups_at, self.page, c.groups_total);
        c.partitions_at = next_page(c.partitions_at, self.page, c.partitions_total);
        self.store(id, c);
        Some(detail)
    }
}

/// The start of the page after the one at `at`, wrapping to 0 past the end.
fn next_page(at: usize, page: usize, total: usize) -> usize {
    if at + page >= total {
        0
    } else {
        at + page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_every_record_then_wrap() {
        let mut at = 0;
        let mut starts = Vec::new();
        for _ in 0..5 {
            starts.push(at);
            at = next_page(at, 500, 1_200);
        }
        assert_eq!(starts, vec![0, 500, 1_000, 0, 500]);
        assert_eq!(next_page(0, 500, 500), 0, "a single page wraps at once");
        assert_eq!(next_page(0, 500, 0), 0);
    }

    /// A real three-node cluster with 7 partitions: a page of 250 holds everything and says so;
    /// paged 3 at a time, the pages together cover every group and partition of the node, each
    /// marked incomplete, with the summaries in every one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn snapshots_page_through_every_group_and_partition() {
        use crate::supervisor::{Supervisor, SupervisorConfig};
        let root = std::env::temp_dir().join(format!("clusterlab-detail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut config = SupervisorConfig::new(crate::supervisor::tests_broker_bin());
        config.data_root = Some(root.clone());
        config.fsync = "interval:50".into();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let sup = Supervisor::new(config, tx).await.expect("lab laid out");
        sup.start_all().await.unwrap();
        crate::workload::admin::create_topic(
            &sup.bootstrap_servers(),
            "paged",
            7,
            3,
            Duration::from_secs(20),
        )
        .await
        .expect("topic created");
        let addr = sup.node_info(1).unwrap().http;
        // The topic exists once its metadata commits; each node then starts its groups.
        let t = std::time::Instant::now();
        while typed::raft_summary(addr, CALL_LIMIT).await.ok().map(|s| s.groups) != Some(8) {
            assert!(t.elapsed() < Duration::from_secs(20), "node 1 did not host 8 groups within 20 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let whole = Pager::default().fetch(1, addr).await.expect("node 1 answers");
        assert!(whole.raft.complete);
        assert_eq!(whole.raft.total, 8, "7 partitions and the controller: {:?}", whole.raft);
        let raft = whole.raft.raft.as_ref().expect("cluster mode");
        assert_eq!(raft.groups.len(), 8);
        assert!(raft.metadata.is_none(), "metadata stays on the node");
        assert!(whole.partitions.complete);
        let pager = Pager::with_page(3);
        let (mut groups, mut parts) = (std::collections::BTreeSet::new(), std::collections::BTreeSet::new());
        let mut offsets = Vec::new();
        while groups.len() < 8 || parts.len() < 7 {
            assert!(
                offsets.len() < 10,
                "10 pages of 3 did not cover 8 groups and 7 partitions: {groups:?} {parts:?}"
            );
            let d = pager.fetch(1, addr).await.expect("node 1 answers");
            assert!(!d.raft.complete);
            offsets.push(d.raft.offset);
            let raft = d.raft.raft.as_ref().expect("cluster mode");
            assert_eq!(raft.summary.groups, 8, "summary in every page: {:?}", d.raft);
            assert!(d.partitions.summary.partitions >= 7);
            assert!(raft.groups.len() <= 3 && !raft.groups.is_empty());
            groups.extend(raft.groups.iter().map(|g| g.group.to_string()));
            let page = &d.partitions.partitions;
            assert!(page.len() <= 3);
            parts.extend(page.iter().filter(|p| p.topic == "paged").map(|p| p.partition));
        }
        assert_eq!(&offsets[..3], &[0, 3, 6], "pages of groups in order");
        assert!(groups.contains("controller") && groups.contains("paged-6"));
        assert_eq!(parts.into_iter().collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        assert!(offsets.iter().skip(3).all(|&o| o == 0 || o == 3 || o == 6), "the cursor wraps: {offsets:?}");
        sup.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&root);
    }
}
