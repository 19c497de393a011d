//! A `clusterlab-broker` node the bench runs on its own (through [`crate::launcher`]), and where
//! its binary is.
//!
//! Only processes we spawned are ever signalled, by their PID, and a broker that is dropped
//! without `stop()` (error, panic, Ctrl-C) is killed so no broker outlives the bench.

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use broker::telemetry::wire::ReadyLine;

use crate::error::{LabError, Result};
use crate::launcher::{self, Child, Launch};

/// Upper bound for a broker to print its ready line; a healthy one needs milliseconds.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a graceful stop after SIGTERM before we fall back to SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The storage counters of `GET /state`.
pub use broker::log::StoreStats;

/// One `clusterlab-broker` node on a fresh data directory.
pub struct BrokerProcess {
    pub ready: ReadyLine,
    process: Child,
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
        let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().expect("valid literal");
        let config = broker::config::Config {
            node_id: 1,
            data_dir: data.path().join("node"),
            kafka_listen: any_port,
            http_listen: any_port,
            fsync: fsync.parse().map_err(|detail| LabError::InvalidArgument { what: "fsync", detail })?,
            auto_create_topics: false,
            ..Default::default()
        };
        let config_file = data.path().join("node.toml");
        launcher::write_broker_config(&config_file, &config)?;
        let mut cmd = launcher::broker_command(bin, &config_file);
        // Info-level logs per request would tax the broker during a throughput test.
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let log = data.path().join("broker.log");
        let (process, ready) =
            launcher::spawn(Launch::new("clusterlab-broker", cmd).log_to(log), ReadyLine::parse)?;
        let ready = process.expect_ready(ready, READY_TIMEOUT)?;
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
        self.process.stop(STOP_TIMEOUT)
    }

    /// While it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.exit().is_none().then(|| self.process.pid())
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
