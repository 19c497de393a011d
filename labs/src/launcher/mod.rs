//! The one way the lab runs a child process it owns: a broker node of the supervisor, a bench's
//! broker, the bench's foreign peer broker.
//!
//! - Its output is read line by line on threads: stdout and stderr go to the caller's `on_line`
//!   (the supervisor turns them into timeline events), stderr optionally to a log file (the
//!   benches keep one per start), and the last [`TAIL_LINES`] stderr lines stay for errors.
//! - The first stdout line the caller's matcher accepts is its ready line ([`Ready`]); a missing
//!   one is an error that names the process and quotes its stderr tail.
//! - Signals go to its PID only, and only while it is not reaped: one thread waits for the exit
//!   without reaping (`waitid(WNOWAIT)`), then reaps under the lock [`Child::signal`] takes, so the
//!   PID cannot have been reused by another process when a signal is sent.
//! - [`Child::stop`] is SIGTERM, then SIGKILL after a bound; dropping the last handle SIGKILLs it.
//!
//! Only std threads and blocking calls: the benches are synchronous; the supervisor waits through
//! `on_exit` (its own watch) and `spawn_blocking`.
//!
//! A broker node is described by the broker's own `broker::config::Config`, written as TOML
//! ([`write_broker_config`]) and passed with `--config` ([`broker_command`]): the lab and the
//! benches spell no broker flags of their own. (The broker's tests drive its flags on purpose:
//! they are what a user types.)

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::error::{LabError, Result};

/// Writes `config` to `file` as the broker reads it (`Config::to_toml`), after a line that says
/// how to run it by hand.
pub fn write_broker_config(file: &Path, config: &broker::config::Config) -> Result<()> {
    let text = format!(
        "# Written by Cluster Lab; rerun with: clusterlab-broker --config <this file>\n{}",
        config.to_toml()
    );
    std::fs::write(file, text).map_err(LabError::io(format!("writing {}", file.display())))
}

/// `bin --config config_file`: a broker started with the settings `write_broker_config` wrote.
pub fn broker_command(bin: &Path, config_file: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--config").arg(config_file);
    cmd
}

/// Stderr lines kept per process, for error messages about a failed start or a death.
pub const TAIL_LINES: usize = 20;
/// How long a SIGKILLed process gets to be reaped (one in uninterruptible I/O may take a while).
const KILL_WAIT: Duration = Duration::from_secs(2);
/// After the exit, how long the stderr reader may take to drain the pipe, so the last line (often
/// the reason) is in the tail.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How a process ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub pid: u32,
    /// `exit status 2`, `killed by signal 9 (SIGKILL)`, ...
    pub status: String,
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub last_stderr: Option<String>,
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.status)
    }
}

type OnLine = Arc<dyn Fn(Stream, &str) + Send + Sync>;
type OnExit = Box<dyn FnOnce(&Exit) + Send>;

/// What to run and what to do with its output.
pub struct Launch {
    name: String,
    cmd: Command,
    log_file: Option<PathBuf>,
    on_line: Option<OnLine>,
    on_spawn: Option<Box<dyn FnOnce(u32)>>,
    on_exit: Option<OnExit>,
    tied_to_lab: bool,
}

impl Launch {
    /// `name` is how errors and logs call it ("node 2", "tansu").
    pub fn new(name: impl Into<String>, cmd: Command) -> Launch {
        Launch {
            name: name.into(),
            cmd,
            log_file: None,
            on_line: None,
            on_spawn: None,
            on_exit: None,
            tied_to_lab: false,
        }
    }

    /// Appends every stderr line to `path` (created anew).
    pub fn log_to(mut self, path: impl Into<PathBuf>) -> Launch {
        self.log_file = Some(path.into());
        self
    }

    /// Hears every line of both streams, on the reader threads.
    pub fn on_line(mut self, f: impl Fn(Stream, &str) + Send + Sync + 'static) -> Launch {
        self.on_line = Some(Arc::new(f));
        self
    }

    /// Runs with the PID once spawned, before any line is read (so it comes before them).
    pub fn on_spawn(mut self, f: impl FnOnce(u32) + 'static) -> Launch {
        self.on_spawn = Some(Box::new(f));
        self
    }

    /// Runs once when the process has ended and been reaped (on the thread that reaped it).
    pub fn on_exit(mut self, f: impl FnOnce(&Exit) + Send + 'static) -> Launch {
        self.on_exit = Some(Box::new(f));
        self
    }

    /// Own process group (a Ctrl-C in the lab's terminal goes to the lab, which then stops its
    /// brokers in order, instead of every broker dying at once mid-write) and SIGKILL when the
    /// spawning thread dies (PR_SET_PDEATHSIG fires when the *thread* that forked exits: spawn
    /// such a child only from threads that live as long as the lab, e.g. runtime workers, never
    /// `spawn_blocking` or a scoped thread).
    pub fn tied_to_lab(mut self) -> Launch {
        self.tied_to_lab = true;
        self
    }
}

/// The child before and after it is reaped.
enum Slot {
    Running(std::process::Child),
    Reaped,
}

struct Inner {
    pid: u32,
    name: String,
    slot: Arc<Mutex<Slot>>,
    exit: Arc<(Mutex<Option<Exit>>, Condvar)>,
    tail: Arc<Mutex<VecDeque<String>>>,
}

/// A spawned process the lab owns; clones are handles to the same one, and dropping the last
/// SIGKILLs it (bounded wait for the reap).
#[derive(Clone)]
pub struct Child(Arc<Inner>);

/// The receiving end of a child's ready line (see [`Child::wait_ready`]).
pub struct Ready<T>(mpsc::Receiver<T>);

/// Why a child did not become ready.
#[derive(Debug)]
pub enum NotReady {
    /// No ready line within the bound; the child still runs (the caller decides its fate).
    Timeout,
    /// Stdout closed without one: the process ended (or is ending: `None` after the bound).
    Ended(Option<Exit>),
}

/// Spawns `launch`; `ready` is tried on each stdout line until one is accepted.
///
/// Three threads serve the child, and none outlives it: the two pipe readers end when it closes
/// its pipes (at its exit), the reaper once it has exited and been reaped, and the child itself
/// is owned by the returned [`Child`] (killed when the last handle drops).
pub fn spawn<T: Send + 'static>(
    launch: Launch,
    ready: impl Fn(&str) -> Option<T> + Send + 'static,
) -> Result<(Child, Ready<T>)> {
    let Launch { name, mut cmd, log_file, on_line, on_spawn, on_exit, tied_to_lab } = launch;
    let log = match &log_file {
        Some(p) => Some(std::fs::File::create(p).map_err(LabError::io(format!("creating {}", p.display())))?),
        None => None,
    };
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    if tied_to_lab {
        tie_to_lab(&mut cmd);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| LabError::Process { what: format!("starting {name}"), detail: e.to_string() })?;
    let pid = child.id();
    tracing::debug!(name, pid, "spawned");
    if let Some(f) = on_spawn {
        f(pid);
    }
    let (stdout, stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let inner = Inner {
        pid,
        name,
        slot: Arc::new(Mutex::new(Slot::Running(child))),
        exit: Arc::new((Mutex::new(None), Condvar::new())),
        tail: Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES))),
    };
    let (ready_tx, ready_rx) = mpsc::channel();
    let out_line = on_line.clone();
    std::thread::spawn(move || read_stdout(stdout, ready, ready_tx, out_line));
    let (drained_tx, drained_rx) = mpsc::channel::<()>();
    let tail = Arc::clone(&inner.tail);
    std::thread::spawn(move || read_stderr(stderr, log, &tail, on_line, drained_tx));
    let (slot, exit, tail) = (Arc::clone(&inner.slot), Arc::clone(&inner.exit), Arc::clone(&inner.tail));
    std::thread::spawn(move || reap(pid, &slot, &exit, &tail, &drained_rx, on_exit));
    Ok((Child(Arc::new(inner)), Ready(ready_rx)))
}

/// Hands each stdout line to `on_line`, and the first one `ready` accepts to `ready_tx`.
fn read_stdout<T>(
    stdout: impl Read,
    ready: impl Fn(&str) -> Option<T>,
    ready_tx: mpsc::Sender<T>,
    on_line: Option<OnLine>,
) {
    let mut ready_tx = Some(ready_tx);
    read_lines(stdout, |line| {
        if let Some(t) = ready_tx.as_ref().and_then(|_| ready(line)) {
            let _ = ready_tx.take().expect("checked").send(t);
        }
        if let Some(f) = &on_line {
            f(Stream::Stdout, line);
        }
    });
}
/// Writes each stderr line to the log file, keeps the last [`TAIL_LINES`] and hands it to
/// `on_line`; dropping `drained` at the end tells the reaper the tail is complete.
fn read_stderr(
    stderr: impl Read,
    mut log: Option<std::fs::File>,
    tail: &Mutex<VecDeque<String>>,
    on_line: Option<OnLine>,
    drained: mpsc::Sender<()>,
) {
    read_lines(stderr, |line| {
        if let Some(f) = log.as_mut() {
            let _ = writeln!(f, "{line}");
        }
        let mut t = lock(tail);
        if t.len() == TAIL_LINES {
            t.pop_front();
        }
        t.push_back(line.to_string());
        drop(t);
        if let Some(f) = &on_line {
            f(Stream::Stderr, line);
        }
    });
    drop(drained);
}

/// Waits for the exit without reaping, reaps under the slot's lock (so no signal can reach a
/// reused PID), lets stderr drain (bounded) so the last line is in the tail, then reports.
fn reap(
    pid: u32,
    slot: &Mutex<Slot>,
    exit: &(Mutex<Option<Exit>>, Condvar),
    tail: &Mutex<VecDeque<String>>,
    drained: &mpsc::Receiver<()>,
    on_exit: Option<OnExit>,
) {
    wait_unreaped(pid);
    let status = match std::mem::replace(&mut *lock(slot), Slot::Reaped) {
        Slot::Running(mut c) => c.wait().map(describe).unwrap_or_else(|e| (format!("unknown ({e})"), None)),
        Slot::Reaped => ("ended (no status)".into(), None),
    };
    let _ = drained.recv_timeout(DRAIN_WAIT);
    let report = Exit { pid, status: status.0, code: status.1, last_stderr: lock(tail).back().cloned() };
    if let Some(f) = on_exit {
        f(&report);
    }
    *lock(&exit.0) = Some(report);
    exit.1.notify_all();
}

impl Child {
    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// Sends `sig` to this process only (never its group, never by name); false once it has
    /// been reaped (nothing sent).
    pub fn signal(&self, sig: libc::c_int) -> bool {
        self.0.signal(sig)
    }

    /// How it ended, once it has (`None` while it runs).
    pub fn exit(&self) -> Option<Exit> {
        lock(&self.0.exit.0).clone()
    }

    /// Blocks until it has ended and been reaped, up to `bound`.
    pub fn wait_exit(&self, bound: Duration) -> Option<Exit> {
        self.0.wait_exit(bound)
    }

    /// Waits up to `timeout` for the ready line. On `Ended`, waits (bounded) for the exit so its
    /// status can be told.
    pub fn wait_ready<T>(&self, ready: Ready<T>, timeout: Duration) -> std::result::Result<T, NotReady> {
        match ready.0.recv_timeout(timeout) {
            Ok(t) => Ok(t),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(NotReady::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(NotReady::Ended(self.wait_exit(KILL_WAIT))),
        }
    }

    /// [`wait_ready`](Self::wait_ready) for callers that just want it ready or an error: a child
    /// that printed nothing in time is killed, and the error quotes its stderr tail.
    pub fn expect_ready<T>(&self, ready: Ready<T>, timeout: Duration) -> Result<T> {
        self.wait_ready(ready, timeout).map_err(|e| {
            if matches!(e, NotReady::Timeout) {
                self.kill();
            }
            self.not_ready(&e, timeout)
        })
    }

    /// The error for a failed start, naming the process and quoting its stderr tail.
    pub fn not_ready(&self, why: &NotReady, timeout: Duration) -> LabError {
        let name = format!("{} (pid {})", self.0.name, self.0.pid);
        match why {
            NotReady::Timeout => LabError::Timeout {
                what: format!(
                    "waiting for {name} to print its ready line; it was killed; last stderr lines:\n{}",
                    self.tail()
                ),
                secs: timeout.as_secs_f64(),
            },
            NotReady::Ended(exit) => LabError::Process {
                what: format!(
                    "{name} ended before it was ready ({})",
                    exit.as_ref().map_or("still running", |e| e.status.as_str())
                ),
                detail: format!("last stderr lines:\n{}", self.tail()),
            },
        }
    }

    /// After a SIGSTOP: waits (blocking, up to `bound`) until every thread of the process is
    /// stopped; false past the bound or once it has ended. `kill` only queues the signal; a
    /// request the node was already serving could still be answered, and a "paused" node that
    /// answers is not paused (it made tests flaky).
    pub fn wait_stopped(&self, bound: Duration) -> bool {
        let started = std::time::Instant::now();
        loop {
            if all_threads_stopped(self.0.pid) {
                return true;
            }
            if started.elapsed() >= bound || self.exit().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1)); // polling /proc: no event says "stopped"
        }
    }

    /// SIGTERM (after SIGCONT: a paused process would hold it pending), then up to `bound` for
    /// the graceful exit; SIGKILL past it (an error). Returns the exit code.
    pub fn stop(&self, bound: Duration) -> Result<Option<i32>> {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGTERM);
        if let Some(e) = self.wait_exit(bound) {
            tracing::debug!(name = %self.0.name, status = %e.status, "stopped");
            return Ok(e.code);
        }
        self.kill();
        Err(LabError::Timeout {
            what: format!("stopping {} with SIGTERM (killed it)", self.0.name),
            secs: bound.as_secs_f64(),
        })
    }

    /// SIGKILL, and wait (bounded) until it is reaped; a no-op once it has ended.
    pub fn kill(&self) {
        self.0.kill()
    }

    /// The last stderr lines, for error messages.
    pub fn tail(&self) -> String {
        let lines = lock(&self.0.tail);
        if lines.is_empty() {
            "(no stderr output)".into()
        } else {
            lines.iter().cloned().collect::<Vec<_>>().join("\n")
        }
    }
}

impl Inner {
    fn signal(&self, sig: libc::c_int) -> bool {
        let slot = lock(&self.slot);
        if matches!(*slot, Slot::Running(_)) {
            // SAFETY: kill(2) on the PID of our child, not reaped while we hold the slot.
            unsafe { libc::kill(self.pid as libc::pid_t, sig) };
            true
        } else {
            false
        }
    }

    fn wait_exit(&self, bound: Duration) -> Option<Exit> {
        let (cell, cv) = &*self.exit;
        let guard =
            cv.wait_timeout_while(lock(cell), bound, |e| e.is_none()).unwrap_or_else(|p| p.into_inner());
        guard.0.clone()
    }

    fn kill(&self) {
        if self.signal(libc::SIGKILL) && self.wait_exit(KILL_WAIT).is_none() {
            tracing::warn!(name = %self.name, pid = self.pid, "did not die within {KILL_WAIT:?} of SIGKILL");
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if matches!(*lock(&self.slot), Slot::Running(_)) {
            tracing::warn!(name = %self.name, pid = self.pid, "dropped while running: killing it");
            self.kill();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Calls `f` with each line of `pipe` until it closes. Lossy: a stray non-UTF-8 byte in a log
/// line must not stop the capture.
fn read_lines(pipe: impl Read, mut f: impl FnMut(&str)) {
    let mut reader = BufReader::new(pipe);
    let mut raw = Vec::new();
    // Bounded by the pipe: it ends when the process closes it (exits).
    loop {
        raw.clear();
        match reader.read_until(b'\n', &mut raw) {
            Ok(0) | Err(_) => return,
            Ok(_) => f(String::from_utf8_lossy(&raw).trim_end()),
        }
    }
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

/// Blocks until `pid` (our child) has exited, leaving it unreaped (a zombie keeps its PID).
fn wait_unreaped(pid: u32) {
    // Retried only when a signal interrupts the wait.
    for _ in 0..10_000 {
        // SAFETY: waitid on our own child; `info` is a plain C struct it fills.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r =
            unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOWAIT) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn tie_to_lab(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
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
}

fn describe(status: ExitStatus) -> (String, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    let text = match (status.code(), status.signal()) {
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
    };
    (text, status.code())
}

#[cfg(test)]
mod tests;
