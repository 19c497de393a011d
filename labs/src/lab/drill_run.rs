//! Executing a drill: set up the cluster, start the workload, run the timed steps (faults,
//! waits, narration), bring the cluster back, read everything, and judge the history against
//! the drill's expectations.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::drill_support::{
    body_limit, bound, settings_of, term_moves_unmet, DEFAULT_WORKLOAD_MS, FINAL_READ_LIMIT,
};
use super::faults::Rng;
use super::protocol::{DrillProgress, LabFailure};
use super::raft_expect;
use super::Lab;
use crate::checker::{self, Bound, CheckOptions, Expectation, Verdict};
use crate::drill::{Action, Anomalies, ConsumersStart, DrillSpec, Fault, Target, Until, When};
use crate::history::now_ns;
use crate::runs::recorder::RunOutcome;
use crate::runs::RunKind;
use crate::timeline::event::{CheckName, FaultName};
use crate::timeline::{EventKind, Source};
use crate::workload::{consumer, Workload, WorkloadConfig};

/// Live anomalies put on the timeline per drill: the first ones tell the story; a flood of
/// duplicates after a leader change would bury everything else.
const LIVE_ANOMALIES_SHOWN: usize = 20;
/// How long a consumer group gets, after the final read, to receive what the log holds.
const GROUP_DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// A lesson's producers stop this long after its last step (the last step's effect shows in
/// the acks); its `duration_ms` is only an upper bound, so lessons stay short in CI.
const LESSON_TAIL: Duration = Duration::from_secs(1);
/// An interactive lesson produces until its steps are done, however long the learner takes.
const LESSON_WORKLOAD_LIMIT: Duration = Duration::from_secs(3600);

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
    fn progress(
        &self,
        spec: &DrillSpec,
        step: usize,
        narration: Option<String>,
        verdict: Option<serde_json::Value>,
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
        let body = self.drill_body(&spec, &mut rng, interactive);
        let result = match body_limit(&spec, interactive) {
            Some(limit) => tokio::time::timeout(limit, body).await.unwrap_or_else(|_| {
                let last = self.last_step_since(first_seq);
                Err(LabFailure::new(
                    "drill_failed",
                    format!("the {kind} was still running after {} s, far beyond its steps and workload; given up after: {last}", limit.as_secs()),
                ))
            }),
            None => body.await,
        };
        let (passed, reason, verdict) = match result {
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
        self.progress(&spec, spec.steps.len(), None, verdict_json.clone(), true);
        let outcome = DrillOutcome {
            name: spec.name.clone(),
            passed,
            reason,
            verdict,
            seconds: started.elapsed().as_secs_f64(),
            first_seq,
        };
        if let Some(dir) = export_dir {
            let events: Vec<_> =
                self.timeline.snapshot().into_iter().filter(|e| e.seq >= first_seq).collect();
            let summary_json =
                serde_json::json!({ "ok": passed, "summary": summary, "verdict": verdict_json });
            super::export::write(&events, "all", &dir.join(&spec.name), Some(&summary_json), &spec.title)
                .map_err(|e| LabFailure::new("export_failed", e.to_string()))?;
        }
        let _ = self.stop_cluster().await;
        let recorded = RunOutcome { ok: Some(passed), summary: Some(summary), verdict: verdict_json };
        self.end_recording(Some(run_kind), recorded).await;
        Ok(outcome)
    }

    /// Setup, workload, steps, recovery, final read, check. Ok((verdict, unmet expectation)).
    async fn drill_body(
        self: &Arc<Self>,
        spec: &DrillSpec,
        rng: &mut Rng,
        interactive: bool,
    ) -> Result<(Option<Verdict>, Option<String>), LabFailure> {
        let settings = settings_of(spec);
        let (supervisor, resources, cancel) = self.prepare(&settings).await?;
        // `take_port` steps run before anything starts: a foreign listener holds a node's port.
        let mut held = Vec::new();
        let mut taken_port = None;
        for step in spec.steps.iter().filter(|s| s.when == When::BeforeStart) {
            if let Action::Fault(Fault::TakePort { target: Target::Node(n) }) = &step.action {
                let addr = supervisor
                    .node_info(*n as i32)
                    .map_err(|e| LabFailure::new("drill_failed", e.to_string()))?
                    .kafka_direct;
                held.push(
                    std::net::TcpListener::bind(addr)
                        .map_err(|e| LabFailure::new("drill_failed", format!("taking port {addr}: {e}")))?,
                );
                taken_port = Some(addr.port());
                self.note(EventKind::Fault {
                    fault: FaultName::TakePort,
                    target: format!("node-{n}"),
                    detail: Some(addr.to_string()),
                });
            }
            if let Some(text) = &step.narrate {
                self.note(EventKind::Narration { text: text.clone() });
            }
        }
        let start = supervisor.start_all().await;
        if let Some(expected) = &spec.expect.start_fails_with {
            let expected = expected.replace("{port}", &taken_port.map(|p| p.to_string()).unwrap_or_default());
            drop(supervisor);
            return Ok(match start {
                Err(e) if e.to_string().contains(&expected) => {
                    self.note(EventKind::Check { anomaly: CheckName::StartRefused, detail: e.to_string() });
                    (None, None)
                }
                Err(e) => (None, Some(format!("start failed, but with '{e}' instead of '{expected}'"))),
                Ok(()) => {
                    (None, Some(format!("the cluster started although it should fail with '{expected}'")))
                }
            });
        }
        drop(held);
        start.map_err(|e| LabFailure::new("start_failed", e.to_string()))?;
        self.install_run(settings.clone(), supervisor, resources, cancel).await;
        self.note(EventKind::Process {
            state: crate::timeline::event::ProcessPhase::ClusterStarted,
            pid: None,
            detail: Some(spec.name.clone()),
        });

        let topic = spec.setup.topic.clone();
        let topics = spec.setup.topic_names();
        self.wait_controller(Duration::from_secs(20)).await?;
        for t in &topics {
            crate::workload::admin::create_topic(
                &self.bootstrap_via(&Target::All, rng).await?,
                t,
                spec.setup.partitions as i32,
                spec.setup.replication_factor as i32,
                Duration::from_secs(15),
            )
            .await
            .map_err(|e| LabFailure::new("drill_failed", format!("creating topic {t}: {e}")))?;
        }
        self.wait_until(&Until::AllLeaders, Duration::from_secs(20), spec, None).await?;
        // Aimed once the topic is led: `leader:<topic>/<p>` names a node only from now on.
        let produce_bootstrap = self.bootstrap_via(&spec.workload.produce_via, rng).await?;
        // Consumers that start after the steps are aimed then: `previous` means the node the
        // steps hit, which is not known yet.
        let late = spec.workload.consumers_start == ConsumersStart::AfterSteps;
        let mut consume_bootstrap = if late {
            produce_bootstrap.clone()
        } else {
            self.bootstrap_via(&spec.workload.consume_via, rng).await?
        };
        // The group the run is about is recorded message by message from here on.
        if let Some(g) = &spec.watch {
            self.watch_raft_group(Some(g.clone())).await?;
        }

        let w = &spec.workload;
        // In the window a lesson waits for the learner: its workload runs until the steps end.
        let (messages, duration) = match interactive {
            true => (u64::MAX, LESSON_WORKLOAD_LIMIT),
            false => (
                w.messages.unwrap_or(u64::MAX),
                Duration::from_millis(w.duration_ms.unwrap_or(DEFAULT_WORKLOAD_MS)),
            ),
        };
        let config = WorkloadConfig {
            bootstrap: produce_bootstrap,
            consumer_bootstrap: Some(consume_bootstrap.clone()),
            topic: topic.clone(),
            producers: w.producers,
            consumers: w.consumers,
            messages,
            rate_per_sec: w.rate_per_sec,
            duration,
            message_bytes: w.message_bytes as usize,
            acks: settings.acks.clone(),
            idempotence: settings.idempotence,
            consumer_group: w.consumer_group,
            message_timeout_ms: 30_000,
            churn: w.churn_ms.map(Duration::from_millis),
            extra_topics: topics[1..].to_vec(),
        };
        let timeline = Arc::clone(&self.timeline);
        // The live checker sees every operation as it happens and puts the first anomalies on
        // the timeline at once (the full check runs at the end).
        let live = std::sync::Mutex::new((checker::LiveChecker::new(), 0usize));
        let listener: crate::workload::OpListener = Arc::new(move |op| {
            timeline.append(Source::Client(op.process), op.time_ns, EventKind::Client { op: op.clone() });
            let mut guard = live.lock().unwrap_or_else(|p| p.into_inner());
            let (checker, raised) = &mut *guard;
            for a in checker.observe(op) {
                if *raised < LIVE_ANOMALIES_SHOWN {
                    *raised += 1;
                    timeline.append(
                        Source::Lab,
                        crate::history::now_ns(),
                        EventKind::Check {
                            anomaly: CheckName::Live(a.kind()),
                            detail: serde_json::to_string(&a).unwrap_or_default(),
                        },
                    );
                }
            }
        });
        let workload =
            Workload::start(config.clone(), Some(listener), w.consumers_start == ConsumersStart::AfterSteps)
                .map_err(|e| LabFailure::new("drill_failed", e.to_string()))?;
        let t0 = Instant::now();
        let terms_before = self.partition_terms().await;
        // The trace expectations judge what happens from here: the term now is the "before".
        let steps_seq = self.timeline.next_seq();
        let watched_term = match &spec.watch {
            Some(g) => self.partition_terms_with_controller().await.get(g).copied().unwrap_or(0),
            None => 0,
        };

        let mut unmet: Option<String> = None;
        for (i, step) in spec.steps.iter().enumerate().filter(|(_, s)| s.when != When::BeforeStart) {
            match step.when {
                When::AtMs(ms) => tokio::time::sleep_until(t0 + Duration::from_millis(ms)).await,
                When::AfterMs(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                When::BeforeStart => {}
            }
            self.progress(spec, i + 1, step.narrate.clone(), None, false);
            let outcome = match self.await_learner(step, interactive).await {
                Err(e) => Err(e),
                // The learner performed the step's fault from the window.
                Ok(true) => Ok(()),
                Ok(false) => match &step.action {
                    Action::Fault(f) => self.apply_when_led(f, rng).await.map(|_| ()),
                    Action::Wait { until, timeout_ms } => {
                        self.wait_until(until, Duration::from_millis(*timeout_ms), spec, Some(&workload))
                            .await
                    }
                    Action::Narrate => Ok(()),
                },
            };
            let outcome = match outcome {
                Ok(()) => self.explain(spec, i + 1, interactive).await,
                e => e,
            };
            if let Err(e) = outcome {
                unmet = Some(format!("step {} (line {}): {}", i + 1, step.line, e.message));
                break;
            }
        }

        // Terms right after the steps: the recovery below restarts nodes, and leaders handed back
        // to them would count as moves of their own.
        if let (None, Some(min)) = (&unmet, spec.expect.min_term_plus_one_pct) {
            unmet = term_moves_unmet(&terms_before, &self.partition_terms().await, min);
        }
        let producing = match spec.lesson {
            true => LESSON_TAIL,
            false => config.duration.saturating_sub(t0.elapsed()) + Duration::from_secs(5),
        };
        workload.wait_producers(producing).await;
        self.recover(spec).await?;
        if late {
            consume_bootstrap = self.bootstrap_via(&spec.workload.consume_via, rng).await?;
        }
        workload
            .start_consumers_via(Some(consume_bootstrap.clone()))
            .map_err(|e| LabFailure::new("drill_failed", e.to_string()))?;
        let read_from = workload.recorder().history().ops.len() as u64;
        let recorder = workload.recorder().clone();
        let consume = consume_bootstrap.clone();
        let topics2 = topics.clone();
        tokio::task::spawn_blocking(move || {
            topics2
                .iter()
                .try_for_each(|t| consumer::read_all(&consume, t, &recorder, FINAL_READ_LIMIT).map(|_| ()))
        })
        .await
        .map_err(|e| LabFailure::new("drill_failed", e.to_string()))?
        .map_err(|e| LabFailure::new("drill_failed", format!("final read: {e}")))?;
        let group_checks = spec.workload.consumer_group && spec.workload.churn_ms.is_some();
        if group_checks && !workload.wait_group_drained(GROUP_DRAIN_LIMIT).await {
            self.note(EventKind::Step {
                index: spec.steps.len() + 1,
                description: format!(
                    "the consumer group had not received every record {} s after the final read",
                    GROUP_DRAIN_LIMIT.as_secs()
                ),
            });
        }
        let history = workload.finish().await;
        let mut digests = Vec::new();
        for t in &topics {
            digests.extend(self.digests(t).await);
        }
        let verdict = checker::check(
            &history,
            &digests,
            &CheckOptions {
                expect_idempotent: spec.setup.idempotence,
                final_reads_from_index: Some(read_from),
                group_checks,
                ..Default::default()
            },
        );
        for a in &verdict.anomalies {
            // The anomaly's fields plus its explanation in words, for the timeline's hover.
            let mut detail = serde_json::to_value(a).unwrap_or_default();
            detail["explain"] = serde_json::Value::String(a.explain());
            self.note(EventKind::Check { anomaly: CheckName::Found(a.kind()), detail: detail.to_string() });
        }
        let expect = Expectation {
            lost: bound(spec.expect.lost),
            duplicates: bound(spec.expect.duplicates),
            other_anomalies: if spec.expect.other_anomalies == Anomalies::Any {
                Bound::Any
            } else {
                Bound::None
            },
        };
        if unmet.is_none() {
            unmet = checker::matches(&verdict, &expect).err();
        }
        if let Some(g) = &spec.watch {
            let events: Vec<_> =
                self.timeline.snapshot().into_iter().filter(|e| e.seq >= steps_seq).collect();
            let facts = raft_expect::facts(&events, g, watched_term, spec.setup.nodes as usize);
            self.note(EventKind::Step {
                index: spec.steps.len() + 1,
                description: raft_expect::describe(&facts, g),
            });
            if unmet.is_none() {
                unmet = raft_expect::unmet(&spec.expect.raft, &facts, g);
            }
        }
        if let (None, Some(max)) = (&unmet, spec.expect.max_unavailability_ms) {
            let longest = verdict
                .unavailability
                .iter()
                .filter(|w| w.partition.is_none())
                .map(|w| w.duration_ns / 1_000_000)
                .max()
                .unwrap_or(0);
            if longest > max {
                unmet =
                    Some(format!("produce was unavailable for {longest} ms, more than the {max} ms allowed"));
            }
        }
        Ok((Some(verdict), unmet))
    }
}

/// Timestamp helper for tests and callers that need "now" on the timeline's clock.
pub fn now() -> u64 {
    now_ns()
}
