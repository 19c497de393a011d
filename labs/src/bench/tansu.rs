//! Tansu, a Kafka-compatible Rust broker, as the peer the bench compares against.
//!
//! It runs with its in-memory storage engine (`memory://tansu/`), bound to loopback only on a
//! free port. There is no fsync to configure, so it is the "no durability cost" reference.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::broker_process::{READY_TIMEOUT, STOP_TIMEOUT};
use crate::error::{LabError, Result};
use crate::launcher::{self, Child, Launch};

/// Environment variable naming the Tansu binary when `--tansu` is not given.
pub const TANSU_ENV: &str = "TANSU_BIN";

/// One Tansu broker process with memory storage.
pub struct TansuProcess {
    pub addr: SocketAddr,
    process: Child,
    _logs: tempfile::TempDir,
}

impl TansuProcess {
    pub fn start(bin: &Path) -> Result<Self> {
        let addr = free_loopback_port()?;
        let logs = tempfile::Builder::new()
            .prefix("clusterlab-bench-tansu-")
            .tempdir()
            .map_err(LabError::io("creating a log directory for tansu"))?;
        let url = format!("tcp://{addr}");
        let mut cmd = Command::new(bin);
        cmd.arg("broker").args(["--listener-url", &url, "--advertised-listener-url", &url]).args([
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            "clusterlab-bench",
        ]);
        // Tansu reads these from the environment too; make sure an inherited value cannot send
        // it to another listener or storage engine.
        for var in
            ["LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "OTEL_EXPORTER_OTLP_ENDPOINT"]
        {
            cmd.env_remove(var);
        }
        // Tansu 0.6 prints "ready in <n>ms" on stdout once it accepts connections.
        let launch = Launch::new("tansu", cmd).log_to(logs.path().join("tansu.log"));
        let (process, ready) = launcher::spawn(launch, |line| line.starts_with("ready in").then_some(()))?;
        process.expect_ready(ready, READY_TIMEOUT)?;
        tracing::info!(%addr, pid = process.pid(), "tansu ready");
        Ok(TansuProcess { addr, process, _logs: logs })
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// Stops Tansu; its exit code is not checked (it is not our code under test).
    pub fn stop(&mut self) -> Result<()> {
        self.process.stop(STOP_TIMEOUT).map(|_| ())
    }
}

/// `--tansu PATH`, else `$TANSU_BIN`, else none (no peer comparison).
pub fn locate_tansu(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(TANSU_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => return Ok(None),
        },
    };
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err(LabError::BinaryNotFound {
            what: "tansu",
            path,
            hint: "pass the path of a tansu executable with --tansu or TANSU_BIN".into(),
        })
    }
}

/// Asks the kernel for a free loopback port. Another process could take it before Tansu binds
/// it; Tansu then fails its start-up, which is reported, not retried silently.
fn free_loopback_port() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(LabError::io("finding a free loopback port"))?;
    l.local_addr().map_err(LabError::io("finding a free loopback port"))
}
