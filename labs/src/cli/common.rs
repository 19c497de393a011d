//! Flags every lab subcommand shares (where the broker, the data and the drills are). Its own
//! module so that subcommand modules (chaos) and the argument tree (args) can both use it
//! without importing each other.

use std::path::PathBuf;

use clap::Args;
use labs::lab::LabConfig;

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
    /// The guided lessons [default: labs/lessons].
    #[arg(long)]
    pub lessons: Option<PathBuf>,
}

impl Common {
    pub fn lab_config(&self) -> anyhow::Result<LabConfig> {
        Ok(LabConfig {
            broker_bin: super::broker_bin(self.broker_bin.clone())?,
            data_root: self.data_dir.clone(),
            drills_dir: super::drills_dir(self.drills.clone())
                .unwrap_or_else(|_| PathBuf::from("labs/drills")),
            lessons_dir: labs::paths::lessons_dir(self.lessons.clone())
                .unwrap_or_else(|_| PathBuf::from("labs/lessons")),
            export_dir: PathBuf::from("clusterlab-export"),
            runs_dir: None,
            preferences_file: None,
        }
        .remembering())
    }
}
