//! What the cluster tests read from the nodes (`/state`, `/digest`) and the cluster-level
//! conditions they wait for (a controller, every partition led, replicas equal, a node caught
//! up), each wait bounded and naming what it waited for; and the logs a failing test prints.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use broker::endpoint::PartitionDigest;
use broker::log::ReplicaDigest;
use broker::state::StateSnapshot;
use broker::telemetry::wire::{claimed_leader, partition_group, GroupState, Role};

use crate::harness::{tail_lines, wait_for, Cluster, CLUSTER_TIMEOUT};

/// One partition replica as `/digest` reports it: its high watermark and the digest up to it.
pub type Replica = (i64, ReplicaDigest);

impl Cluster {
    /// `GET /state` of node `id` in the node's own type.
    pub fn snapshot(&self, id: i32) -> Result<StateSnapshot> {
        crate::endpoint::get(self.node(id).http, "/state").with_context(|| format!("node {id}"))
    }

    /// `GET <path>` of node `id` read into the node's own type for it.
    pub fn get<T: serde::de::DeserializeOwned + Send>(&self, id: i32, path: &str) -> Result<T> {
        crate::endpoint::get(self.node(id).http, path).with_context(|| format!("node {id}"))
    }

    pub fn digest(&self, id: i32) -> Result<Vec<PartitionDigest>> {
        self.get(id, "/digest")
    }

    /// The controller leader, once every running node names the same one and it is running.
    pub fn controller_leader(&mut self) -> Result<Option<i32>> {
        let running = self.running();
        let mut seen = Vec::new();
        for &id in &running {
            seen.push(self.snapshot(id)?.raft.and_then(|r| r.controller_leader).map(|v| v as i32));
        }
        match seen.first() {
            Some(Some(l)) if seen.iter().all(|s| *s == Some(*l)) && running.contains(l) => Ok(Some(*l)),
            _ => Ok(None),
        }
    }

    pub fn wait_controller(&mut self, timeout: Duration) -> Result<i32> {
        let running = self.running();
        wait_for(&format!("a controller leader known by all running nodes {running:?}"), timeout, || {
            self.controller_leader()
        })
    }

    /// One Raft group's state as node `from` reports it.
    pub fn group_on(&self, from: i32, group: &str) -> Result<Option<GroupState>> {
        let groups = self.snapshot(from)?.raft.map(|r| r.groups).unwrap_or_default();
        Ok(groups.into_iter().find(|g| g.group == group))
    }

    /// The node that is Leader of `topic-p` in its own /state (highest term if several claim it).
    pub fn leader_of(&mut self, topic: &str, p: i32) -> Result<Option<(i32, u64)>> {
        let group = partition_group(topic, p);
        let reports: Vec<(i32, GroupState)> = self
            .running()
            .into_iter()
            .filter_map(|id| self.group_on(id, &group).ok().flatten().map(|g| (id, g)))
            .collect();
        Ok(claimed_leader(reports.iter().map(|(id, g)| (*id, g))).map(|(id, g)| (id, g.term)))
    }

    /// Waits until every partition of `topic` has a leader that all running replicas follow.
    pub fn wait_all_leaders(&mut self, topic: &str, partitions: i32) -> Result<BTreeMap<i32, (i32, u64)>> {
        let running = self.running();
        wait_for(
            &format!("a leader for every partition of {topic}, agreed by nodes {running:?}"),
            CLUSTER_TIMEOUT,
            || {
                let mut out = BTreeMap::new();
                for p in 0..partitions {
                    let Some((l, term)) = self.leader_of(topic, p)? else { return Ok(None) };
                    for &id in &running {
                        let Some(g) = self.group_on(id, &partition_group(topic, p))? else { return Ok(None) };
                        if g.leader != Some(l as u64) || g.term != term {
                            return Ok(None);
                        }
                    }
                    out.insert(p, (l, term));
                }
                Ok(Some(out))
            },
        )
    }

    /// Polls until, for every partition of `topic`, every running node reports the same digest
    /// and high watermark (and at least `partitions` partitions exist on each).
    pub fn digests_equal(
        &mut self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<BTreeMap<i32, Replica>> {
        let running = self.running();
        let mut last = String::new();
        let r = wait_for(
            &format!("equal /digest of every partition of {topic} on nodes {running:?}"),
            timeout,
            || {
                let mut per: BTreeMap<i32, Vec<(i32, Replica)>> = BTreeMap::new();
                for &id in &running {
                    for e in self.digest(id)?.into_iter().filter(|e| e.topic == topic) {
                        per.entry(e.partition).or_default().push((id, (e.high_watermark, e.digest)));
                    }
                }
                last = format!("{per:?}");
                if per.len() < partitions as usize {
                    return Ok(None);
                }
                let mut out = BTreeMap::new();
                for (p, v) in per {
                    if v.len() != running.len() || v.iter().any(|(_, d)| *d != v[0].1) {
                        return Ok(None);
                    }
                    out.insert(p, v[0].1.clone());
                }
                Ok(Some(out))
            },
        );
        r.with_context(|| format!("last digests seen: {last}"))
    }

    /// After a restart: waits until `id` follows a leader in every Raft group it belongs to and has
    /// applied at least what each group's leader had in its log when this call started.
    pub fn wait_caught_up(&mut self, id: i32, timeout: Duration) -> Result<()> {
        let running = self.running();
        // Leader's last_log_index per group, from the leaders' own /state.
        let mut targets: BTreeMap<String, u64> = BTreeMap::new();
        wait_for(&format!("a leader for every Raft group node {id} belongs to"), timeout, || {
            targets.clear();
            let groups: Vec<String> =
                raft_groups(&self.snapshot(id)?).into_iter().map(|g| g.group.to_string()).collect();
            if groups.is_empty() {
                return Ok(None);
            }
            let mut all = Vec::new();
            for &n in &running {
                all.extend(raft_groups(&self.snapshot(n)?));
            }
            for g in groups {
                let lead =
                    all.iter().filter(|x| x.group == g && x.role == Role::Leader).max_by_key(|x| x.term);
                let Some(lead) = lead else { return Ok(None) };
                targets.insert(g, lead.last_log_index.unwrap_or(0));
            }
            Ok(Some(()))
        })?;
        let mut lag = String::new();
        wait_for(&format!("node {id} to apply every group's leader log as of its restart"), timeout, || {
            let mine = raft_groups(&self.snapshot(id)?);
            let mut behind = Vec::new();
            for (g, target) in &targets {
                let Some(x) = mine.iter().find(|x| &x.group == g) else {
                    behind.push(format!("{g}: missing"));
                    continue;
                };
                let applied = x.applied_index.unwrap_or(0);
                if applied < *target || x.leader.is_none() {
                    behind.push(format!(
                        "{g}: applied {applied} < {target} (role {:?}, leader {:?})",
                        x.role, x.leader
                    ));
                }
            }
            lag = behind.join("; ");
            Ok(behind.is_empty().then_some(()))
        })
        .with_context(|| format!("still behind: {lag}"))
    }

    /// stderr tails and a /state summary of every node, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = Vec::new();
        for n in &self.nodes {
            out.push(format!("----- node {} stderr -----\n{}", n.id, tail_lines(&n.stderr(), lines)));
        }
        for n in &self.nodes {
            let Ok(s) = self.snapshot(n.id) else {
                out.push(format!("----- node {}: no /state -----", n.id));
                continue;
            };
            out.push(format!(
                "----- node {} /state summary (controller_leader {:?}) -----",
                n.id,
                s.raft.as_ref().and_then(|r| r.controller_leader)
            ));
            for g in raft_groups(&s) {
                out.push(format!(
                    "  raft {} role {:?} term {} leader {:?} last_log {:?} applied {:?} matched {:?}",
                    g.group, g.role, g.term, g.leader, g.last_log_index, g.applied_index, g.matched
                ));
            }
            for p in &s.partitions {
                let o = &p.offsets;
                out.push(format!(
                    "  log {}-{} leo {} hw {} flushed {}",
                    p.topic, p.partition, o.log_end_offset, o.high_watermark, o.flushed_offset
                ));
            }
        }
        out.join("\n")
    }
}

/// Every Raft group a node reports (none when it runs no cluster).
fn raft_groups(s: &StateSnapshot) -> Vec<GroupState> {
    s.raft.as_ref().map(|r| r.groups.clone()).unwrap_or_default()
}
