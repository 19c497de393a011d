//! Node lifecycle: start (with its pre-flight checks), kill, stop, pause, resume, restart and the
//! orderly shutdown of the whole lab.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use broker::telemetry::wire::ReadyLine;

use super::events::{NodeState, ProcessState, SupervisorEvent};
use super::process::{self, ExitReport, Proc};
use super::{lock, orphans, ports, Supervisor};
use crate::error::{LabError, Result};
use crate::launcher::{NotReady, Ready};

/// A broker on a fresh dir is ready in well under a second; recovery of a big log takes longer.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a SIGKILLed (or aborting) process gets to be reaped.
pub(crate) const KILL_WAIT: Duration = Duration::from_secs(5);

impl Supervisor {
    /// Starts every stopped node and waits until all are ready. All nodes are checked (ports,
    /// stale brokers) before any is spawned, and all are spawned before waiting, because a
    /// cluster node may only be ready once its peers answer.
    pub async fn start_all(&self) -> Result<()> {
        let ids: Vec<i32> = lock(&self.nodes).values().filter(|n| n.proc.is_none()).map(|n| n.id).collect();
        for &id in &ids {
            self.preflight(id)?;
        }
        let mut launched = Vec::new();
        for &id in &ids {
            launched.push((id, self.launch(id)?));
        }
        for (id, (proc, ready)) in launched {
            self.await_ready(id, proc, ready).await?;
        }
        Ok(())
    }

    /// Starts one stopped (or died) node with its config file and waits until it is ready.
    pub async fn start(&self, id: i32) -> Result<()> {
        if let Some(p) = self.running(id)? {
            return Err(LabError::NodeState { id, detail: format!("already running as pid {}", p.pid) });
        }
        self.preflight(id)?;
        let (proc, ready) = self.launch(id)?;
        self.await_ready(id, proc, ready).await
    }

    /// Refuses a stale broker on the node's data dir and any taken port, naming them.
    fn preflight(&self, id: i32) -> Result<()> {
        let (pid_file, data_dir, p) =
            self.with_node(id, |n| (n.pid_file.clone(), n.data_dir.clone(), n.ports))?;
        orphans::ensure_no_stale_broker(&pid_file, &data_dir)?;
        for (addr, what) in [(p.kafka, "kafka"), (p.http, "http"), (p.raft, "raft")] {
            ports::ensure_free(addr, &format!("node {id} {what} listener"))?;
        }
        Ok(())
    }

    fn launch(&self, id: i32) -> Result<(Proc, Ready<ReadyLine>)> {
        let log_files = self.config.log_files;
        let (config_file, pid_file, log_file) = self.with_node(id, |n| {
            n.starts += 1;
            let log =
                log_files.then(|| n.config_file.with_file_name(format!("broker-start-{}.log", n.starts)));
            (n.config_file.clone(), n.pid_file.clone(), log)
        })?;
        let nodes = Arc::downgrade(&self.nodes);
        let on_exit = move |report: &ExitReport| {
            let Some(nodes) = nodes.upgrade() else { return };
            let mut nodes = lock(&nodes);
            if let Some(n) = nodes.get_mut(&id) {
                n.proc = None;
                n.last_exit = Some(report.clone());
                n.state = if report.expected { NodeState::Stopped } else { NodeState::Died };
            }
        };
        let (proc, ready) =
            process::spawn(id, &self.config, &config_file, log_file, self.events.clone(), on_exit)?;
        // For the next run's stale-broker check and for a user who wants to `kill` it by hand.
        if let Err(e) = std::fs::write(&pid_file, format!("{}\n", proc.pid)) {
            tracing::warn!(file = %pid_file.display(), error = %e, "could not write the pid file");
        }
        self.with_node(id, |n| {
            n.proc = Some(proc.clone());
            n.state = NodeState::Starting;
        })?;
        Ok((proc, ready))
    }

    /// Waits for the ready line (on a blocking thread: the launcher's wait is synchronous); a
    /// node that prints none in time is killed as asked for, one that ends first is reported.
    async fn await_ready(&self, id: i32, proc: Proc, ready: Ready<ReadyLine>) -> Result<()> {
        let child = proc.child.clone();
        let waited = tokio::task::spawn_blocking(move || child.wait_ready(ready, READY_TIMEOUT))
            .await
            .unwrap_or(Err(NotReady::Timeout));
        let why = match waited {
            Ok(line) => {
                self.with_node(id, |n| {
                    if n.state == NodeState::Starting {
                        n.state = NodeState::Running
                    }
                })?;
                tracing::info!(node = id, pid = proc.pid, "node ready");
                let (pid, detail) = (proc.pid, line.to_string());
                let _ = self.events.send(SupervisorEvent::Process {
                    node: id,
                    state: ProcessState::Ready,
                    pid,
                    detail,
                });
                return Ok(());
            }
            Err(why @ NotReady::Timeout) => {
                proc.expected.store(true, Ordering::SeqCst);
                proc.signal(libc::SIGKILL);
                why
            }
            Err(why) => why,
        };
        // The exit event and the node's state come first, then the error.
        proc.wait_exit(KILL_WAIT).await;
        Err(proc.child.not_ready(&why, READY_TIMEOUT))
    }

    /// SIGKILL: the node dies at once, with whatever its page cache had not written.
    pub async fn kill(&self, id: i32) -> Result<()> {
        let proc = self.running_or_err(id, "kill it")?;
        proc.expected.store(true, Ordering::SeqCst);
        proc.signal(libc::SIGKILL);
        if !proc.wait_exit(KILL_WAIT).await {
            return Err(LabError::Timeout {
                what: format!("waiting for node {id} (pid {}) to die after SIGKILL", proc.pid),
                secs: KILL_WAIT.as_secs_f64(),
            });
        }
        Ok(())
    }

    /// SIGTERM and wait for the graceful stop (bounded), then SIGKILL. A stopped node is fine.
    pub async fn stop(&self, id: i32) -> Result<()> {
        let Some(proc) = self.running(id)? else { return Ok(()) };
        proc.expected.store(true, Ordering::SeqCst);
        // A SIGSTOPped process would hold SIGTERM pending forever.
        proc.signal(libc::SIGCONT);
        proc.signal(libc::SIGTERM);
        let bound = self.config.stop_timeout;
        if proc.wait_exit(bound).await {
            return Ok(());
        }
        tracing::warn!(node = id, pid = proc.pid, "no graceful stop within {bound:?}; SIGKILL");
        self.kill(id).await
    }

    /// SIGTERM like [`stop`](Self::stop), but only an exit with status 0 within the bound is
    /// `Ok`, and a node that died by itself before is an error too: a bench that measures
    /// graceful stops must hear of a broker that did not stop cleanly (the lab takes any end as
    /// stopped). A node that is stopped, or was killed by the lab, is fine.
    pub async fn stop_gracefully(&self, id: i32) -> Result<()> {
        let proc = self.running(id)?;
        if proc.is_some() {
            self.stop(id).await?;
        }
        let (state, exit) = self.with_node(id, |n| (n.state, n.last_exit.clone()))?;
        let clean = exit.as_ref().is_some_and(|e| e.code == Some(0));
        if state != NodeState::Died && (proc.is_none() || clean) {
            return Ok(());
        }
        let status = exit.as_ref().map_or("no exit seen", |e| e.status.as_str());
        let (when, tail) = match &proc {
            Some(p) => ("after SIGTERM", p.child.tail()),
            None => (
                "before it was asked to stop",
                exit.as_ref().and_then(|e| e.last_stderr.clone()).unwrap_or_default(),
            ),
        };
        Err(LabError::Process {
            what: format!("stopping node {id} gracefully"),
            detail: format!(
                "{status} {when}, expected exit status 0 within {:?}; last stderr lines:\n{tail}",
                self.config.stop_timeout
            ),
        })
    }

    /// SIGSTOP: the node freezes mid-whatever; its sockets stay open (a "GC pause").
    pub fn pause(&self, id: i32) -> Result<()> {
        let proc = self.running_or_err(id, "pause it")?;
        proc.signal(libc::SIGSTOP);
        if !proc.wait_stopped(Duration::from_millis(500)) {
            tracing::warn!(id, pid = proc.pid, "SIGSTOP sent, but not every thread stopped within 500 ms");
        }
        self.with_node(id, |n| n.state = NodeState::Paused)
    }

    pub fn resume(&self, id: i32) -> Result<()> {
        let proc = self.running_or_err(id, "resume it")?;
        proc.signal(libc::SIGCONT);
        self.with_node(id, |n| n.state = NodeState::Running)
    }

    /// Stops the node if it runs, then starts it again with the same config.
    pub async fn restart(&self, id: i32) -> Result<()> {
        self.stop(id).await?;
        self.start(id).await
    }

    /// SIGTERM to every node at once, wait (bounded), then SIGKILL what is left; stops sampling
    /// and, once the nodes are gone, the link fabric.
    pub async fn shutdown(&self) -> Result<()> {
        if let Some(s) = &self.sampler {
            s.stop().await;
        }
        let procs: Vec<(i32, Proc)> =
            lock(&self.nodes).values().filter_map(|n| Some((n.id, n.proc.clone()?))).collect();
        for (_, p) in &procs {
            p.expected.store(true, Ordering::SeqCst);
            p.signal(libc::SIGCONT);
            p.signal(libc::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + self.config.stop_timeout;
        for (id, p) in &procs {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !p.wait_exit(left).await {
                tracing::warn!(node = id, pid = p.pid, "no graceful stop at shutdown; SIGKILL");
                p.signal(libc::SIGKILL);
                p.wait_exit(KILL_WAIT).await;
            }
        }
        // Only now: a stopping broker may still talk to its peers through the fabric.
        self.fabric.stop().await;
        tracing::info!(nodes = procs.len(), "lab shut down");
        Ok(())
    }
}
