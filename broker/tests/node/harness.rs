//! Starts and stops real single-node `clusterlab-broker` processes.
//!
//! Every process a test starts is owned by a `Broker` value (its `process::Proc`) and killed by
//! PID when that value is dropped (also when the test panics), so a failing test never leaves a
//! broker behind. Nothing here sleeps to synchronise: start-up waits for the ready line, stops
//! poll the exit status, and every wait has a deadline and says what it was waiting for.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::process::{broker_command, Proc};
use broker::state::StateSnapshot;
use labs::launcher::Exit;

/// Start-up includes log recovery; on a loaded 2-core machine that can take a few seconds.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Graceful stop drains connections (bounded by the broker at 10 s) and fsyncs everything.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

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
        let mut cmd = broker_command();
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
        cmd
    }
}

/// One running (or stopped) broker process.
pub struct Broker {
    pub opts: BrokerOpts,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub pid: u32,
    proc: Proc,
}

impl Broker {
    /// Starts a broker and waits for its ready line.
    pub fn start(opts: BrokerOpts) -> Result<Broker> {
        let mut proc = Proc::spawn(opts.command(), "broker")?;
        let ready = proc.await_ready(READY_TIMEOUT)?;
        let (kafka, http) = (ready.kafka, ready.http);
        let mut opts = opts;
        // Restarts reuse these exact ports.
        opts.kafka_port = kafka.port();
        opts.http_port = http.port();
        Ok(Broker { opts, kafka, http, pid: proc.pid, proc })
    }

    /// Starts a broker that is expected to fail at start-up; returns its exit status and stderr.
    pub fn start_expecting_failure(opts: BrokerOpts) -> Result<(Exit, String)> {
        let mut proc = Proc::spawn(opts.command(), "broker")?;
        let exit =
            proc.wait_exit(READY_TIMEOUT).with_context(|| format!("stdout so far: {}", proc.stdout()))?;
        Ok((exit, proc.stderr()))
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
        self.proc.stderr()
    }

    pub fn bootstrap(&self) -> String {
        self.kafka.to_string()
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.is_running()
    }

    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        self.proc.signal(sig)
    }

    /// Polls the exit status until `timeout`; the error names the PID and includes stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit> {
        self.proc.wait_exit(timeout)
    }

    /// SIGTERM and wait for the graceful stop; asserts exit code 0.
    pub fn stop_gracefully(&mut self) -> Result<()> {
        self.proc.stop_gracefully(EXIT_TIMEOUT)
    }

    /// SIGKILL and reap: a crash with no chance to flush.
    pub fn kill_hard(&mut self) -> Result<Exit> {
        self.signal(libc::SIGKILL)?;
        self.wait_exit(EXIT_TIMEOUT)
    }

    /// GET /state in the node's own type.
    pub fn state(&self) -> Result<StateSnapshot> {
        crate::endpoint::get(self.http, "/state")
    }

    /// The node's recent warnings as their JSON text, to search for what a warning says.
    pub fn warnings_text(&self) -> Result<String> {
        Ok(serde_json::to_string(&self.state()?.recent_warnings)?)
    }

    /// GET /health must answer 200 "ok".
    pub fn assert_healthy(&mut self, after: &str) -> Result<()> {
        if !self.is_running() {
            bail!("broker pid {} died after {after}; stderr:\n{}", self.pid, self.stderr());
        }
        let body = crate::endpoint::get_text(self.http, "/health")
            .with_context(|| format!("GET /health after {after}"))?;
        if body.trim() != "ok" {
            bail!("GET /health after {after} answered {body:?}");
        }
        Ok(())
    }

    /// The segment directory of one partition.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        broker::log::partition_dir(&self.opts.data_dir, topic, partition)
    }
}

pub use crate::wait::unique;

/// A temporary data directory for one broker.
pub fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("clusterlab-test-").tempdir().expect("creating a temp data dir")
}
