//! Per-node CPU, memory and disk, sampled once a second while the lab runs, with the node's own
//! account of its memory (heap in use, held free, log index; `GET /memory`).
//!
//! The work is bounded: sysinfo refreshes only our brokers' pids (never the whole process
//! table), the data-dir walk stops after `MAX_DIR_ENTRIES` entries, and each node gets
//! `MEMORY_CALL_LIMIT` to answer.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::events::SupervisorEvent;

const PERIOD: Duration = Duration::from_secs(1);
/// A broker dir holds a few files per partition; this is far above any lab's count.
const MAX_DIR_ENTRIES: usize = 20_000;
/// A node that is paused or busy past this misses one memory account, not the tick.
const MEMORY_CALL_LIMIT: Duration = Duration::from_millis(300);

/// A running node to sample.
pub(crate) struct Target {
    pub node: i32,
    pub pid: u32,
    pub data_dir: PathBuf,
    pub http: SocketAddr,
}

/// The sampling task, owned: [`Sampler::stop`] cancels and awaits it (bounded), and dropping
/// the sampler cancels and aborts it.
pub(crate) struct Sampler {
    stop: CancellationToken,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One sample's blocking work (a few /proc reads, a bounded walk) is far below this.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl Sampler {
    /// Starts sampling `targets()` every second, sending to `events`.
    pub(crate) fn start(
        targets: impl Fn() -> Vec<Target> + Send + 'static,
        events: UnboundedSender<SupervisorEvent>,
    ) -> Sampler {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(targets, events, stop.clone()));
        Sampler { stop, task: std::sync::Mutex::new(Some(task)) }
    }

    /// Stops sampling from the next tick on (a sample already in flight is still sent).
    pub(crate) fn cancel(&self) {
        self.stop.cancel();
    }

    /// Stops sampling and waits until the task has ended; aborts it past [`STOP_WAIT`].
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(STOP_WAIT, &mut task).await.is_err() {
                tracing::warn!("resource sampling did not stop within {STOP_WAIT:?}; aborted");
                task.abort();
            }
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// Samples `targets()` every second until `stop` is cancelled.
async fn run(
    targets: impl Fn() -> Vec<Target> + Send + 'static,
    events: UnboundedSender<SupervisorEvent>,
    stop: CancellationToken,
) {
    let mut sys = match System::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "no process statistics on this system; resource sampling is off");
            return;
        }
    };
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let batch = targets();
        if batch.is_empty() {
            continue;
        }
        let accounts = futures::future::join_all(
            batch.iter().map(|t| crate::node_client::typed::memory(t.http, MEMORY_CALL_LIMIT)),
        );
        // /proc reads and the directory walk block; keep them off the runtime's workers.
        let sampled = tokio::task::spawn_blocking(move || {
            let samples = sample(&mut sys, &batch);
            (sys, samples)
        });
        let (accounts, sampled) = tokio::join!(accounts, sampled);
        let Ok((s, samples)) = sampled else { return };
        sys = s;
        for (mut e, account) in samples.into_iter().zip(accounts) {
            if let SupervisorEvent::Resources { node_memory, .. } = &mut e {
                *node_memory = account.ok();
            }
            if events.send(e).is_err() {
                return; // nobody listens any more
            }
        }
    }
}

fn sample(sys: &mut System, batch: &[Target]) -> Vec<SupervisorEvent> {
    let pids: Vec<Pid> = batch.iter().map(|t| Pid::from_u32(t.pid)).collect();
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&pids),
        true,
        ProcessRefreshKind::nothing().with_cpu().with_memory(),
    );
    batch
        .iter()
        .map(|t| {
            // A process seen for the first time has no CPU delta yet: it reports 0 until the
            // next tick, which is the honest answer.
            let (cpu_percent, memory_bytes) =
                sys.process(Pid::from_u32(t.pid)).map_or((0.0, 0), |p| (p.cpu_usage(), p.memory()));
            SupervisorEvent::Resources {
                node: t.node,
                cpu_percent,
                memory_bytes,
                disk_bytes: dir_size(&t.data_dir),
                node_memory: None,
            }
        })
        .collect()
}

/// Bytes of the regular files under `dir` (not following symlinks), up to `MAX_DIR_ENTRIES`.
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut seen = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_DIR_ENTRIES {
                return total;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}
