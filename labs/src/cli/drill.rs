//! `clusterlab drill list | run`.

use std::path::PathBuf;
use std::sync::Arc;

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
    let (mut passed, mut done) = (0u32, 0u32);
    let mut failures = Vec::new();
    for name in &names {
        for r in 0..args.repeat.max(1) {
            done += 1;
            let lab = Lab::new(
                LabConfig {
                    broker_bin: args.broker_bin.clone(),
                    data_root: args.data_root.clone(),
                    drills_dir: args.drills.clone(),
                    lessons_dir: labs::paths::lessons_dir(None)
                        .unwrap_or_else(|_| args.drills.with_file_name("lessons")),
                    export_dir: args.export.clone().unwrap_or_else(|| PathBuf::from("clusterlab-export")),
                    runs_dir: None,
                    preferences_file: None,
                }
                .remembering(),
            );
            let export = args.export.as_ref().map(|d| {
                if args.repeat > 1 {
                    d.join(format!("run-{}", r + 1))
                } else {
                    d.clone()
                }
            });
            let seed = args.seed.map(|s| s + r as u64);
            eprintln!("[{done}/{total}] {name} (run {} of {}) ...", r + 1, args.repeat.max(1));
            let outcome = match as_file(name) {
                Some(path) => match labs::drill::parse_drill(&std::fs::read_to_string(path)?, path) {
                    Ok(spec) => lab.run_drill_spec(spec, seed, export.as_deref()).await,
                    Err(e) => anyhow::bail!("{e}"),
                },
                None => lab.run_drill(name, seed, export.as_deref()).await,
            };
            lab.close().await;
            drop(Arc::clone(&lab));
            match outcome {
                Ok(o) if o.passed => {
                    passed += 1;
                    let summary = o
                        .verdict
                        .as_ref()
                        .map(|v| v.summary.clone())
                        .unwrap_or_else(|| "start-up refused as expected".into());
                    println!("PASS {name} #{} in {:.1}s: {summary}", r + 1, o.seconds);
                }
                Ok(o) => {
                    let reason = o.reason.unwrap_or_default();
                    println!("FAIL {name} #{} in {:.1}s: {reason}", r + 1, o.seconds);
                    failures.push(format!("{name} #{}: {reason}", r + 1));
                }
                Err(e) => {
                    println!("FAIL {name} #{}: could not run: {}", r + 1, e.message);
                    failures.push(format!("{name} #{}: {}", r + 1, e.message));
                }
            }
        }
    }
    println!("{passed} passed, {} failed", done - passed);
    for f in &failures {
        println!("  failed: {f}");
    }
    Ok(failures.is_empty())
}
