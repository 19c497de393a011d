//! One broker process as the supervisor holds it: spawned by the lab's launcher
//! ([`crate::launcher`]) so it can never outlive the lab, its output streamed as events, its end
//! reported as asked for (stop, kill) or not (a death).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use broker::telemetry::wire::ReadyLine;
use tokio::sync::{mpsc::UnboundedSender, watch};

use super::events::{ProcessState, SupervisorEvent};
use super::SupervisorConfig;
use crate::error::{LabError, Result};
use crate::launcher::{self, Child, Launch, Ready};

/// How a process ended.
#[derive(Debug, Clone)]
pub(crate) struct ExitReport {
    /// `exit status 2`, `signal 9 (SIGKILL)`, ...
    pub status: String,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The lab asked for it (stop, kill, power cut).
    pub expected: bool,
    pub last_stderr: Option<String>,
}

/// A spawned process, as the rest of the supervisor holds it (cheap to clone: handles only; the
/// last one dropped kills the process).
#[derive(Clone)]
pub(crate) struct Proc {
    pub pid: u32,
    /// Set before the lab signals the process, so its end counts as asked for.
    pub expected: Arc<AtomicBool>,
    pub exit: watch::Receiver<Option<ExitReport>>,
    pub child: Child,
}

impl Proc {
    /// Sends `sig` to this process only (never its group, never by name), and only while it is
    /// not reaped (see [`Child::signal`]).
    pub fn signal(&self, sig: libc::c_int) {
        self.child.signal(sig);
    }

    /// After a SIGSTOP: waits (blocking, up to `bound`) until every thread is stopped.
    pub fn wait_stopped(&self, bound: Duration) -> bool {
        self.child.wait_stopped(bound)
    }

    /// Waits for the process to end, up to `bound`; true if it did.
    pub async fn wait_exit(&self, bound: Duration) -> bool {
        let mut exit = self.exit.clone();
        tokio::time::timeout(bound, exit.wait_for(|e| e.is_some())).await.is_ok_and(|r| r.is_ok())
    }
}

/// `broker_bin --config config_file extra_args...`, with the config's `RUST_LOG` unless the
/// environment sets one.
fn node_command(config: &SupervisorConfig, config_file: &Path) -> std::process::Command {
    let mut cmd = crate::launcher::broker_command(&config.broker_bin, config_file);
    cmd.args(&config.extra_args);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", &config.broker_rust_log);
    }
    cmd
}

impl ExitReport {
    /// The event's state and detail for this end, logged as it is reported.
    fn describe(&self, node: i32, pid: u32) -> (ProcessState, String) {
        let state = if self.expected { ProcessState::Exited } else { ProcessState::Died };
        let detail = match (&self.last_stderr, self.expected) {
            (Some(line), false) => format!("{}; last stderr line: {line}", self.status),
            _ => self.status.clone(),
        };
        if self.expected {
            tracing::info!(node, pid, status = %self.status, "node exited");
        } else {
            tracing::warn!(node, pid, %detail, "node died");
        }
        (state, detail)
    }
}

/// Spawns `broker_bin --config config_file extra_args...` through the lab's launcher, tied to the
/// lab (own process group, dies with it), and returns it with its ready line's receiver. Its lines
/// become `Log` events, and its stderr also goes to `log_file` if given; `on_exit` runs once when
/// it has ended and been reaped, before `exit` is set.
pub(crate) fn spawn(
    node: i32,
    config: &SupervisorConfig,
    config_file: &Path,
    log_file: Option<PathBuf>,
    events: UnboundedSender<SupervisorEvent>,
    on_exit: impl FnOnce(&ExitReport) + Send + 'static,
) -> Result<(Proc, Ready<ReadyLine>)> {
    let bin = &config.broker_bin;
    let cmd = node_command(config, config_file);
    let expected = Arc::new(AtomicBool::new(false));
    let (exit_tx, exit_rx) = watch::channel(None);
    let (started, lines, exited) = (events.clone(), events.clone(), events);
    let expected2 = Arc::clone(&expected);
    let mut launch = Launch::new(format!("node {node}"), cmd).tied_to_lab();
    if let Some(file) = log_file {
        launch = launch.log_to(file);
    }
    let launch = launch
        .on_spawn(move |pid| {
            let detail = String::new();
            let _ =
                started.send(SupervisorEvent::Process { node, state: ProcessState::Started, pid, detail });
        })
        .on_line(move |stream, line| {
            let _ = lines.send(SupervisorEvent::Log { node, stream, line: line.to_string() });
        })
        .on_exit(move |exit| {
            let report = ExitReport {
                status: exit.status.clone(),
                code: exit.code,
                expected: expected2.load(Ordering::SeqCst),
                last_stderr: exit.last_stderr.clone(),
            };
            let (state, detail) = report.describe(node, exit.pid);
            on_exit(&report);
            let pid = exit.pid;
            let _ = exited.send(SupervisorEvent::Process { node, state, pid, detail });
            let _ = exit_tx.send(Some(report));
        });
    let (child, ready) = launcher::spawn(launch, ReadyLine::parse).map_err(|e| match e {
        LabError::Process { detail, .. } => {
            LabError::Process { what: format!("starting node {node} ({})", bin.display()), detail }
        }
        e => e,
    })?;
    Ok((Proc { pid: child.pid(), expected, exit: exit_rx, child }, ready))
}
