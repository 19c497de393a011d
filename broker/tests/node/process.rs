//! One `clusterlab-broker` process as every broker test runs it: spawned from a command line, its
//! stderr kept as a bounded tail, its ready line awaited, SIGKILLed by PID when dropped (also when
//! a test panics). Shared by the single-node harness (`harness.rs`) and the cluster harness
//! (`tests/cluster/harness.rs`), which only differ in the command lines they build.
//!
//! Nothing here sleeps to synchronise: the ready line is read from stdout, exits are polled with
//! a deadline, and every error names the process and carries the end of its stderr.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use broker::telemetry::wire::ReadyLine;

pub const BROKER_BIN: &str = env!("CARGO_BIN_EXE_clusterlab-broker");
/// Keep this much of a broker's stderr for failure messages.
const STDERR_TAIL_BYTES: usize = 256 * 1024;
/// Lines of stderr an error message carries.
const ERROR_LINES: usize = 60;

/// A `clusterlab-broker` command with pipes set up and `RUST_LOG=info` unless the caller set one.
pub fn broker_command() -> Command {
    let mut cmd = Command::new(BROKER_BIN);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Captured output of a broker process, shared with the thread that reads it.
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<String>>, Arc<AtomicBool>);

impl Tail {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True once the stream reached its end (the process closed it, normally by exiting).
    pub fn ended(&self) -> bool {
        self.1.load(Ordering::Acquire)
    }

    fn push_line(&self, line: &str) {
        let mut s = self.0.lock().unwrap_or_else(|p| p.into_inner());
        s.push_str(line);
        s.push('\n');
        if s.len() > STDERR_TAIL_BYTES {
            let mut cut = s.len() - STDERR_TAIL_BYTES;
            while !s.is_char_boundary(cut) {
                cut += 1;
            }
            s.drain(..cut);
        }
    }

    /// Reads `stream` to its end on a thread; echoes lines when BROKER_ECHO is set (debugging).
    pub fn collect<R: std::io::Read + Send + 'static>(stream: R, label: String) -> Tail {
        let tail = Tail::default();
        let writer = tail.clone();
        let echo = std::env::var_os("BROKER_ECHO").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[{label}] {line}");
                }
                writer.push_line(&line);
            }
            writer.1.store(true, Ordering::Release);
        });
        tail
    }
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One broker process; SIGKILLed by PID on drop.
pub struct Proc {
    pub pid: u32,
    /// How errors name it ("broker", "node 2").
    label: String,
    child: Option<Child>,
    stderr: Tail,
    /// Stdout lines until the ready line (a thread keeps draining stdout so the broker never
    /// blocks on a full pipe).
    stdout: mpsc::Receiver<String>,
}

impl Proc {
    /// Spawns `cmd` (from `broker_command`); the ready line is awaited by `await_ready`.
    pub fn spawn(mut cmd: Command, label: &str) -> Result<Proc> {
        let mut child = cmd.spawn().with_context(|| format!("spawning {BROKER_BIN} for {label}"))?;
        let pid = child.id();
        let stderr = Tail::collect(child.stderr.take().expect("stderr piped"), format!("{label} pid {pid}"));
        let out = child.stdout.take().expect("stdout piped");
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Ok(Proc { pid, label: label.to_string(), child: Some(child), stderr, stdout })
    }

    /// Waits for the ready line ([`ReadyLine`]) and returns it.
    pub fn await_ready(&mut self, timeout: Duration) -> Result<ReadyLine> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.stdout.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(ready) = ReadyLine::parse(&line) {
                        return Ok(ready);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(timeout)?;
                    bail!(
                        "{} exited ({status}) before its ready line; stderr:\n{}",
                        self.name(),
                        self.stderr_tail()
                    );
                }
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!(
                    "{} exited ({status}) before its ready line; stderr:\n{}",
                    self.name(),
                    self.stderr_tail()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} printed no ready line within {timeout:?}; stderr:\n{}",
                    self.name(),
                    self.stderr_tail()
                );
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        if rc != 0 {
            bail!("kill({}, {sig}) failed: {}", self.pid, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// SIGSTOP, then waits (at most 2 s) until every thread of the process is stopped: kill(2)
    /// only queues the signal, and a follower still running for a few milliseconds can answer
    /// the very append a test meant it to miss (the lab's supervisor waits the same way).
    #[allow(dead_code)] // the cluster tests pause nodes; the node tests share this file
    pub fn pause(&self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        let deadline = Instant::now() + Duration::from_secs(2);
        while !all_threads_stopped(self.pid) {
            if Instant::now() >= deadline {
                bail!("{} not stopped 2 s after SIGSTOP", self.name());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Polls the exit status until `timeout`; the error names the process and carries stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = self.name();
        let child = self.child.as_mut().ok_or_else(|| anyhow!("{name} was already reaped"))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{name} did not exit within {timeout:?}; stderr:\n{}", self.stderr_tail());
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval, not synchronisation
        }
    }

    /// SIGTERM and wait for the graceful stop, which must exit with code 0.
    pub fn stop_gracefully(&mut self, timeout: Duration) -> Result<()> {
        self.signal(libc::SIGTERM)?;
        let status = self
            .wait_exit(timeout)
            .with_context(|| format!("{}: waiting for the exit after SIGTERM", self.name()))?;
        if status.code() != Some(0) {
            bail!(
                "{} exited with {status} after SIGTERM, expected 0; stderr:\n{}",
                self.name(),
                self.stderr_tail()
            );
        }
        Ok(())
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// The stdout lines not read yet (what a process that failed at start-up printed).
    pub fn stdout_unread(&self) -> String {
        self.stdout.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// True once the process closed its stderr (its last lines are in `stderr()`).
    pub fn stderr_ended(&self) -> bool {
        self.stderr.ended()
    }

    fn stderr_tail(&self) -> String {
        tail_lines(&self.stderr.text(), ERROR_LINES)
    }

    fn name(&self) -> String {
        format!("{} (pid {})", self.label, self.pid)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill(); // SIGKILL by PID: nothing may outlive the test
            }
            let _ = child.wait();
        }
    }
}

/// Every thread of `pid` in state T (stopped) or t (traced), from /proc.
#[allow(dead_code)]
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
