//! Failover under load: SIGKILL the leader of partition 0 while a paced producer writes to it,
//! and measure how long the client saw no acks.
//!
//! A producer sends one message every `pace` to partition 0 (acks=all, idempotent) and records
//! the time of every ack. Per kill: kill the current p0 leader, poll /state of the survivors
//! until another node leads p0 (election time), wait for the first ack after the kill, restart
//! the killed node and wait until its p0 applied index reaches the leader's, settle, repeat.
//! The unavailability of a kill is computed afterwards from the sorted ack times.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;

use crate::bench::cluster::{leader_of, partition_group, raft_view, Cluster, POLL};
use crate::bench::report::SmallSummary;
use crate::error::{LabError, Result};

/// Bounds of each step of one kill.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);
const FIRST_ACK_TIMEOUT: Duration = Duration::from_secs(30);
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Steady load between the catch-up and the next kill, so "the last ack before the kill" is recent.
const SETTLE: Duration = Duration::from_millis(300);
/// Up to this much more, drawn per kill from a fixed seed. librdkafka re-asks for leaders on a
/// 1 s timer, and a cycle's steps (first ack after the kill, restart, catch-up) take about the
/// same time each cycle: with a fixed pause every kill fell at the same phase of that timer, so
/// the unavailability of all 20 kills moved together (by up to a second) whenever a broker change
/// shifted the catch-up by a few ms. A pause spread over a whole period samples every phase.
const SETTLE_JITTER_MS: u64 = 1_000;
const SETTLE_SEED: u64 = 0x5e771e;

/// What one kill cost, as the client and /state saw it.
#[derive(Debug, Clone, Serialize)]
pub struct KillRecord {
    pub killed_node: i32,
    pub old_term: u64,
    pub new_leader: i32,
    pub new_term: u64,
    /// Kill -> a surviving node reports itself Leader of p0 in /state.
    pub election_ms: f64,
    /// Last ack before the kill -> first ack after it.
    pub unavailable_ms: f64,
    /// Largest gap between consecutive acks from the last ack before the kill to the end of the
    /// cycle (restart and catch-up included); equals `unavailable_ms` unless acks from the dead
    /// leader were still in flight at the kill or the restart disturbed p0 again.
    pub max_gap_in_cycle_ms: f64,
    /// SIGKILL -> the restarted node's p0 applied index reached the leader's.
    pub restart_and_catch_up_ms: f64,
}

/// One kill as measured during the run; turned into a [`KillRecord`] once all acks are in.
struct Cycle {
    kill_at: Duration,
    end: Duration,
    killed: i32,
    old_term: u64,
    new_leader: i32,
    new_term: u64,
    election: Duration,
    caught_up: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub fsync: String,
    pub pace_us: u64,
    pub message_bytes: usize,
    pub producer_config: Vec<(String, String)>,
    /// Messages librdkafka accepted for sending.
    pub sent: u64,
    pub acked: u64,
    /// Messages librdkafka refused to enqueue (e.g. topic believed deleted) plus delivery errors.
    pub failed: u64,
    pub kills: Vec<KillRecord>,
    pub unavailable: SmallSummary,
    pub max_gap_in_cycle: SmallSummary,
    pub election: SmallSummary,
    pub restart_and_catch_up: SmallSummary,
}

/// Gaps around a kill at `kill_at`, from ack times sorted ascending: (last ack before -> first
/// ack after, largest consecutive gap from the last ack before up to `cycle_end`). `None` when
/// there is no ack on one side of the kill.
pub fn outage(acks: &[Duration], kill_at: Duration, cycle_end: Duration) -> Option<(Duration, Duration)> {
    let after = acks.partition_point(|&t| t <= kill_at);
    let before = after.checked_sub(1)?;
    let first_after = *acks.get(after)?;
    let end = acks.partition_point(|&t| t <= cycle_end).max(after + 1);
    let max_gap = acks[before..end].windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default();
    Some((first_after - acks[before], max_gap))
}

/// The paced producer and the ack times it records (offsets from `started`).
struct PacedLoad {
    started: Instant,
    acks: Arc<Mutex<Vec<Duration>>>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl PacedLoad {
    fn start(
        producer: FutureProducer,
        topic: String,
        size: usize,
        pace: Duration,
        max_run: Duration,
    ) -> Self {
        let started = Instant::now();
        let (acks, sent, failed, stop) = (
            Arc::<Mutex<Vec<Duration>>>::default(),
            Arc::<AtomicU64>::default(),
            Arc::<AtomicU64>::default(),
            Arc::<AtomicBool>::default(),
        );
        let (a, s, f, st) = (Arc::clone(&acks), Arc::clone(&sent), Arc::clone(&failed), Arc::clone(&stop));
        // Owned: `stop_and_wait` stops it, awaits it (bounded) and aborts it past that; drop aborts it.
        let task = tokio::spawn(async move {
            let payload = vec![b'x'; size];
            let mut tick = tokio::time::interval(pace);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // One waiter per message in flight, owned here: the ones still waiting when this task
            // ends are aborted with the set.
            let mut deliveries = tokio::task::JoinSet::new();
            while !st.load(Ordering::Relaxed) && started.elapsed() < max_run {
                tick.tick().await;
                while deliveries.try_join_next().is_some() {} // reap the finished ones
                let record: FutureRecord<'_, (), [u8]> =
                    FutureRecord::to(&topic).partition(0).payload(payload.as_slice());
                match producer.send_result(record) {
                    Ok(delivery) => {
                        s.fetch_add(1, Ordering::Relaxed);
                        let (a, f) = (Arc::clone(&a), Arc::clone(&f));
                        deliveries.spawn(async move {
                            match delivery.await {
                                Ok(Ok(_)) => a.lock().expect("ack list lock").push(started.elapsed()),
                                _ => {
                                    f.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        });
                    }
                    Err(_) => {
                        f.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Keep the producer alive until its queue drains, bounded by its message timeout;
            // ends when the flush returns.
            let _ = tokio::task::spawn_blocking(move || {
                rdkafka::producer::Producer::flush(&producer, Duration::from_secs(35))
            })
            .await;
            // After a flush every delivery has its answer, so the waiters finish now (after a
            // flush that timed out, `stop_and_wait`'s bound aborts this task and them).
            while deliveries.join_next().await.is_some() {}
        });
        PacedLoad { started, acks, sent, failed, stop, task }
    }

    /// Stops sending and waits for the task to flush and record the last acks; past the bound
    /// (the flush's own bound plus slack) it is aborted, so it never outlives the run.
    async fn stop_and_wait(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if tokio::time::timeout(Duration::from_secs(40), &mut self.task).await.is_err() {
            self.task.abort();
        }
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    fn last_ack(&self) -> Option<Duration> {
        self.acks.lock().expect("ack list lock").iter().copied().max()
    }

    /// Waits until an ack later than `t` is recorded.
    async fn wait_ack_after(&self, t: Duration, timeout: Duration, what: &str) -> Result<()> {
        let started = Instant::now();
        while self.last_ack().is_none_or(|a| a <= t) {
            if started.elapsed() >= timeout {
                return Err(LabError::Timeout { what: what.into(), secs: timeout.as_secs_f64() });
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(())
    }
}

impl Drop for PacedLoad {
    /// A run dropped mid-way (Ctrl-C) takes its load with it; after `stop_and_wait` a no-op.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The producer configuration of the paced load; returned so the report can show it.
pub fn producer_config(bootstrap: &str, linger_ms: u32, extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut config: Vec<(String, String)> = [
        ("bootstrap.servers", bootstrap.to_string()),
        ("acks", "all".into()),
        ("enable.idempotence", "true".into()),
        ("linger.ms", linger_ms.to_string()),
        ("message.timeout.ms", "30000".into()),
        ("client.id", "clusterlab-failover".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        config.retain(|(key, _)| key != k);
        config.push((k.clone(), v.clone()));
    }
    config
}

/// Runs `kills` kill/restart cycles against a cluster whose `topic` already has leaders.
pub async fn run(
    cluster: &Cluster,
    topic: &str,
    fsync: &str,
    kills: usize,
    pace: Duration,
    linger_ms: u32,
    extra: &[(String, String)],
) -> Result<FailoverReport> {
    let config = producer_config(&cluster.bootstrap(), linger_ms, extra);
    let mut cfg = ClientConfig::new();
    for (k, v) in &config {
        cfg.set(k, v);
    }
    let producer: FutureProducer = cfg.create().map_err(LabError::kafka("creating the failover producer"))?;
    let size = 100;
    // Generous bound on the load's lifetime: every step of every kill at its timeout, plus slack.
    let max_run = (ELECTION_TIMEOUT + FIRST_ACK_TIMEOUT + CATCH_UP_TIMEOUT + SETTLE * 2) * kills as u32
        + Duration::from_secs(60);
    let mut load = PacedLoad::start(producer, topic.to_string(), size, pace, max_run);
    let result = kill_cycles(cluster, &load, &partition_group(topic, 0), kills).await;
    // Stopped on success and on error alike, before the acks are read.
    load.stop_and_wait().await;
    let cycles = result?;
    let mut acks = load.acks.lock().expect("ack list lock").clone();
    acks.sort();
    let kills = kill_records(cycles, &acks);
    Ok(FailoverReport {
        fsync: fsync.to_string(),
        pace_us: pace.as_micros() as u64,
        message_bytes: size,
        producer_config: config,
        sent: load.sent.load(Ordering::Relaxed),
        acked: acks.len() as u64,
        failed: load.failed.load(Ordering::Relaxed),
        unavailable: SmallSummary::of(kills.iter().map(|k| k.unavailable_ms)),
        max_gap_in_cycle: SmallSummary::of(kills.iter().map(|k| k.max_gap_in_cycle_ms)),
        election: SmallSummary::of(kills.iter().map(|k| k.election_ms)),
        restart_and_catch_up: SmallSummary::of(kills.iter().map(|k| k.restart_and_catch_up_ms)),
        kills,
    })
}

/// Once the load is acknowledged and steady, `kills` cycles one after the other.
async fn kill_cycles(cluster: &Cluster, load: &PacedLoad, group: &str, kills: usize) -> Result<Vec<Cycle>> {
    load.wait_ack_after(Duration::ZERO, FIRST_ACK_TIMEOUT, "waiting for the first ack of the paced load")
        .await?;
    tokio::time::sleep(SETTLE).await;
    let mut rng = ChaCha8Rng::seed_from_u64(SETTLE_SEED);
    let mut cycles = Vec::with_capacity(kills);
    for k in 0..kills {
        let settle = SETTLE + Duration::from_millis(rng.random_range(0..SETTLE_JITTER_MS));
        cycles.push(kill_cycle(cluster, load, group, k, settle).await?);
    }
    Ok(cycles)
}

/// One cycle: kill the leader of `group`, time the election and the first ack after the kill,
/// restart the killed node and wait until it caught up, then let the load `settle`.
async fn kill_cycle(
    cluster: &Cluster,
    load: &PacedLoad,
    group: &str,
    k: usize,
    settle: Duration,
) -> Result<Cycle> {
    let (leader, old_term) = wait_leader(cluster, group, None).await?;
    let kill_at = load.now();
    cluster.kill(leader).await?;
    let (new_leader, new_term) = wait_leader(cluster, group, Some(leader)).await?;
    let election = load.now() - kill_at;
    load.wait_ack_after(kill_at, FIRST_ACK_TIMEOUT, "waiting for the first ack after a kill").await?;
    cluster.restart(leader).await?;
    wait_caught_up(cluster, group, leader).await?;
    let caught_up = load.now() - kill_at;
    tokio::time::sleep(settle).await;
    tracing::info!(
        kill = k + 1,
        killed = leader,
        new_leader,
        election_ms = election.as_millis() as u64,
        "kill cycle done"
    );
    let end = load.now();
    Ok(Cycle { kill_at, end, killed: leader, old_term, new_leader, new_term, election, caught_up })
}

/// What each cycle cost, from the ack times sorted ascending.
fn kill_records(cycles: Vec<Cycle>, acks: &[Duration]) -> Vec<KillRecord> {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    cycles
        .into_iter()
        .map(|c| {
            let (gap, max_gap) =
                outage(acks, c.kill_at, c.end).map_or((f64::NAN, f64::NAN), |(g, m)| (ms(g), ms(m)));
            KillRecord {
                killed_node: c.killed,
                old_term: c.old_term,
                new_leader: c.new_leader,
                new_term: c.new_term,
                election_ms: ms(c.election),
                unavailable_ms: gap,
                max_gap_in_cycle_ms: max_gap,
                restart_and_catch_up_ms: ms(c.caught_up),
            }
        })
        .collect()
}

/// Polls /state until some node other than `not` leads `group`; returns (node, term).
async fn wait_leader(cluster: &Cluster, group: &str, not: Option<i32>) -> Result<(i32, u64)> {
    let started = Instant::now();
    loop {
        if let Some((id, term)) = leader_of(&cluster.views().await, group) {
            if Some(id) != not {
                return Ok((id, term));
            }
        }
        if started.elapsed() >= ELECTION_TIMEOUT {
            return Err(LabError::Timeout {
                what: format!("waiting for a leader of {group} other than {not:?}"),
                secs: ELECTION_TIMEOUT.as_secs_f64(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Polls until node `id`'s applied index of `group` reaches the leader's (read first, so under
/// load "reaches" means >= the value the leader had a moment earlier).
async fn wait_caught_up(cluster: &Cluster, group: &str, id: i32) -> Result<()> {
    let started = Instant::now();
    loop {
        let views = cluster.views().await;
        if let Some((leader, _)) = leader_of(&views, group) {
            let leader_applied = views
                .iter()
                .find(|v| v.node_id == leader as u64)
                .and_then(|v| crate::bench::cluster::group(v, group))
                .and_then(|g| g.applied_index);
            let node_applied = raft_view(cluster.addr(id)?.http)
                .await
                .ok()
                .and_then(|v| crate::bench::cluster::group(&v, group).and_then(|g| g.applied_index));
            if let (Some(l), Some(n)) = (leader_applied, node_applied) {
                if leader == id || n >= l {
                    return Ok(());
                }
            }
        }
        if started.elapsed() >= CATCH_UP_TIMEOUT {
            return Err(LabError::Timeout {
                what: format!("waiting for node {id} to catch up on {group}"),
                secs: CATCH_UP_TIMEOUT.as_secs_f64(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn gap_runs_from_last_ack_before_to_first_after() {
        let acks = ms(&[1, 2, 3, 4, 450, 451, 452, 900]);
        let (gap, max_gap) = outage(&acks, Duration::from_millis(5), Duration::from_millis(452)).unwrap();
        assert_eq!(gap, Duration::from_millis(446));
        assert_eq!(max_gap, Duration::from_millis(446), "the 452 -> 900 gap is after the cycle end");
        // An ack exactly at the kill instant counts as before it.
        assert_eq!(
            outage(&acks, Duration::from_millis(4), Duration::from_millis(452)).unwrap().0,
            Duration::from_millis(446)
        );
    }

    #[test]
    fn straggling_acks_from_the_dead_leader_do_not_hide_the_outage() {
        // Acks at 6 and 7 were in flight when the leader died at 5.
        let acks = ms(&[3, 4, 6, 7, 600, 601]);
        let (gap, max_gap) = outage(&acks, Duration::from_millis(5), Duration::from_millis(700)).unwrap();
        assert_eq!((gap, max_gap), (Duration::from_millis(2), Duration::from_millis(593)));
    }

    #[test]
    fn no_ack_on_one_side_is_none() {
        assert!(outage(&ms(&[10, 11]), Duration::from_millis(5), Duration::from_millis(20)).is_none());
        assert!(outage(&ms(&[1, 2]), Duration::from_millis(5), Duration::from_millis(20)).is_none());
        assert!(outage(&[], Duration::ZERO, Duration::ZERO).is_none());
    }
}
