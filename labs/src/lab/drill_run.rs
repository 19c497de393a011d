//! Executing a drill: set up the cluster, start the workload, run the timed steps (faults,
//! waits, narration), bring the cluster back, read everything, and judge the history against
//! the drill's expectations. The phases are in `drill_phases.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::drill_phases::{workload_config, Started};
use super::drill_support::{body_limit, settings_of, term_moves_unmet};
use super::faults::Rng;
use super::protocol::{DrillProgress, LabFailure};
use super::Lab;
use crate::checker::{self, CheckOptions, Verdict};
use crate::drill::{ConsumersStart, DrillSpec};
use crate::history::now_ns;
use crate::runs::recorder::RunOutcome;
use crate::runs::RunKind;
use crate::timeline::EventKind;
use crate::workload::Workload;

/// A lesson's producers stop this long after its last step (the last step's effect shows in
/// the acks); its `duration_ms` is only an upper bound, so lessons stay short in CI.
const LESSON_TAIL: Duration = Duration::from_secs(1);

/// What a drill run produced.
#[derive(Debug, Clone, Serialize)]
pub struct DrillOutcome {
    pub name: String,
    pub passed: bool,
    /// Why it failed (an unmet expectation, a wait that timed out, a start-up that did not fail).
    pub reason: Option<String>,
    pub verdict: Option<Verdict>,
    pub seconds: f64,
    /// Timeline entries of this run start here.
    pub first_seq: u64,
}

impl Lab {
    pub(super) fn progress(
        &self,
        spec: &DrillSpec,
        step: usize,
        narration: Option<String>,
        verdict: Option<Verdict>,
        done: bool,
    ) {
        if let Some(text) = &narration {
            self.note(EventKind::Narration { text: text.clone() });
        }
        self.set_drill(Some(DrillProgress {
            name: spec.name.clone(),
            step,
            steps: spec.steps.len(),
            narration,
            verdict,
            done,
            lesson: spec.lesson,
            watch: spec.watch.clone(),
            explanation: None,
            awaiting: None,
        }));
    }

    /// Runs the named drill from the catalog. `export_dir`: also write every export there.
    pub async fn run_drill(
        self: &Arc<Self>,
        name: &str,
        seed: Option<u64>,
        export_dir: Option<&std::path::Path>,
    ) -> Result<DrillOutcome, LabFailure> {
        let catalog = crate::drill::load_catalog(&self.config.drills_dir)
            .map_err(|e| LabFailure::new("bad_request", e.to_string()))?;
        let spec = crate::drill::find(&catalog, name)
            .ok_or_else(|| {
                LabFailure::new(
                    "bad_request",
                    format!("no drill named '{name}' in {}", self.config.drills_dir.display()),
                )
            })?
            .clone();
        self.run_drill_spec(spec, seed, export_dir).await
    }

    /// Runs a drill given as a spec (a catalog entry, a file, a chaos schedule).
    pub async fn run_drill_spec(
        self: &Arc<Self>,
        spec: DrillSpec,
        seed: Option<u64>,
        export_dir: Option<&std::path::Path>,
    ) -> Result<DrillOutcome, LabFailure> {
        self.run_spec(spec, seed, export_dir, false).await
    }

    /// Runs a drill or a lesson. `interactive` (lessons in the window): steps with `await` wait
    /// for the learner and explanations for Next; otherwise nothing waits.
    pub(super) async fn run_spec(
        self: &Arc<Self>,
        spec: DrillSpec,
        seed: Option<u64>,
        export_dir: Option<&std::path::Path>,
        interactive: bool,
    ) -> Result<DrillOutcome, LabFailure> {
        self.gate.reset();
        if self.run.lock().await.is_some() {
            self.stop_cluster().await?;
        }
        let started = Instant::now();
        let kind = if spec.lesson { "lesson" } else { "drill" };
        let first_seq = self
            .note(EventKind::Step { index: 0, description: format!("{kind} {}: {}", spec.name, spec.title) });
        let run_kind = if spec.lesson { RunKind::Lesson } else { RunKind::Drill };
        self.begin_recording(first_seq, run_kind, &spec.name, &settings_of(&spec)).await;
        let mut rng = Rng::new(seed.or(spec.setup.seed).unwrap_or(0x5eed));
        let (passed, reason, verdict) = match self.bounded_body(&spec, &mut rng, interactive, first_seq).await
        {
            Ok((verdict, unmet)) => (unmet.is_none(), unmet, verdict),
            Err(e) => (false, Some(e.message), None),
        };
        let summary = match (&reason, &verdict) {
            (None, Some(v)) => format!("PASSED: {}", v.summary),
            (None, None) => "PASSED".to_string(),
            (Some(r), _) => format!("FAILED: {r}"),
        };
        self.note(EventKind::Verdict { ok: passed, summary: summary.clone() });
        let verdict_json = verdict.as_ref().and_then(|v| serde_json::to_value(v).ok());
        self.progress(&spec, spec.steps.len(), None, verdict.clone(), true);
        let outcome = DrillOutcome {
            name: spec.name.clone(),
            passed,
            reason,
            verdict,
            seconds: started.elapsed().as_secs_f64(),
            first_seq,
        };
        if let Some(dir) = export_dir {
            let summary_json =
                serde_json::json!({ "ok": passed, "summary": summary, "verdict": verdict_json });
            self.export_since(first_seq, &spec, dir, &summary_json)?;
        }
        let _ = self.stop_cluster().await;
        let recorded = RunOutcome { ok: Some(passed), summary: Some(summary), verdict: verdict_json };
        self.end_recording(Some(run_kind), recorded).await;
        Ok(outcome)
    }

    /// The drill's body, given up past its time limit (interactive lessons have none): a hung
    /// step fails the run, naming the last step it got to, instead of hanging it.
    async fn bounded_body(
        self: &Arc<Self>,
        spec: &DrillSpec,
        rng: &mut Rng,
        interactive: bool,
        first_seq: u64,
    ) -> Result<(Option<Verdict>, Option<String>), LabFailure> {
        let body = self.drill_body(spec, rng, interactive);
        let Some(limit) = body_limit(spec, interactive) else { return body.await };
        tokio::time::timeout(limit, body).await.unwrap_or_else(|_| {
            let kind = if spec.lesson { "lesson" } else { "drill" };
            let last = self.last_step_since(first_seq);
            Err(LabFailure::new(
                "drill_failed",
                format!(
                    "the {kind} was still running after {} s, far beyond its steps and workload; \
                     given up after: {last}",
                    limit.as_secs()
                ),
            ))
        })
    }

    /// Every export of this run's timeline entries (from `first_seq`) under `dir/<drill name>`.
    fn export_since(
        &self,
        first_seq: u64,
        spec: &DrillSpec,
        dir: &std::path::Path,
        summary: &serde_json::Value,
    ) -> Result<(), LabFailure> {
        let events: Vec<_> = self.timeline.snapshot().into_iter().filter(|e| e.seq >= first_seq).collect();
        super::export::write(&events, "all", &dir.join(&spec.name), Some(summary), &spec.title)
            .map(drop)
            .map_err(|e| LabFailure::new("export_failed", e.to_string()))
    }

    /// Setup, workload, steps, recovery, final read, check. Ok((verdict, unmet expectation)).
    async fn drill_body(
        self: &Arc<Self>,
        spec: &DrillSpec,
        rng: &mut Rng,
        interactive: bool,
    ) -> Result<(Option<Verdict>, Option<String>), LabFailure> {
        let settings = settings_of(spec);
        if let Started::Refused(unmet) = self.start_drill_cluster(spec, &settings).await? {
            return Ok((None, unmet));
        }
        let topics = spec.setup.topic_names();
        self.create_drill_topics(spec, &topics, rng).await?;
        let aim = self.aim_clients(spec, rng).await?;
        // The group the run is about is recorded message by message from here on.
        if let Some(g) = &spec.watch {
            self.watch_raft_group(Some(g.clone())).await?;
        }
        let config = workload_config(spec, &settings, aim.produce, aim.consume.clone(), &topics, interactive);
        let workload = Workload::start(config.clone(), Some(self.live_listener()), aim.late)
            .map_err(|e| LabFailure::new("drill_failed", e.to_string()))?;
        let t0 = Instant::now();
        let baseline = self.baseline(spec).await;
        let unmet = self.steps_phase(spec, &workload, t0, rng, interactive, &baseline).await;
        let producing = match spec.lesson {
            true => LESSON_TAIL,
            false => config.duration.saturating_sub(t0.elapsed()) + Duration::from_secs(5),
        };
        workload.wait_producers(producing).await;
        self.recover(spec).await?;
        let consume = match aim.late {
            true => self.bootstrap_via(&spec.workload.consume_via, rng).await?,
            false => aim.consume,
        };
        let verdict = self.check_history(spec, workload, consume, &topics).await?;
        let unmet = self.judge(spec, &verdict, unmet, baseline.steps_seq, baseline.watched_term);
        Ok((Some(verdict), unmet))
    }

    /// Where the workload's clients connect. Aimed once the topic is led: `leader:<topic>/<p>`
    /// names a node only from then on.
    async fn aim_clients(&self, spec: &DrillSpec, rng: &mut Rng) -> Result<Aim, LabFailure> {
        let produce = self.bootstrap_via(&spec.workload.produce_via, rng).await?;
        // Consumers that start after the steps are aimed then: `previous` means the node the
        // steps hit, which is not known yet.
        let late = spec.workload.consumers_start == ConsumersStart::AfterSteps;
        let consume = match late {
            true => produce.clone(),
            false => self.bootstrap_via(&spec.workload.consume_via, rng).await?,
        };
        Ok(Aim { produce, consume, late })
    }

    /// What the expectations compare with, taken as the workload starts and before any step.
    async fn baseline(&self, spec: &DrillSpec) -> Baseline {
        let terms = self.partition_terms().await;
        // The trace expectations judge what happens from here: the term now is the "before".
        let steps_seq = self.timeline.next_seq();
        let watched_term = match &spec.watch {
            Some(g) => self.partition_terms_with_controller().await.get(g).copied().unwrap_or(0),
            None => 0,
        };
        Baseline { terms, steps_seq, watched_term }
    }

    /// The timed steps, then the term-moves expectation; the first unmet expectation, if any.
    async fn steps_phase(
        self: &Arc<Self>,
        spec: &DrillSpec,
        workload: &Workload,
        t0: Instant,
        rng: &mut Rng,
        interactive: bool,
        baseline: &Baseline,
    ) -> Option<String> {
        let unmet = self.run_steps(spec, workload, t0, rng, interactive).await;
        // Terms right after the steps: the recovery that follows restarts nodes, and leaders
        // handed back to them would count as moves of their own.
        match (unmet, spec.expect.min_term_plus_one_pct) {
            (None, Some(min)) => term_moves_unmet(&baseline.terms, &self.partition_terms().await, min),
            (unmet, _) => unmet,
        }
    }

    /// Reads everything back through `consume`, ends the workload and checks its history
    /// against the replicas' digests.
    async fn check_history(
        self: &Arc<Self>,
        spec: &DrillSpec,
        workload: Workload,
        consume: String,
        topics: &[String],
    ) -> Result<Verdict, LabFailure> {
        let (read_from, group_checks) = self.final_read(spec, &workload, consume, topics).await?;
        let history = workload.finish().await;
        let mut digests = Vec::new();
        for t in topics {
            digests.extend(self.digests(t).await);
        }
        let options = CheckOptions {
            expect_idempotent: spec.setup.idempotence,
            final_reads_from_index: Some(read_from),
            group_checks,
            ..Default::default()
        };
        Ok(checker::check(&history, &digests, &options))
    }
}

/// Where a drill's clients connect.
struct Aim {
    produce: String,
    /// Consumers' bootstrap; for `late` consumers only a placeholder until the steps are done.
    consume: String,
    /// Consumers start after the steps (and are aimed then).
    late: bool,
}

/// What a drill's expectations compare with, taken before its first step.
struct Baseline {
    /// Every partition's Raft term.
    terms: BTreeMap<String, u64>,
    /// The first timeline entry of the steps.
    steps_seq: u64,
    /// The watched group's term (0 without one).
    watched_term: u64,
}

/// Timestamp helper for tests and callers that need "now" on the timeline's clock.
pub fn now() -> u64 {
    now_ns()
}
