//! `clusterlab runs`: the recent-runs store from the terminal (the window lists the same runs).

use std::path::PathBuf;

use labs::prefs::{PreferencesFile, PreferencesPatch};
use labs::runs::{RunMeta, RunStatus, RunStore};

use super::args::{RunsArgs, RunsCommand};

pub fn run(args: RunsArgs) -> anyhow::Result<()> {
    let root = args.data_dir.as_deref();
    let store = RunStore::new(labs::paths::recent_runs_dir(root));
    let prefs = PreferencesFile::new(labs::paths::preferences_file(root));
    match args.command {
        RunsCommand::List { json } => list(&store, &prefs, json),
        RunsCommand::Show { id } => show(&store, &id),
        RunsCommand::Export { id, format, dir } => {
            let meta = store.get(&id)?;
            let dir: PathBuf = std::path::absolute(dir.join(&meta.id))?;
            for f in labs::lab::export::write_run(&store, &meta.id, &format, &dir)? {
                println!("{}", f.display());
            }
            Ok(())
        }
        RunsCommand::Delete { ids } => {
            for id in ids {
                let meta = store.delete(&id)?;
                println!("deleted {}", meta.id);
            }
            Ok(())
        }
        RunsCommand::Cap { mb } => cap(&store, &prefs, mb),
    }
}

/// `runs list`: a table of the stored runs and their total against the cap (or JSON).
fn list(store: &RunStore, prefs: &PreferencesFile, json: bool) -> anyhow::Result<()> {
    let runs = store.list()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no recent runs in {}", store.root().display());
        return Ok(());
    }
    println!("{:<44} {:<12} {:>8} {:>9}  verdict", "id", "status", "events", "size");
    for r in &runs {
        println!("{:<44} {:<12} {:>8} {:>9}  {}", r.id, status(r), r.events, size(r.bytes), verdict(r));
    }
    let cap = prefs.load().runs_cap_mb;
    println!(
        "{} runs, {} of {cap} MB, in {}",
        runs.len(),
        size(store.total_bytes()?),
        store.root().display()
    );
    Ok(())
}

/// `runs show`: one run's metadata, a field per line.
fn show(store: &RunStore, id: &str) -> anyhow::Result<()> {
    let r = store.get(id)?;
    println!("run      {}", r.id);
    println!("title    {} ({:?})", r.title, r.kind);
    println!("status   {}", status(&r));
    println!("started  {}", at(r.started_ms));
    if let Some(end) = r.ended_ms {
        println!("ended    {} ({:.1} s)", at(end), end.saturating_sub(r.started_ms) as f64 / 1000.0);
    }
    println!("events   {} ({})", r.events, size(r.bytes));
    println!("verdict  {}", verdict(&r));
    if let Some(s) = &r.settings {
        println!("settings {s}");
    }
    println!("dir      {}", store.root().join(&r.id).display());
    Ok(())
}

/// `runs cap`: shows the cap, or sets it and prunes the oldest finished runs until the store fits.
fn cap(store: &RunStore, prefs: &PreferencesFile, mb: Option<u64>) -> anyhow::Result<()> {
    let cap = match mb {
        Some(mb) => {
            let p = prefs.update(PreferencesPatch { runs_cap_mb: Some(mb), ..Default::default() })?;
            for id in store.prune(p.runs_cap_mb.saturating_mul(1 << 20))? {
                println!("pruned {id}");
            }
            p.runs_cap_mb
        }
        None => prefs.load().runs_cap_mb,
    };
    println!("recent runs cap: {cap} MB (now {}), in {}", size(store.total_bytes()?), prefs.path().display());
    Ok(())
}

fn status(r: &RunMeta) -> &'static str {
    match r.status {
        RunStatus::Recording => "recording",
        RunStatus::Complete => "complete",
        RunStatus::Interrupted => "interrupted",
    }
}

fn verdict(r: &RunMeta) -> String {
    match (r.ok, &r.summary) {
        (_, Some(s)) => s.clone(),
        (Some(true), None) => "passed".into(),
        (Some(false), None) => "failed".into(),
        (None, None) => "-".into(),
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn at(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(t).to_string()
}
