//! The `clusterlab` subcommands beyond `bench`: thin adapters over `labs::lab::Lab` that print.
//!
//! Modules: `common` and `args` (flags and arguments), `lab_cmds` (`up`, `serve`, `status`,
//! `fault`, `export`), `drill`, `lesson`, `chaos`, `runs`: one per subcommand.

pub mod chaos;
pub mod common;
pub mod drill;
pub mod lab_cmds;
pub mod lesson;
pub mod runs;

use std::path::PathBuf;

/// The broker executable: `--broker-bin`, $CLUSTERLAB_BROKER_BIN, else next to this executable.
pub fn broker_bin(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(labs::paths::broker_bin(explicit)?)
}

/// The drill catalog: `--drills`, $CLUSTERLAB_DRILLS, `./labs/drills`, the installed one, or
/// the repository's (`labs::paths::drills_dir`).
pub fn drills_dir(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    Ok(labs::paths::drills_dir(explicit)?)
}

/// Where `up` records the running lab so `status`, `fault` and `export` find it.
pub fn current_lab_file() -> PathBuf {
    labs::paths::data_dir().join("current-lab.json")
}

pub mod args;

use args::{DrillCommand, LabCommand, LessonCommand};

/// Runs one lab subcommand; the exit code is 0 on success (for drills: every expectation held).
pub async fn run(cmd: LabCommand) -> anyhow::Result<i32> {
    match cmd {
        LabCommand::Up(a) => {
            let settings = a.settings();
            let config = a.common.lab_config()?;
            lab_cmds::serve(lab_cmds::ServeArgs::new(a.server, config, Some(settings))).await?;
        }
        LabCommand::Serve(a) => {
            let config = a.common.lab_config()?;
            lab_cmds::serve(lab_cmds::ServeArgs::new(a.server, config, None)).await?;
        }
        LabCommand::Status(r) => lab_cmds::status(r.lab).await?,
        LabCommand::Runs(r) => runs::run(r)?,
        LabCommand::Fault(f) => {
            let result = lab_cmds::send(f.lab.lab.clone(), f.command()).await?;
            println!("{} hit {}", f.kind, result["nodes"]);
        }
        LabCommand::Drill(DrillCommand::List { drills }) => drill::list(drills_dir(drills)?)?,
        LabCommand::Drill(DrillCommand::Run { names, all, repeat, seed, export, common }) => {
            let args = drill::RunArgs {
                names,
                all,
                repeat,
                seed,
                export,
                broker_bin: broker_bin(common.broker_bin.clone())?,
                drills: drills_dir(common.drills.clone())?,
                data_root: common.data_dir.clone(),
            };
            return Ok(if drill::run(args).await? { 0 } else { 1 });
        }
        LabCommand::Lesson(LessonCommand::List { lessons }) => {
            lesson::list(labs::paths::lessons_dir(lessons)?)?
        }
        LabCommand::Lesson(LessonCommand::Run { names, all, common }) => {
            let config = common.lab_config()?;
            labs::paths::lessons_dir(common.lessons.clone())?; // a missing catalog is an error here
            return Ok(if lesson::run(config, names, all).await? { 0 } else { 1 });
        }
        LabCommand::Chaos(c) => return chaos::run(c).await,
        LabCommand::Export(e) => lab_cmds::export(e).await?,
    }
    Ok(0)
}
