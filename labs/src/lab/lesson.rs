//! Guided lessons: drills (`crate::drill`) whose steps may wait for the learner and explain
//! themselves. The drill runner executes them (`drill_run`); this module adds what only a lesson
//! needs: the catalog, the gate a step waits at (for Next, or for the learner to perform the
//! step's fault from the window), and matching what the learner did against what the step asks.
//!
//! Headless (`clusterlab lesson run`, CI) nothing waits: the runner performs the learner's
//! faults itself and reads Next as pressed, so every lesson is checked like a drill.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use super::drill_run::DrillOutcome;
use super::faults::{resolve, Rng};
use super::protocol::LabFailure;
use super::view::ClusterView;
use super::Lab;
use crate::drill::{Await, DrillSpec, Fault, Step, Target};
use crate::timeline::EventKind;

/// How long a lesson in the window waits for the learner at one step before it gives up (a
/// class can discuss; an abandoned lesson must not hold the lab forever).
const LEARNER_LIMIT: Duration = Duration::from_secs(20 * 60);

/// What a waiting lesson step wants.
#[derive(Debug, Clone, PartialEq)]
enum Awaiting {
    Next,
    /// The learner performs this fault (on the node its target means when they do it).
    Learner(Fault),
}

#[derive(Default)]
struct GateState {
    awaiting: Option<Awaiting>,
    done: bool,
    /// The gate was opened by the learner's own fault (not by Next).
    by_learner: bool,
    /// Bumped when a run starts: a lesson still waiting from before gives up.
    generation: u64,
}

/// Where an interactive lesson step waits; `Lab::lesson_next` and `Lab::fault` open it.
#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
    opened: Notify,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new run: whatever waited before stops waiting.
    pub(super) fn reset(&self) {
        let mut s = self.lock();
        s.generation += 1;
        s.awaiting = None;
        self.opened.notify_waiters();
    }

    fn awaiting(&self) -> Option<Awaiting> {
        self.lock().awaiting.clone()
    }

    fn open(&self, by_learner: bool) {
        let mut s = self.lock();
        if s.awaiting.take().is_some() {
            s.done = true;
            s.by_learner = by_learner;
            self.opened.notify_waiters();
        }
    }

    /// Waits until the learner did what `what` asks (or pressed Next), within LEARNER_LIMIT.
    /// Ok(true) when the learner's own fault opened it.
    async fn wait(&self, what: Awaiting) -> Result<bool, LabFailure> {
        let generation = {
            let mut s = self.lock();
            s.awaiting = Some(what);
            s.done = false;
            s.generation
        };
        let deadline = tokio::time::Instant::now() + LEARNER_LIMIT;
        loop {
            // Registered before the state is read, so an opening in between is not missed.
            let opened = self.opened.notified();
            {
                let s = self.lock();
                if s.generation != generation {
                    return Err(LabFailure::new("drill_failed", "another run started: this lesson stopped"));
                }
                if s.done {
                    return Ok(s.by_learner);
                }
            }
            if tokio::time::timeout_at(deadline, opened).await.is_err() {
                self.lock().awaiting = None;
                return Err(LabFailure::new(
                    "drill_failed",
                    format!("nobody acted for {} minutes: the lesson stopped", LEARNER_LIMIT.as_secs() / 60),
                ));
            }
        }
    }
}

/// The protocol's name of a fault a learner can perform (`Lab::fault`).
pub(super) fn fault_name(f: &Fault) -> &'static str {
    match f {
        Fault::Kill { .. } => "kill",
        Fault::Stop { .. } => "stop",
        Fault::Pause { .. } => "pause",
        Fault::Resume { .. } => "resume",
        Fault::Restart { .. } => "restart",
        Fault::PowerCut { .. } => "power_cut",
        Fault::SlowDisk { .. } => "slow_disk",
        Fault::FsyncFail { .. } => "fsync_fail",
        Fault::Isolate { .. } => "isolate",
        Fault::Heal => "heal",
        _ => "other",
    }
}

impl Lab {
    /// The lesson catalog, as `list_drills` lists drills (plus the group each is about).
    pub fn list_lessons(&self) -> Result<Vec<serde_json::Value>, LabFailure> {
        let catalog = crate::drill::load_lessons(&self.config.lessons_dir)
            .map_err(|e| LabFailure::new("bad_request", e.to_string()))?;
        Ok(catalog
            .iter()
            .map(|d| {
                json!({ "name": d.name, "title": d.title, "description": d.description, "tags": d.tags,
                        "steps": d.steps.len(), "watch": d.watch })
            })
            .collect())
    }

    /// Runs the named lesson. `interactive`: steps wait for the learner (the window); otherwise
    /// the runner acts for the learner (CLI, CI).
    pub async fn run_lesson(
        self: &Arc<Self>,
        name: &str,
        interactive: bool,
    ) -> Result<DrillOutcome, LabFailure> {
        let catalog = crate::drill::load_lessons(&self.config.lessons_dir)
            .map_err(|e| LabFailure::new("bad_request", e.to_string()))?;
        let spec = crate::drill::find(&catalog, name).cloned().ok_or_else(|| {
            LabFailure::new(
                "bad_request",
                format!("no lesson named '{name}' in {}", self.config.lessons_dir.display()),
            )
        })?;
        self.run_spec(spec, None, None, interactive).await
    }

    /// The learner pressed Next. While a step waits for the learner's own action, Next lets the
    /// lab perform it instead (a class that only watches).
    pub fn lesson_next(&self) -> Result<(), LabFailure> {
        match self.gate.awaiting() {
            Some(_) => {
                self.gate.open(false);
                Ok(())
            }
            None => Err(LabFailure::new("bad_request", "no lesson is waiting for Next")),
        }
    }

    /// Runs a lesson step's gate: Next before the action, or the learner's own fault instead of
    /// it. Ok(true) when the learner performed the fault (the runner must not repeat it).
    pub(super) async fn await_learner(&self, step: &Step, interactive: bool) -> Result<bool, LabFailure> {
        let Some(awaits) = step.awaits.filter(|_| interactive) else { return Ok(false) };
        let wanted = match (&awaits, &step.action) {
            (Await::Learner, crate::drill::Action::Fault(f)) => Awaiting::Learner(f.clone()),
            _ => Awaiting::Next,
        };
        let label = if matches!(wanted, Awaiting::Learner(_)) { "learner" } else { "next" };
        self.update_progress(|p| p.awaiting = Some(label.into()));
        let by_learner = self.gate.wait(wanted).await;
        self.update_progress(|p| p.awaiting = None);
        // Opened by the learner's fault, or by Next (then the runner performs the fault).
        by_learner
    }

    /// The nodes a waiting step's fault may hit now: the role's node, or for `follower:` any
    /// follower (the learner picks one). None when no step waits for a learner's fault.
    pub(super) async fn learner_wants(&self) -> Option<(&'static str, Vec<i32>)> {
        let Some(Awaiting::Learner(f)) = self.gate.awaiting() else { return None };
        let target = f.node_menu_target()?;
        let guard = self.run.lock().await;
        let run = guard.as_ref()?;
        let view = ClusterView::observe(&run.http_addrs()).await;
        let nodes = match target {
            Target::Follower(tp) => {
                let g = ClusterView::partition_group(&tp.topic, tp.partition);
                let leader = view.leader_of(&g).map(|l| l.leader);
                run.supervisor.node_ids().into_iter().filter(|n| Some(*n) != leader).collect()
            }
            t => resolve(run, &view, t, &mut Rng::new(1)).ok()?,
        };
        Some((fault_name(&f), nodes))
    }

    /// After a fault from the protocol: if it is what the waiting step asked for, the step is
    /// done; if not, the timeline says what the lesson still waits for.
    pub(super) fn learner_did(&self, fault: &str, hit: &[i32], wanted: Option<(&'static str, Vec<i32>)>) {
        let Some((name, nodes)) = wanted else { return };
        if fault == name && !hit.is_empty() && hit.iter().all(|n| nodes.contains(n)) {
            self.gate.open(true);
        } else {
            let want = nodes.iter().map(|n| format!("n{n}")).collect::<Vec<_>>().join(" or ");
            let text = format!("Not quite: the lesson waits for {name} on {want}.");
            self.note(EventKind::Narration { text: text.clone() });
            // The window hides the timeline's narration during a lesson: the hint goes where the
            // learner reads (the leader may have moved between their look and their click).
            self.update_progress(|p| p.explanation = Some(text));
        }
    }

    /// Lessons: the explanation once a step is done; the window then waits for Next.
    pub(super) async fn explain(
        &self,
        spec: &DrillSpec,
        step: usize,
        interactive: bool,
    ) -> Result<(), LabFailure> {
        let Some(text) = spec.steps.get(step - 1).and_then(|s| s.explain.clone()) else { return Ok(()) };
        self.note(EventKind::Narration { text: text.clone() });
        self.update_progress(|p| {
            p.explanation = Some(text);
            p.awaiting = interactive.then(|| "next".into());
        });
        if interactive {
            self.gate.wait(Awaiting::Next).await?;
            self.update_progress(|p| p.awaiting = None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::lab::LabConfig;

    /// Polls the lab's progress until `what` holds (each poll is one state read), or fails
    /// naming what did not happen.
    async fn until_progress(
        lab: &Lab,
        what: &str,
        ok: impl Fn(&super::super::protocol::DrillProgress) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if lab.state().await.drill.as_ref().is_some_and(&ok) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out after 60 s waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The window's way through a lesson on a real cluster: the step waits until the learner does
    /// what it asks (a wrong action leaves it waiting, with a hint), explanations wait for Next,
    /// and Next at a learner's step lets the lab act. The lesson still meets its expectations.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interactive_lesson_waits_for_the_learner_and_for_next() {
        let root = std::env::temp_dir().join(format!("clusterlab-lesson-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut config = LabConfig::for_tests(&root);
        config.lessons_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
        let lab = Lab::new(config);
        let e = lab.lesson_next().expect_err("no lesson runs");
        assert_eq!(e.code, "bad_request");
        let run = {
            let lab = Arc::clone(&lab);
            tokio::spawn(async move { lab.run_lesson("leader-crash", true).await })
        };
        until_progress(&lab, "the kill step to wait for the learner", |p| {
            p.lesson && p.step == 1 && p.awaiting.as_deref() == Some("learner")
        })
        .await;
        assert_eq!(
            lab.state().await.raft_watch.as_deref(),
            Some("orders-0"),
            "the lesson's group is watched"
        );
        // The wrong fault: the step keeps waiting and the timeline says for what.
        lab.fault("slow_disk", "follower:orders/0", Some(1)).await.expect("a harmless fault");
        let hint = lab.timeline.snapshot().into_iter().rev().find_map(|e| match e.kind {
            EventKind::Narration { text } if text.starts_with("Not quite") => Some(text),
            _ => None,
        });
        assert!(hint.is_some_and(|h| h.contains("waits for kill on n")), "a hint names what the step wants");
        let progress = lab.state().await.drill.unwrap();
        assert_eq!(progress.awaiting.as_deref(), Some("learner"));
        // The window shows the lesson's progress, not the timeline's narration.
        let shown = progress.explanation.unwrap_or_default();
        assert!(
            shown.starts_with("Not quite") && shown.contains("kill on n"),
            "the lesson panel shows: {shown}"
        );
        // The right one, as the node menu sends it: on the node that leads orders/0.
        lab.fault("kill", "leader:orders/0", None).await.expect("leader killed");
        until_progress(&lab, "the election's explanation, waiting for Next", |p| {
            p.step == 2 && p.explanation.is_some() && p.awaiting.as_deref() == Some("next")
        })
        .await;
        lab.lesson_next().expect("next");
        until_progress(&lab, "the restart step", |p| p.step == 3 && p.awaiting.as_deref() == Some("learner"))
            .await;
        lab.lesson_next().expect("Next lets the lab restart the node itself");
        until_progress(&lab, "the last explanation", |p| {
            p.step == 4 && p.awaiting.as_deref() == Some("next")
        })
        .await;
        lab.lesson_next().expect("next");
        let outcome = run.await.expect("joined").expect("the lesson ran");
        assert!(outcome.passed, "{:?}", outcome.reason);
        lab.close().await;
        let _ = std::fs::remove_dir_all(&root);
    }
}
