//! Starting and stopping broker processes that this run owns.
//!
//! Only processes we spawned are ever signalled, by their PID, and a `ChildProcess` that is
//! dropped without `stop()` (error, panic, Ctrl-C) is killed so no broker outlives the bench.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use broker::telemetry::wire::ReadyLine;

use crate::error::{LabError, Result};

/// Upper bound for a broker to print its ready line; a healthy one needs milliseconds.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a graceful stop after SIGTERM before we fall back to SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How often `stop` checks whether the child has exited (there is no pidfd wait in std).
const EXIT_POLL: Duration = Duration::from_millis(10);

/// A spawned child that is killed on drop unless stopped first.
pub struct ChildProcess {
    name: String,
    child: Option<Child>,
    log_path: PathBuf,
}

impl ChildProcess {
    /// Spawns `cmd` with stderr appended to `log_path` and stdout read line by line; returns once
    /// `ready` accepts a stdout line (its value is returned), or fails after `timeout`.
    pub fn spawn<T: Send + 'static>(
        name: &str,
        mut cmd: Command,
        log_path: &Path,
        timeout: Duration,
        ready: impl Fn(&str) -> Option<T> + Send + 'static,
    ) -> Result<(Self, T)> {
        let log = std::fs::File::create(log_path)
            .map_err(LabError::io(format!("creating {}", log_path.display())))?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log));
        let mut child = cmd
            .spawn()
            .map_err(|e| LabError::Process { what: format!("starting {name}"), detail: e.to_string() })?;
        tracing::debug!(name, pid = child.id(), "spawned");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        // The thread keeps draining stdout after the ready line so the child never blocks on a
        // full pipe; it ends when the child closes stdout (exits).
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(t) = tx.as_ref().and_then(|_| ready(&line)) {
                    let _ = tx.take().expect("checked").send(t);
                }
            }
        });
        let mut proc =
            ChildProcess { name: name.to_string(), child: Some(child), log_path: log_path.to_path_buf() };
        match rx.recv_timeout(timeout) {
            Ok(t) => Ok((proc, t)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                proc.kill();
                Err(LabError::Process {
                    what: format!("waiting for {name} to be ready"),
                    detail: format!("no ready line within {timeout:?}; log tail: {}", proc.log_tail()),
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = proc.child.as_mut().and_then(|c| c.wait().ok());
                proc.child = None;
                Err(LabError::Process {
                    what: format!("starting {name}"),
                    detail: format!("exited before it was ready ({status:?}); log tail: {}", proc.log_tail()),
                })
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// The last lines of the child's stderr log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// SIGTERM, then a bounded wait; SIGKILL if it does not exit in time. Returns the exit code
    /// (`None` when killed by a signal).
    pub fn stop(&mut self) -> Result<Option<i32>> {
        let Some(mut child) = self.child.take() else { return Ok(None) };
        // SAFETY: kill(2) on the PID of a child we own and have not reaped yet, so the PID
        // cannot have been recycled for another process.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait().map_err(LabError::io(format!("waiting for {}", self.name)))? {
                Some(status) => {
                    tracing::debug!(name = %self.name, ?status, "stopped");
                    return Ok(status.code());
                }
                None if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(LabError::Timeout {
                        what: format!("stopping {} with SIGTERM (killed it)", self.name),
                        secs: STOP_TIMEOUT.as_secs_f64(),
                    });
                }
                None => std::thread::sleep(EXIT_POLL),
            }
        }
    }

    /// SIGKILL (our own child, by PID) and reap it; a no-op once it has exited or been stopped.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            tracing::warn!(name = %self.name, pid, "killing child process");
        }
        self.sigkill();
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The storage counters of `GET /state`.
pub use broker::log::StoreStats;

/// One `clusterlab-broker` node on a fresh data directory.
pub struct BrokerProcess {
    pub ready: ReadyLine,
    process: ChildProcess,
    // Kept last so the directory is removed after the process has been stopped.
    _data: tempfile::TempDir,
}

impl BrokerProcess {
    /// Starts a broker with `fsync` on a new directory under `data_root`, on loopback ports.
    pub fn start(bin: &Path, data_root: &Path, fsync: &str) -> Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("clusterlab-bench-")
            .tempdir_in(data_root)
            .map_err(LabError::io(format!("creating a data directory in {}", data_root.display())))?;
        let mut cmd = Command::new(bin);
        cmd.args(["--node-id", "1", "--data-dir"])
            .arg(data.path().join("node"))
            .args(["--kafka-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--fsync", fsync])
            .args(["--auto-create-topics", "false"]);
        // Info-level logs per request would tax the broker during a throughput test.
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let log = data.path().join("broker.log");
        let (process, ready) =
            ChildProcess::spawn("clusterlab-broker", cmd, &log, READY_TIMEOUT, ReadyLine::parse)?;
        tracing::info!(kafka = %ready.kafka, http = %ready.http, pid = ready.pid, fsync, "broker ready");
        Ok(BrokerProcess { ready, process, _data: data })
    }

    pub fn bootstrap(&self) -> String {
        self.ready.kafka.to_string()
    }

    /// Reads the storage counters from the broker's `/state`.
    pub async fn store_stats(&self) -> Result<StoreStats> {
        let parts = crate::node_client::typed::StateParts::ALL;
        Ok(crate::node_client::typed::state(self.ready.http, parts, STATE_TIMEOUT).await?.store)
    }

    pub fn stop(&mut self) -> Result<Option<i32>> {
        self.process.stop()
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }
}

/// A node's /state at scale is large and slow to build: longer than a lab poll's bound.
pub const STATE_TIMEOUT: Duration = Duration::from_secs(5);

/// Finds the broker binary: `explicit`, else `clusterlab-broker` next to the running executable.
pub fn locate_broker(explicit: Option<&Path>) -> Result<PathBuf> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let exe = std::env::current_exe().map_err(LabError::io("locating the running executable"))?;
            exe.parent().unwrap_or(Path::new(".")).join("clusterlab-broker")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(LabError::BinaryNotFound {
            what: "clusterlab-broker",
            path,
            hint:
                "build it with cargo build -p broker (same profile as clusterlab), or pass --broker-bin PATH"
                    .into(),
        })
    }
}
