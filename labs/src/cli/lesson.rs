//! `clusterlab lesson list | run`: the guided lessons, headless. Each runs like a drill with the
//! runner acting for the learner; its narration and explanations print as the steps happen.

use std::time::Instant;

use labs::drill::DrillSpec;
use labs::lab::{Lab, LabConfig};
use labs::timeline::EventKind;

pub fn list(dir: std::path::PathBuf) -> anyhow::Result<()> {
    let lessons = labs::drill::load_lessons(&dir)?;
    for l in &lessons {
        println!("{:<26} {}  [{}]", l.name, l.title, l.watch.as_deref().unwrap_or(""));
    }
    println!("{} lessons in {}", lessons.len(), dir.display());
    Ok(())
}

/// How a narration line prints: a step's narration numbered, an explanation indented under it.
fn line_for(spec: &DrillSpec, text: &str) -> String {
    if let Some(i) = spec.steps.iter().position(|s| s.narrate.as_deref() == Some(text)) {
        return format!("  {}. {text}", i + 1);
    }
    if spec.steps.iter().any(|s| s.explain.as_deref() == Some(text)) {
        return format!("     why: {text}");
    }
    format!("     {text}")
}

/// Runs lessons headless, one fresh lab each; true when every one met its expectations.
pub async fn run(config: LabConfig, names: Vec<String>, all: bool) -> anyhow::Result<bool> {
    let catalog = labs::drill::load_lessons(&config.lessons_dir)?;
    let names: Vec<String> = if all { catalog.iter().map(|l| l.name.clone()).collect() } else { names };
    if names.is_empty() {
        anyhow::bail!("name a lesson (see `clusterlab lesson list`) or pass --all");
    }
    let started = Instant::now();
    let mut failures = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let Some(spec) = labs::drill::find(&catalog, name).cloned() else {
            anyhow::bail!("no lesson named '{name}' in {}", config.lessons_dir.display());
        };
        println!("[{}/{}] {name}: {}", i + 1, names.len(), spec.title);
        let lab = Lab::new(config.clone());
        // Narration reaches the timeline as the steps run: print it then, not after the verdict.
        let mut rx = lab.timeline.subscribe();
        let printer = tokio::spawn(async move {
            while let Ok(e) = rx.recv().await {
                match &e.kind {
                    EventKind::Narration { text } => println!("{}", line_for(&spec, text)),
                    // What the watched group's trace showed: the evidence behind the verdict.
                    EventKind::Step { description, .. } if description.starts_with("Raft trace of") => {
                        println!("     {description}")
                    }
                    _ => {}
                }
            }
        });
        let outcome = lab.run_lesson(name, false).await;
        lab.close().await;
        printer.abort();
        match outcome {
            Ok(o) if o.passed => {
                let summary = o.verdict.as_ref().map(|v| v.summary.clone()).unwrap_or_default();
                println!("PASS {name} in {:.1}s: {summary}", o.seconds);
            }
            Ok(o) => {
                let reason = o.reason.unwrap_or_default();
                println!("FAIL {name} in {:.1}s: {reason}", o.seconds);
                failures.push(format!("{name}: {reason}"));
            }
            Err(e) => {
                println!("FAIL {name}: could not run: {}", e.message);
                failures.push(format!("{name}: {}", e.message));
            }
        }
    }
    println!(
        "{} passed, {} failed, {:.1}s in all",
        names.len() - failures.len(),
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    for f in &failures {
        println!("  failed: {f}");
    }
    Ok(failures.is_empty())
}
