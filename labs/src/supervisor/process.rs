//! One broker process: spawn it so it can never outlive the lab, stream its output as events,
//! catch its ready line, and notice when it ends.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use broker::telemetry::wire::ReadyLine;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc::UnboundedSender, oneshot, watch};

use super::events::{ProcessState, Stream, SupervisorEvent};
use crate::error::{LabError, Result};

/// Stderr lines kept per process, for error messages about a failed start or a death.
const TAIL_LINES: usize = 20;

/// How a process ended.
#[derive(Debug, Clone)]
pub(crate) struct ExitReport {
    /// `exit status 2`, `signal 9 (SIGKILL)`, ...
    pub status: String,
    /// The lab asked for it (stop, kill, power cut).
    pub expected: bool,
    pub last_stderr: Option<String>,
}

/// A spawned process, as the rest of the supervisor holds it (cheap to clone: handles only).
#[derive(Clone)]
pub(crate) struct Proc {
    pub pid: u32,
    /// Set before the lab signals the process, so its end counts as asked for.
    pub expected: Arc<AtomicBool>,
    pub exit: watch::Receiver<Option<ExitReport>>,
    pub stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl Proc {
    /// Sends `sig` to this process only (never its group, never by name). Safe against pid
    /// reuse: the child is not reaped, so its pid stays ours, until `exit` is set.
    pub fn signal(&self, sig: libc::c_int) {
        if self.exit.borrow().is_none() {
            // SAFETY: plain syscall on a pid we own.
            unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        }
    }

    /// After a SIGSTOP: waits (blocking, up to `bound`) until every thread of the process is
    /// stopped. `kill` only queues the signal; a request the node was already serving could still
    /// be answered, and a "paused" node that answers is not paused (it made a test flaky).
    pub fn wait_stopped(&self, bound: Duration) -> bool {
        let started = std::time::Instant::now();
        loop {
            if all_threads_stopped(self.pid) {
                return true;
            }
            if started.elapsed() >= bound || self.exit.borrow().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Waits for the process to end, up to `bound`; true if it did.
    pub async fn wait_exit(&self, bound: Duration) -> bool {
        let mut exit = self.exit.clone();
        tokio::time::timeout(bound, exit.wait_for(|e| e.is_some())).await.is_ok_and(|r| r.is_ok())
    }

    pub fn tail(&self) -> String {
        tail_text(&self.stderr_tail)
    }
}

fn tail_text(tail: &Mutex<VecDeque<String>>) -> String {
    let lines = tail.lock().unwrap_or_else(|p| p.into_inner());
    if lines.is_empty() {
        "(no stderr output)".into()
    } else {
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Spawns `bin --config config_file extra_args...` and returns it with a receiver of its ready
/// line. `on_exit` runs once when the process has ended and been reaped, before `exit` is set.
pub(crate) fn spawn(
    node: i32,
    bin: &Path,
    config_file: &Path,
    extra_args: &[String],
    events: UnboundedSender<SupervisorEvent>,
    on_exit: impl FnOnce(&ExitReport) + Send + 'static,
) -> Result<(Proc, oneshot::Receiver<ReadyLine>)> {
    let mut cmd = Command::new(bin);
    // During faults openraft logs every failed RPC (hundreds per second); the lab gets the same
    // facts as structured raft/election events, so its brokers stay quiet about them unless the
    // user asks with RUST_LOG.
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info,openraft=off");
    }
    cmd.arg("--config").arg(config_file).args(extra_args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Own process group: a Ctrl-C in the lab's terminal goes to the lab, which then stops the
    // brokers in order, instead of every broker dying at once mid-write.
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    // PR_SET_PDEATHSIG fires when the *thread* that forked exits; we spawn from async code, i.e.
    // from runtime worker threads that live as long as the runtime (never spawn_blocking, whose
    // idle threads exit and would take the broker with them).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The lab may have died between fork and prctl: then no signal would ever come.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| LabError::Process {
        what: format!("starting node {node} ({})", bin.display()),
        detail: e.to_string(),
    })?;
    let pid = child.id().expect("a just-spawned child has a pid");
    let _ = events.send(SupervisorEvent::Process {
        node,
        state: ProcessState::Started,
        pid,
        detail: String::new(),
    });

    let (ready_tx, ready_rx) = oneshot::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    tokio::spawn(read_lines(node, Stream::Stdout, stdout, events.clone(), None, Some(ready_tx)));
    let stderr_task =
        tokio::spawn(read_lines(node, Stream::Stderr, stderr, events.clone(), Some(Arc::clone(&tail)), None));

    let expected = Arc::new(AtomicBool::new(false));
    let (exit_tx, exit_rx) = watch::channel(None);
    let (expected2, tail2) = (Arc::clone(&expected), Arc::clone(&tail));
    tokio::spawn(async move {
        let status = child.wait().await;
        // The stderr pipe closes when the process is gone; give the reader a moment to drain it
        // so the last line (often the reason) is in the tail.
        let _ = tokio::time::timeout(Duration::from_secs(1), stderr_task).await;
        let report = ExitReport {
            status: match status {
                Ok(s) => describe(s),
                Err(e) => format!("unknown ({e})"),
            },
            expected: expected2.load(Ordering::SeqCst),
            last_stderr: tail2.lock().unwrap_or_else(|p| p.into_inner()).back().cloned(),
        };
        let state = if report.expected { ProcessState::Exited } else { ProcessState::Died };
        let detail = match (&report.last_stderr, report.expected) {
            (Some(line), false) => format!("{}; last stderr line: {line}", report.status),
            _ => report.status.clone(),
        };
        if report.expected {
            tracing::info!(node, pid, status = %report.status, "node exited");
        } else {
            tracing::warn!(node, pid, %detail, "node died");
        }
        on_exit(&report);
        let _ = events.send(SupervisorEvent::Process { node, state, pid, detail });
        let _ = exit_tx.send(Some(report));
    });
    let proc = Proc { pid, expected, exit: exit_rx, stderr_tail: tail };
    Ok((proc, ready_rx))
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!(
            "killed by signal {sig}{}",
            match sig {
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGTERM => " (SIGTERM)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGSEGV => " (SIGSEGV)",
                _ => "",
            }
        ),
        _ => "ended (no status)".into(),
    }
}

/// Forwards every line as a `Log` event; stderr lines also go to the tail; the first stdout
/// line that is the broker's [`ReadyLine`] goes to `ready`.
async fn read_lines(
    node: i32,
    stream: Stream,
    pipe: impl AsyncRead + Unpin,
    events: UnboundedSender<SupervisorEvent>,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
    mut ready: Option<oneshot::Sender<ReadyLine>>,
) {
    let mut reader = BufReader::new(pipe);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        // Lossy: a stray non-UTF-8 byte in a log line must not stop the capture.
        let line = String::from_utf8_lossy(&raw).trim_end().to_string();
        if let Some(r) = ready.as_ref().and_then(|_| ReadyLine::parse(&line)) {
            let _ = ready.take().expect("checked").send(r);
        }
        if let Some(tail) = &tail {
            let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(line.clone());
        }
        let _ = events.send(SupervisorEvent::Log { node, stream, line });
    }
}

/// Kills and reaps `pid` synchronously (for Drop, where nothing can be awaited). Bounded: a
/// process stuck in uninterruptible I/O is left to the runtime's reaper after 2 s.
pub(crate) fn kill_and_reap(pid: u32) {
    let pid = pid as libc::pid_t;
    // SAFETY: plain syscalls on our own child's pid (not yet reaped, so not reusable).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        for _ in 0..400 {
            let mut status = 0;
            let r = libc::waitpid(pid, &mut status, libc::WNOHANG);
            // r == pid: reaped; r == -1 (ECHILD): the runtime's reaper got it first.
            if r != 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    tracing::warn!(pid, "node did not die within 2 s of SIGKILL");
}

/// True when every thread in /proc/<pid>/task is in the stopped state (`T`, or `t` when traced).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return false };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .ok()
            // The state follows the command name, which is in parentheses and may hold spaces.
            .and_then(|stat| stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
            .is_some_and(|state| state == 'T' || state == 't')
    })
}
