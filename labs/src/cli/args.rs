//! Arguments of the lab subcommands (`up`, `serve`, `status`, `fault`, `drill`, `export`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

pub use super::common::Common;
use labs::lab::protocol::{ClusterSettings, Command};

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Start a cluster and the lab server (foreground); prints one JSON ready line; Ctrl-C stops all.
    Up(UpArgs),
    /// Serve the lab protocol and the web UI without starting a cluster (the UI starts it).
    Serve(ServeArgs),
    /// Show the running lab's nodes, leaders and workload.
    Status(LabRef),
    /// Inject a fault: kill | stop | pause | resume | restart | power_cut | slow_disk | fsync_fail | isolate | heal.
    Fault(FaultArgs),
    /// List or run drills.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// List or run the guided lessons headless (the runner acts for the learner).
    #[command(subcommand)]
    Lesson(LessonCommand),
    /// Export the running lab's timeline (or convert a saved JSON Lines timeline).
    Export(ExportArgs),
    /// Recent runs kept on disk (the window's and the CLI's): list, show, export, delete, cap.
    Runs(RunsArgs),
    /// Seeded chaos: draw faults and heals from a seed, run them under the workload, check;
    /// `chaos shrink FILE` makes a failing drill smaller.
    Chaos(super::chaos::ChaosArgs),
}

#[derive(Args, Debug)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
    /// The data dir the runs were recorded under (as given to `up`/`serve`/`drill run`)
    /// [default: the platform data dir].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum RunsCommand {
    /// Every recent run, newest first.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One run's summary and verdict (ID or a unique prefix of it).
    Show { id: String },
    /// Write a run's timeline in one format or all of them.
    Export {
        id: String,
        /// jsonl | perfetto | edn | csv | charts | html | all
        #[arg(long, default_value = "all")]
        format: String,
        #[arg(long, default_value = "clusterlab-export")]
        dir: PathBuf,
    },
    /// Delete runs.
    Delete {
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// Show the size cap of the recent runs, or set it (MB); the oldest go first beyond it.
    Cap { mb: Option<u64> },
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
        /// Drill names (see `drill list`) or drill files (`chaos-42.toml`).
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

#[derive(Subcommand, Debug)]
pub enum LessonCommand {
    /// The lessons.
    List {
        #[arg(long)]
        lessons: Option<PathBuf>,
    },
    /// Run lessons headless: each step's narration and explanation, then PASS or FAIL; the exit
    /// code says whether every lesson still shows what it teaches.
    Run {
        /// Lesson names (see `lesson list`).
        names: Vec<String>,
        #[arg(long)]
        all: bool,
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
