//! One `clusterlab-broker` process as every broker test runs it, started through the lab's
//! launcher (`labs::launcher`, the one way the project runs a broker: decision 41): its stderr
//! kept as a bounded text the tests can search, its ready line awaited, SIGKILLed by PID when
//! dropped (also when a test panics). Shared by the single-node harness (`harness.rs`) and the
//! cluster harness (`tests/cluster/harness.rs`), which only differ in the command lines they build.
//!
//! Nothing here sleeps to synchronise: the ready line is read from stdout, exits are awaited with
//! a bound, and every error names the process and carries the end of its stderr.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use broker::telemetry::wire::ReadyLine;
use labs::launcher::{self, Child, Exit, Launch, Ready, Stream};

pub const BROKER_BIN: &str = env!("CARGO_BIN_EXE_clusterlab-broker");
/// Keep this much of a broker's stderr: tests search it for what the broker said.
const STDERR_TAIL_BYTES: usize = 256 * 1024;
/// Lines of stderr an error message carries.
const ERROR_LINES: usize = 60;

/// A `clusterlab-broker` command with `RUST_LOG=info` unless the caller set one.
pub fn broker_command() -> Command {
    let mut cmd = Command::new(BROKER_BIN);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd
}

/// The last [`STDERR_TAIL_BYTES`] of a stream, filled by the launcher's reader thread.
#[derive(Clone, Default)]
struct Tail(Arc<Mutex<String>>);

impl Tail {
    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
}

/// The last `n` lines of `text`.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One broker process; SIGKILLed by PID on drop (the launcher's handle does it).
pub struct Proc {
    pub pid: u32,
    /// How errors name it ("broker", "node 2").
    label: String,
    child: Child,
    ready: Option<Ready<ReadyLine>>,
    stdout: Tail,
    stderr: Tail,
}

impl Proc {
    /// Spawns `cmd` (from `broker_command`); the ready line is awaited by `await_ready`. Lines
    /// are echoed when BROKER_ECHO is set (debugging).
    pub fn spawn(cmd: Command, label: &str) -> Result<Proc> {
        let (stdout, stderr) = (Tail::default(), Tail::default());
        let (out, err) = (stdout.clone(), stderr.clone());
        let echo = std::env::var_os("BROKER_ECHO").is_some().then(|| label.to_string());
        let launch = Launch::new(label, cmd).on_line(move |stream, line| {
            if let Some(label) = &echo {
                eprintln!("[{label}] {line}");
            }
            match stream {
                Stream::Stdout => out.push_line(line),
                Stream::Stderr => err.push_line(line),
            }
        });
        let (child, ready) = launcher::spawn(launch, ReadyLine::parse)
            .with_context(|| format!("spawning {BROKER_BIN} for {label}"))?;
        Ok(Proc { pid: child.pid(), label: label.to_string(), child, ready: Some(ready), stdout, stderr })
    }

    /// Waits for the ready line ([`ReadyLine`]) and returns it.
    pub fn await_ready(&mut self, timeout: Duration) -> Result<ReadyLine> {
        let ready =
            self.ready.take().ok_or_else(|| anyhow!("{}: ready line already awaited", self.name()))?;
        self.child.wait_ready(ready, timeout).map_err(|why| {
            let why = self.child.not_ready(&why, timeout);
            anyhow!("{why}; stderr:\n{}", self.stderr_tail())
        })
    }

    pub fn is_running(&mut self) -> bool {
        self.child.exit().is_none()
    }

    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        if !self.child.signal(sig) {
            bail!("signal {sig} to {}: it has already ended", self.name());
        }
        Ok(())
    }

    /// SIGSTOP, then waits (at most 2 s) until every thread of the process is stopped: kill(2)
    /// only queues the signal, and a follower still running for a few milliseconds can answer
    /// the very append a test meant it to miss.
    #[allow(dead_code)] // the cluster tests pause nodes; the node tests share this file
    pub fn pause(&self) -> Result<()> {
        self.signal(libc::SIGSTOP)?;
        if !self.child.wait_stopped(Duration::from_secs(2)) {
            bail!("{} not stopped 2 s after SIGSTOP", self.name());
        }
        Ok(())
    }

    /// Waits for the exit up to `timeout`; the error names the process and carries stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit> {
        self.child.wait_exit(timeout).ok_or_else(|| {
            anyhow!("{} did not exit within {timeout:?}; stderr:\n{}", self.name(), self.stderr_tail())
        })
    }

    /// SIGTERM and wait for the graceful stop, which must exit with code 0.
    pub fn stop_gracefully(&mut self, timeout: Duration) -> Result<()> {
        self.signal(libc::SIGTERM)?;
        let exit = self
            .wait_exit(timeout)
            .with_context(|| format!("{}: waiting for the exit after SIGTERM", self.name()))?;
        if exit.code != Some(0) {
            bail!(
                "{} exited with {exit} after SIGTERM, expected 0; stderr:\n{}",
                self.name(),
                self.stderr_tail()
            );
        }
        Ok(())
    }

    /// Everything kept of its stderr. After [`wait_exit`](Self::wait_exit) returned, it holds the
    /// last lines too (the launcher reports the exit once stderr is drained).
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// What it printed on stdout (a process that failed at start-up prints its reason there too).
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    fn stderr_tail(&self) -> String {
        tail_lines(&self.stderr.text(), ERROR_LINES)
    }

    fn name(&self) -> String {
        format!("{} (pid {})", self.label, self.pid)
    }
}
