//! `clusterlab drill list | run`.

use std::path::PathBuf;

use labs::lab::drill_run::DrillOutcome;
use labs::lab::protocol::LabFailure;
use labs::lab::{Lab, LabConfig};

pub fn list(drills: PathBuf) -> anyhow::Result<()> {
    let catalog = labs::drill::load_catalog(&drills)?;
    for d in &catalog {
        println!("{:<28} {}  [{}]", d.name, d.title, d.tags.join(", "));
    }
    println!("{} drills in {}", catalog.len(), drills.display());
    Ok(())
}

pub struct RunArgs {
    pub names: Vec<String>,
    pub all: bool,
    pub repeat: u32,
    pub seed: Option<u64>,
    pub export: Option<PathBuf>,
    pub broker_bin: PathBuf,
    pub drills: PathBuf,
    pub data_root: Option<PathBuf>,
}

/// A name that is a drill file rather than a catalog entry (a saved chaos run, a shrunk drill).
fn as_file(name: &str) -> Option<&std::path::Path> {
    let path = std::path::Path::new(name);
    (name.ends_with(".toml") && path.is_file()).then_some(path)
}

/// Runs drills headless; true when every run met its expectations.
pub async fn run(args: RunArgs) -> anyhow::Result<bool> {
    let catalog = labs::drill::load_catalog(&args.drills)?;
    let names: Vec<String> =
        if args.all { catalog.iter().map(|d| d.name.clone()).collect() } else { args.names.clone() };
    if names.is_empty() {
        anyhow::bail!("name a drill (see `clusterlab drill list`) or pass --all");
    }
    let total = names.len() as u32 * args.repeat.max(1);
    let (mut tally, mut done) = (Tally::default(), 0u32);
    for name in &names {
        for r in 0..args.repeat.max(1) {
            done += 1;
            eprintln!("[{done}/{total}] {name} (run {} of {}) ...", r + 1, args.repeat.max(1));
            let outcome = run_once(&args, name, r).await?;
            tally.record(name, r + 1, outcome);
        }
    }
    println!("{} passed, {} failed", tally.passed, done - tally.passed);
    for f in &tally.failures {
        println!("  failed: {f}");
    }
    Ok(tally.failures.is_empty())
}

/// Run `r` (from 0) of drill `name` (a catalog name or a drill file) in a lab of its own.
async fn run_once(args: &RunArgs, name: &str, r: u32) -> anyhow::Result<Result<DrillOutcome, LabFailure>> {
    let lab = Lab::new(args.lab_config());
    // Repeated runs export side by side, one directory each.
    let export =
        args.export
            .as_ref()
            .map(|d| if args.repeat > 1 { d.join(format!("run-{}", r + 1)) } else { d.clone() });
    let seed = args.seed.map(|s| s + r as u64);
    let outcome = match as_file(name) {
        Some(path) => match labs::drill::parse_drill(&std::fs::read_to_string(path)?, path) {
            Ok(spec) => lab.run_drill_spec(spec, seed, export.as_deref()).await,
            Err(e) => anyhow::bail!("{e}"),
        },
        None => lab.run_drill(name, seed, export.as_deref()).await,
    };
    lab.close().await;
    Ok(outcome)
}

impl RunArgs {
    /// A lab over these flags' broker, data and drills, recording nothing.
    fn lab_config(&self) -> LabConfig {
        LabConfig {
            broker_bin: self.broker_bin.clone(),
            data_root: self.data_root.clone(),
            drills_dir: self.drills.clone(),
            lessons_dir: labs::paths::lessons_dir(None)
                .unwrap_or_else(|_| self.drills.with_file_name("lessons")),
            export_dir: self.export.clone().unwrap_or_else(|| PathBuf::from("clusterlab-export")),
            runs_dir: None,
            preferences_file: None,
        }
        .remembering()
    }
}

/// The runs so far: how many passed, and why each failure failed.
#[derive(Default)]
struct Tally {
    passed: u32,
    failures: Vec<String>,
}

impl Tally {
    /// Prints run `run` (from 1) of `name` as PASS or FAIL and counts it.
    fn record(&mut self, name: &str, run: u32, outcome: Result<DrillOutcome, LabFailure>) {
        match outcome {
            Ok(o) if o.passed => {
                self.passed += 1;
                let summary = o
                    .verdict
                    .as_ref()
                    .map(|v| v.summary.clone())
                    .unwrap_or_else(|| "start-up refused as expected".into());
                println!("PASS {name} #{run} in {:.1}s: {summary}", o.seconds);
            }
            Ok(o) => {
                let reason = o.reason.unwrap_or_default();
                println!("FAIL {name} #{run} in {:.1}s: {reason}", o.seconds);
                self.failures.push(format!("{name} #{run}: {reason}"));
            }
            Err(e) => {
                println!("FAIL {name} #{run}: could not run: {}", e.message);
                self.failures.push(format!("{name} #{run}: {}", e.message));
            }
        }
    }
}
