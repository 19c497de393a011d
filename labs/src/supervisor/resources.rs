//! Per-node CPU, memory and disk, sampled once a second while the lab runs.
//!
//! The work is bounded: sysinfo refreshes only our brokers' pids (never the whole process
//! table), and the data-dir walk stops after `MAX_DIR_ENTRIES` entries.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::events::SupervisorEvent;

const PERIOD: Duration = Duration::from_secs(1);
/// A broker dir holds a few files per partition; this is far above any lab's count.
const MAX_DIR_ENTRIES: usize = 20_000;

/// A running node to sample.
pub(crate) struct Target {
    pub node: i32,
    pub pid: u32,
    pub data_dir: PathBuf,
}

/// Samples `targets()` every second until `stop` is cancelled.
pub(crate) async fn run(
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
        // /proc reads and the directory walk block; keep them off the runtime's workers.
        let sampled = tokio::task::spawn_blocking(move || {
            let samples = sample(&mut sys, &batch);
            (sys, samples)
        })
        .await;
        let Ok((s, samples)) = sampled else { return };
        sys = s;
        for e in samples {
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
