//! Starts and stops real `clusterlab-broker` processes.
//!
//! Every process a test starts is owned by a `Broker` value and killed by PID when that value is
//! dropped (also when the test panics), so a failing test never leaves a broker behind. Nothing
//! here sleeps to synchronise: start-up waits for the ready line, stops poll the exit status, and
//! every wait has a deadline and says what it was waiting for.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub const BROKER_BIN: &str = env!("CARGO_BIN_EXE_clusterlab-broker");
/// Start-up includes log recovery; on a loaded 2-core machine that can take a few seconds.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Graceful stop drains connections (bounded by the broker at 10 s) and fsyncs everything.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);
/// Keep this much of a broker's stderr for failure messages.
const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// How to start a broker. Ports 0 let the broker choose; restarts reuse the reported ports.
#[derive(Clone, Debug)]
pub struct BrokerOpts {
    pub data_dir: PathBuf,
    pub kafka_port: u16,
    pub http_port: u16,
    pub fsync: Option<String>,
    pub advertised_kafka: Option<SocketAddr>,
    pub extra_args: Vec<String>,
}

impl BrokerOpts {
    pub fn new(data_dir: &Path) -> BrokerOpts {
        BrokerOpts {
            data_dir: data_dir.to_path_buf(),
            kafka_port: 0,
            http_port: 0,
            fsync: None,
            advertised_kafka: None,
            extra_args: Vec::new(),
        }
    }

    pub fn fsync(mut self, policy: &str) -> BrokerOpts {
        self.fsync = Some(policy.to_string());
        self
    }

    pub fn advertised(mut self, addr: SocketAddr) -> BrokerOpts {
        self.advertised_kafka = Some(addr);
        self
    }

    pub fn arg(mut self, arg: &str) -> BrokerOpts {
        self.extra_args.push(arg.to_string());
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BROKER_BIN);
        cmd.arg("--node-id")
            .arg("1")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--kafka-listen")
            .arg(format!("127.0.0.1:{}", self.kafka_port))
            .arg("--http-listen")
            .arg(format!("127.0.0.1:{}", self.http_port));
        if let Some(f) = &self.fsync {
            cmd.arg("--fsync").arg(f);
        }
        if let Some(a) = self.advertised_kafka {
            cmd.arg("--advertised-kafka").arg(a.to_string());
        }
        cmd.args(&self.extra_args);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }
}

/// Captured stderr of a broker process, shared with the thread that reads it.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<String>>, Arc<std::sync::atomic::AtomicBool>);

impl StderrTail {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// True once the stream reached its end (the process closed it, normally by exiting).
    pub fn ended(&self) -> bool {
        self.1.load(std::sync::atomic::Ordering::Acquire)
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
    fn collect<R: std::io::Read + Send + 'static>(stream: R, label: String) -> StderrTail {
        let tail = StderrTail::default();
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
            writer.1.store(true, std::sync::atomic::Ordering::Release);
        });
        tail
    }
}

/// One running (or stopped) broker process.
pub struct Broker {
    pub opts: BrokerOpts,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub pid: u32,
    child: Option<Child>,
    stderr: StderrTail,
}

impl Broker {
    /// Starts a broker and waits for its ready line.
    pub fn start(opts: BrokerOpts) -> Result<Broker> {
        let mut child = opts.command().spawn().with_context(|| format!("spawning {BROKER_BIN}"))?;
        let pid = child.id();
        let stderr =
            StderrTail::collect(child.stderr.take().expect("stderr piped"), format!("broker pid {pid}"));
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel::<String>();
        // The ready line is the first JSON line; the thread keeps draining stdout afterwards so
        // the broker can never block on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut broker = Broker {
            opts,
            kafka: "0.0.0.0:0".parse()?,
            http: "0.0.0.0:0".parse()?,
            pid,
            child: Some(child),
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                    if v["event"] != "ready" {
                        continue;
                    }
                    broker.kafka = v["kafka"]
                        .as_str()
                        .ok_or_else(|| anyhow!("ready line without kafka: {line}"))?
                        .parse()?;
                    broker.http = v["http"]
                        .as_str()
                        .ok_or_else(|| anyhow!("ready line without http: {line}"))?
                        .parse()?;
                    // Restarts reuse these exact ports.
                    broker.opts.kafka_port = broker.kafka.port();
                    broker.opts.http_port = broker.http.port();
                    return Ok(broker);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = broker.wait_exit(EXIT_TIMEOUT)?;
                    bail!(
                        "broker pid {pid} exited ({status}) before printing its ready line; stderr:\n{}",
                        broker.stderr()
                    );
                }
            }
            if let Some(status) = broker.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!(
                    "broker pid {pid} exited ({status}) before printing its ready line; stderr:\n{}",
                    broker.stderr()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker pid {pid} printed no ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                    broker.stderr()
                );
            }
        }
    }

    /// Starts a broker that is expected to fail at start-up; returns its exit status and stderr.
    pub fn start_expecting_failure(opts: BrokerOpts) -> Result<(ExitStatus, String)> {
        let mut child = opts.command().spawn().with_context(|| format!("spawning {BROKER_BIN}"))?;
        let stderr = StderrTail::collect(
            child.stderr.take().expect("stderr piped"),
            format!("broker pid {}", child.id()),
        );
        let stdout = StderrTail::collect(child.stdout.take().expect("stdout piped"), "stdout".into());
        let mut broker = Broker {
            opts,
            kafka: "0.0.0.0:0".parse()?,
            http: "0.0.0.0:0".parse()?,
            pid: child.id(),
            child: Some(child),
            stderr,
        };
        let status =
            broker.wait_exit(READY_TIMEOUT).with_context(|| format!("stdout so far: {}", stdout.text()))?;
        // The reading thread may still hold the last line for a moment after the exit.
        wait_for("the failed broker's stderr to end", Duration::from_secs(5), || {
            Ok(broker.stderr.ended().then_some(()))
        })?;
        Ok((status, broker.stderr()))
    }

    /// Restarts on the same data dir and the same ports (the previous process must be gone).
    pub fn restart(&mut self) -> Result<()> {
        if self.is_running() {
            bail!("restart of broker pid {} while it is still running", self.pid);
        }
        let next = Broker::start(self.opts.clone())?;
        *self = next;
        Ok(())
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    pub fn bootstrap(&self) -> String {
        self.kafka.to_string()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) with the PID of a child we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        if rc != 0 {
            bail!("kill({}, {sig}) failed: {}", self.pid, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Polls the exit status until `timeout`; the error names the PID and includes stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child =
            self.child.as_mut().ok_or_else(|| anyhow!("broker pid {} was already reaped", self.pid))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker pid {} did not exit within {timeout:?}; stderr:\n{}",
                    self.pid,
                    self.stderr.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval, not synchronisation
        }
    }

    /// SIGTERM and wait for the graceful stop; asserts exit code 0.
    pub fn stop_gracefully(&mut self) -> Result<()> {
        self.signal(libc::SIGTERM)?;
        let status = self.wait_exit(EXIT_TIMEOUT).context("waiting for the exit after SIGTERM")?;
        if status.code() != Some(0) {
            bail!(
                "broker pid {} exited with {status} after SIGTERM, expected 0; stderr:\n{}",
                self.pid,
                self.stderr()
            );
        }
        Ok(())
    }

    /// SIGKILL and reap: a crash with no chance to flush.
    pub fn kill_hard(&mut self) -> Result<ExitStatus> {
        self.signal(libc::SIGKILL)?;
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// GET /state as JSON.
    pub fn state(&self) -> Result<serde_json::Value> {
        let (status, body) = crate::http::get(self.http, "/state")?;
        if status != 200 {
            bail!("GET /state answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("GET /state body is not JSON: {body}"))
    }

    /// GET /health must answer 200 "ok".
    pub fn assert_healthy(&mut self, after: &str) -> Result<()> {
        if !self.is_running() {
            bail!("broker pid {} died after {after}; stderr:\n{}", self.pid, self.stderr());
        }
        let (status, body) =
            crate::http::get(self.http, "/health").with_context(|| format!("GET /health after {after}"))?;
        if status != 200 || body.trim() != "ok" {
            bail!("GET /health after {after} answered {status} {body:?}");
        }
        Ok(())
    }

    /// The segment directory of one partition.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.opts.data_dir.join("partitions").join(format!("{topic}-{partition}"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill(); // SIGKILL by PID: nothing may outlive the test
            }
            let _ = child.wait();
        }
    }
}

pub use crate::wait::{unique, wait_for};

/// A temporary data directory for one broker.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("clusterlab-test-").tempdir().expect("creating a temp data dir")
}
