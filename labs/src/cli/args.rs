//! Arguments of the lab subcommands (`up`, `serve`, `status`, `fault`, `drill`, `export`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};
use labs::lab::protocol::{ClusterSettings, Command};
use labs::lab::LabConfig;

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Start a cluster and the lab server (foreground); prints one JSON ready line; Ctrl-C stops all.
    Up(UpArgs),
    /// Serve the lab protocol and the web UI without starting a cluster (the UI starts it).
    Serve(ServeArgs),
    /// Show the running lab's nodes, leaders and workload.
    Status(LabRef),
    /// Inject a fault: kill | stop | pause | resume | restart | power_cut | slow_disk | isolate | heal.
    Fault(FaultArgs),
    /// List or run drills.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Export the running lab's timeline (or convert a saved JSON Lines timeline).
    Export(ExportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct Common {
    /// The clusterlab-broker executable [default: next to this executable].
    #[arg(long)]
    pub broker_bin: Option<PathBuf>,
    /// Where node data dirs go [default: the platform data dir].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The drill catalog [default: labs/drills].
    #[arg(long)]
    pub drills: Option<PathBuf>,
}

impl Common {
    pub fn lab_config(&self) -> anyhow::Result<LabConfig> {
        Ok(LabConfig {
            broker_bin: super::broker_bin(self.broker_bin.clone())?,
            data_root: self.data_dir.clone(),
            drills_dir: super::drills_dir(self.drills.clone())
                .unwrap_or_else(|_| PathBuf::from("labs/drills")),
            export_dir: PathBuf::from("clusterlab-export"),
        })
    }
}

#[derive(Args, Debug)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// always | interval:<ms> | never
    #[arg(long, default_value = "always")]
    pub fsync: String,
    #[arg(long, default_value_t = 3)]
    pub partitions: i32,
    #[arg(long, default_value_t = ClusterSettings::default().election_timeout_min_ms)]
    pub election_timeout_min_ms: u64,
    #[arg(long, default_value_t = ClusterSettings::default().election_timeout_max_ms)]
    pub election_timeout_max_ms: u64,
    #[arg(long, default_value_t = ClusterSettings::default().heartbeat_ms)]
    pub heartbeat_ms: u64,
    #[command(flatten)]
    pub server: ServerFlags,
}

/// Where and how the lab server listens (`up` and `serve`).
#[derive(Args, Debug)]
pub struct ServerFlags {
    /// The lab server (loopback unless --token is given).
    #[arg(long, default_value = "127.0.0.1:7300")]
    pub bind: SocketAddr,
    /// Required beyond loopback: viewers without it are read-only.
    #[arg(long)]
    pub token: Option<String>,
    /// The built web UI to serve at /.
    #[arg(long)]
    pub ui_dir: Option<PathBuf>,
}

impl UpArgs {
    pub fn settings(&self) -> ClusterSettings {
        ClusterSettings {
            nodes: self.nodes,
            fsync: self.fsync.clone(),
            partitions: self.partitions,
            replication_factor: self.nodes.min(3) as i16,
            election_timeout_min_ms: self.election_timeout_min_ms,
            election_timeout_max_ms: self.election_timeout_max_ms,
            heartbeat_ms: self.heartbeat_ms,
            ..ClusterSettings::default()
        }
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub server: ServerFlags,
}

#[derive(Args, Debug)]
pub struct LabRef {
    /// The lab server, e.g. http://127.0.0.1:7300 [default: the one `up` recorded].
    #[arg(long)]
    pub lab: Option<String>,
}

#[derive(Args, Debug)]
pub struct FaultArgs {
    pub kind: String,
    /// node:<id> | leader:<topic>/<p> | follower:<topic>/<p> | controller | random | all
    pub target: String,
    /// slow_disk: delay per fsync in ms.
    #[arg(long)]
    pub param: Option<u64>,
    #[command(flatten)]
    pub lab: LabRef,
}

impl FaultArgs {
    pub fn command(&self) -> Command {
        Command::Fault { fault: self.kind.clone(), target: self.target.clone(), param: self.param }
    }
}

#[derive(Subcommand, Debug)]
pub enum DrillCommand {
    /// The catalog.
    List {
        #[arg(long)]
        drills: Option<PathBuf>,
    },
    /// Run drills headless; the exit code says whether every expectation held.
    Run {
        /// Drill names (see `drill list`).
        names: Vec<String>,
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        #[arg(long)]
        seed: Option<u64>,
        /// Write every export of each run under DIR/<drill>/.
        #[arg(long)]
        export: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// jsonl | perfetto | edn | csv | charts | html | all
    #[arg(long, default_value = "all")]
    pub format: String,
    #[arg(long, default_value = "clusterlab-export")]
    pub dir: PathBuf,
    /// Convert this saved JSON Lines timeline instead of asking a running lab.
    #[arg(long)]
    pub from: Option<PathBuf>,
    #[command(flatten)]
    pub lab: LabRef,
}
