//! Power-cut fault: simulate losing the page cache. Every segment is cut back to the length it
//! had when its last completed fsync began, which is exactly what a real power loss could leave
//! (the kernel guarantees no more). Metadata files are always fsynced and are not touched.

use std::sync::atomic::Ordering;

use crate::error::{BrokerError, Result};
use crate::log::durability::{write_durable, OPEN, POWER_CUT};
use crate::log::partition::{entry_count, PartitionLog};
use crate::log::power_cut_report::{PowerCutPartition, PowerCutReport, REPORT_FILE};
use crate::log::store::LogStore;
use crate::log::{lock, now_ns};

impl LogStore {
    /// Blocks all further appends, cuts every segment to its synced length, writes (durably)
    /// `<dir>/power-cut-report.json` and returns the report. The caller then aborts.
    pub fn power_cut(&self) -> Result<PowerCutReport> {
        // Set before taking any partition lock: an append that already holds its lock finishes
        // (and is then cut like any unsynced write); every later one sees the state and fails.
        if self.ctx.state.compare_exchange(OPEN, POWER_CUT, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            return Err(BrokerError::ShuttingDown);
        }
        let at_ns = now_ns();
        let mut partitions = Vec::new();
        let mut first_err = None;
        for p in self.partitions() {
            match p.cut_to_synced() {
                Ok(r) => partitions.push(r),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
            p.poke();
        }
        if let Err(e) = self.votes.power_cut() {
            first_err.get_or_insert(e);
        }
        let report = PowerCutReport { at_ns, partitions };
        let json = serde_json::to_vec_pretty(&report)
            .map_err(|e| BrokerError::io("encode power-cut report", self.dir(), std::io::Error::other(e)))?;
        write_durable(self.dir(), REPORT_FILE, &json)?;
        let lost: i64 = report.partitions.iter().map(|p| p.lost_records).sum();
        tracing::warn!(file = %self.dir().join(REPORT_FILE).display(), lost_records = lost, "power cut simulated");
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}

impl PartitionLog {
    fn cut_to_synced(&self) -> Result<PowerCutPartition> {
        // The flush lock waits out an fsync in progress, so synced lengths are final here and
        // no flush can later acknowledge bytes this cut removed.
        let _flushing = lock(&self.flush_lock);
        let mut inner = lock(&self.inner);
        let before = inner.log_end;
        for seg in inner.segments.iter_mut() {
            if seg.len != seg.synced_len {
                let synced = seg.synced_len;
                seg.truncate_len(synced)?;
                seg.file.sync_all().map_err(|e| BrokerError::io("fsync cut segment", &seg.path, e))?;
                tracing::warn!(topic = %self.topic, partition = self.partition, offset = seg.next_offset(),
                    file = %seg.path.display(), length = synced, "power cut: segment cut to its synced length");
            }
        }
        // The log now ends where the first segment that lost data ends; later ones are empty.
        let after = inner
            .segments
            .iter()
            .rev()
            .find(|s| !s.index.is_empty())
            .map_or_else(|| inner.segments.first().map_or(0, |s| s.base_offset), |s| s.next_offset());
        if after != inner.flushed {
            tracing::error!(topic = %self.topic, partition = self.partition, offset = after, flushed = inner.flushed,
                file = %self.dir.display(), "power cut: synced lengths disagree with the flushed offset");
        }
        inner.log_end = after;
        inner.flushed = inner.flushed.min(after);
        inner.flushed_entries = inner.flushed_entries.min(entry_count(&inner));
        inner.recent.clear();
        self.publish(&inner);
        Ok(PowerCutPartition {
            topic: self.topic.clone(),
            partition: self.partition,
            log_end_offset: before,
            flushed_offset: after,
            lost_records: before - after,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::FsyncPolicy;
    use crate::log::test_batches::batch;
    use crate::log::LogStore;

    #[tokio::test]
    async fn never_policy_power_cut_loses_what_came_after_the_last_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Never, 300).unwrap();
        let p = s.create_partition("pc", 0).unwrap();
        p.append(&[batch(2), batch(2)], 0).unwrap();
        s.flush_all().unwrap();
        assert_eq!(p.offsets().flushed_offset, 4);
        for _ in 0..3 {
            p.append(&[batch(3)], 0).unwrap(); // rolls into never-fsynced segments
        }
        let report = s.power_cut().unwrap();
        assert_eq!(report.partitions.len(), 1);
        let r = &report.partitions[0];
        assert_eq!((r.log_end_offset, r.flushed_offset, r.lost_records), (13, 4, 9));
        assert!(p.append(&[batch(1)], 0).is_err(), "appends are blocked after a power cut");
        assert!(p.wait_flushed(13).await.is_err());
        p.wait_flushed(4).await.unwrap();
        assert!(dir.path().join("power-cut-report.json").exists());
        s.close().unwrap();
        drop((p, s));

        let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 300).unwrap();
        assert_eq!(rep.last_power_cut.as_ref(), Some(&report));
        assert_eq!(rep.partitions[0].log_end_offset, 4);
        assert_eq!(s.partition("pc", 0).unwrap().read(0, i64::MAX, usize::MAX).unwrap().len(), 2);
        assert!(dir.path().join(format!("power-cut-report.{}.seen.json", report.at_ns)).exists());
        s.close().unwrap();
        drop(s);
        let (_s, rep) = LogStore::open(dir.path(), FsyncPolicy::Never, 300).unwrap();
        assert!(rep.last_power_cut.is_none(), "a power cut is reported by one start-up only");
    }

    #[tokio::test]
    async fn always_policy_power_cut_loses_nothing_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Always, 300).unwrap();
        let p = s.create_partition("pc", 3).unwrap();
        for _ in 0..5 {
            let out = p.append(&[batch(2)], 1).unwrap();
            p.wait_flushed(out.last_offset + 1).await.unwrap();
        }
        let report = s.power_cut().unwrap();
        assert_eq!((report.partitions[0].lost_records, report.partitions[0].flushed_offset), (0, 10));
        drop((p, s));
        let (s, rep) = LogStore::open(dir.path(), FsyncPolicy::Always, 300).unwrap();
        assert_eq!(rep.partitions[0].log_end_offset, 10);
        assert_eq!(rep.last_power_cut.unwrap().partitions[0].lost_records, 0);
        assert_eq!(s.partition("pc", 3).unwrap().read(0, i64::MAX, usize::MAX).unwrap().len(), 5);
    }

    /// The batched write path under a power cut: many groups vote (one vote log, one sync per
    /// round) and append at once. Whatever was acknowledged — a vote `save_vote` returned for, a
    /// record `wait_flushed` confirmed — is there after the restart. A vote forgotten would let
    /// the node vote again in a term it already voted in: two leaders in one term.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn power_cut_amid_many_groups_voting_forgets_no_acknowledged_vote_or_record() {
        use std::collections::BTreeMap;
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::{Arc, Mutex};
        const GROUPS: usize = 200;
        const ACKED_BEFORE_CUT: u64 = 3_000;
        let dir = tempfile::tempdir().unwrap();
        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Always, 4096).unwrap();
        let acked_votes = Arc::new(AtomicU64::new(0));
        // group -> (last vote acknowledged, log end acknowledged)
        let acked: Arc<Mutex<BTreeMap<String, (u64, i64)>>> = Arc::default();
        let mut tasks = Vec::new();
        for g in 0..GROUPS {
            let (s, acked, acked_votes) = (Arc::clone(&s), Arc::clone(&acked), Arc::clone(&acked_votes));
            tasks.push(tokio::spawn(async move {
                let p = s.create_partition("votes", g as i32).unwrap();
                let group = format!("votes-{g}");
                for term in 1u64.. {
                    let Ok(out) = p.append(&[batch(1)], 0) else { return };
                    if p.wait_flushed(out.last_offset + 1).await.is_err() {
                        return;
                    }
                    if s.save_vote(&group, &term.to_be_bytes()).await.is_err() {
                        return;
                    }
                    acked.lock().unwrap().insert(group.clone(), (term, out.last_offset + 1));
                    acked_votes.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while acked_votes.load(Ordering::SeqCst) < ACKED_BEFORE_CUT {
            assert!(
                std::time::Instant::now() < deadline,
                "fewer than {ACKED_BEFORE_CUT} votes acknowledged in 60 s"
            );
            tokio::task::yield_now().await;
        }
        s.power_cut().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let acked = acked.lock().unwrap().clone();
        assert_eq!(acked.len(), GROUPS, "every group voted before the cut");
        drop(s);

        let (s, _) = LogStore::open(dir.path(), FsyncPolicy::Always, 4096).unwrap();
        for (group, (term, end)) in &acked {
            let vote =
                s.read_vote(group).unwrap_or_else(|| panic!("{group}: its vote for term {term} is gone"));
            let kept = u64::from_be_bytes(vote.as_slice().try_into().unwrap());
            assert!(kept >= *term, "{group}: vote for term {term} was acknowledged, {kept} survived");
            let g: i32 = group.trim_start_matches("votes-").parse().unwrap();
            let log_end = s.partition("votes", g).unwrap().offsets().log_end_offset;
            assert!(log_end >= *end, "{group}: records up to {end} were acknowledged, {log_end} survived");
        }
    }
}
