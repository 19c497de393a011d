//! The phases of a drill run, in the order `drill_run.rs` calls them: start the cluster (or see
//! it refuse to), create the topics, run the steps, read everything back, judge the verdict.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::drill_support::{bound, DEFAULT_WORKLOAD_MS, FINAL_READ_LIMIT};
use super::faults::Rng;
use super::protocol::LabFailure;
use super::raft_expect;
use super::Lab;
use crate::checker::{self, Bound, Expectation, Verdict};
use crate::drill::{Action, Anomalies, DrillSpec, Fault, Target, Until, When};
use crate::settings::ClusterSettings;
use crate::supervisor::Supervisor;
use crate::timeline::event::{CheckName, FaultName, ProcessPhase};
use crate::timeline::{EventKind, Source};
use crate::workload::{consumer, OpListener, Workload, WorkloadConfig};

/// Live anomalies put on the timeline per drill: the first ones tell the story; a flood of
/// duplicates after a leader change would bury everything else.
const LIVE_ANOMALIES_SHOWN: usize = 20;
/// How long a consumer group gets, after the final read, to receive what the log holds.
const GROUP_DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// An interactive lesson produces until its steps are done, however long the learner takes.
const LESSON_WORKLOAD_LIMIT: Duration = Duration::from_secs(3600);

/// How the cluster start of a drill went.
pub(super) enum Started {
    Running,
    /// The drill expects the start to fail: it did as expected (`None`), or not (why).
    Refused(Option<String>),
}

impl Lab {
    /// Takes the ports `take_port` steps hold, starts the nodes and installs the run; for a
    /// drill that expects the start to fail, says whether it failed as expected. A cluster that
    /// does not become the run is discarded (its last events on the timeline) before this returns.
    pub(super) async fn start_drill_cluster(
        self: &Arc<Self>,
        spec: &DrillSpec,
        settings: &ClusterSettings,
    ) -> Result<Started, LabFailure> {
        let prepared = self.prepare(settings).await?;
        let (held, taken_port) = match self.before_start_steps(spec, &prepared.supervisor) {
            Ok(taken) => taken,
            Err(e) => {
                prepared.discard().await;
                return Err(e);
            }
        };
        let start = prepared.supervisor.start_all().await;
        if let Some(expected) = &spec.expect.start_fails_with {
            let expected = expected.replace("{port}", &taken_port.map(|p| p.to_string()).unwrap_or_default());
            prepared.discard().await;
            return Ok(Started::Refused(match start {
                Err(e) if e.to_string().contains(&expected) => {
                    self.note(EventKind::Check { anomaly: CheckName::StartRefused, detail: e.to_string() });
                    None
                }
                Err(e) => Some(format!("start failed, but with '{e}' instead of '{expected}'")),
                Ok(()) => Some(format!("the cluster started although it should fail with '{expected}'")),
            }));
        }
        drop(held);
        if let Err(e) = start {
            prepared.discard().await;
            return Err(LabFailure::new("start_failed", e.to_string()));
        }
        self.install_run(settings.clone(), prepared).await;
        self.note(EventKind::Process {
            state: ProcessPhase::ClusterStarted,
            pid: None,
            detail: Some(spec.name.clone()),
        });
        Ok(Started::Running)
    }

    /// The steps before anything starts: `take_port` binds a foreign listener on a node's Kafka
    /// port (held until the start was tried), narrations are noted. Answers the listeners and
    /// the last port taken.
    fn before_start_steps(
        &self,
        spec: &DrillSpec,
        supervisor: &Supervisor,
    ) -> Result<(Vec<std::net::TcpListener>, Option<u16>), LabFailure> {
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
        Ok((held, taken_port))
    }

    /// Creates the drill's topics once the controller is up and waits until every partition is led.
    pub(super) async fn create_drill_topics(
        self: &Arc<Self>,
        spec: &DrillSpec,
        topics: &[String],
        rng: &mut Rng,
    ) -> Result<(), LabFailure> {
        self.wait_controller(Duration::from_secs(20)).await?;
        for t in topics {
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
        self.wait_until(&Until::AllLeaders, Duration::from_secs(20), spec, None).await
    }

    /// Every client operation onto the timeline, and the live checker's first anomalies with it
    /// (the full check runs at the end).
    pub(super) fn live_listener(&self) -> OpListener {
        let timeline = Arc::clone(&self.timeline);
        let live = std::sync::Mutex::new((checker::LiveChecker::new(), 0usize));
        Arc::new(move |op| {
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
        })
    }

    /// The timed steps, in order; the first that fails ends them, and says why.
    pub(super) async fn run_steps(
        self: &Arc<Self>,
        spec: &DrillSpec,
        workload: &Workload,
        t0: Instant,
        rng: &mut Rng,
        interactive: bool,
    ) -> Option<String> {
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
                        self.wait_until(until, Duration::from_millis(*timeout_ms), spec, Some(workload)).await
                    }
                    Action::Narrate => Ok(()),
                },
            };
            let outcome = match outcome {
                Ok(()) => self.explain(spec, i + 1, interactive).await,
                e => e,
            };
            if let Err(e) = outcome {
                return Some(format!("step {} (line {}): {}", i + 1, step.line, e.message));
            }
        }
        None
    }

    /// Starts the consumers (if they waited for the steps), reads every topic to its end and,
    /// for a churning group, waits until the group has received what the log holds. Returns
    /// where the final read starts in the history, and whether the group checks apply.
    pub(super) async fn final_read(
        self: &Arc<Self>,
        spec: &DrillSpec,
        workload: &Workload,
        consume_bootstrap: String,
        topics: &[String],
    ) -> Result<(u64, bool), LabFailure> {
        workload
            .start_consumers_via(Some(consume_bootstrap.clone()))
            .map_err(|e| LabFailure::new("drill_failed", e.to_string()))?;
        let read_from = workload.recorder().history().ops.len() as u64;
        let recorder = workload.recorder().clone();
        let topics = topics.to_vec();
        // Awaited here; each read is bounded by FINAL_READ_LIMIT.
        tokio::task::spawn_blocking(move || {
            topics.iter().try_for_each(|t| {
                consumer::read_all(&consume_bootstrap, t, &recorder, FINAL_READ_LIMIT).map(|_| ())
            })
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
        Ok((read_from, group_checks))
    }

    /// Puts every anomaly on the timeline and returns the first expectation the run did not
    /// meet: an earlier one (`unmet`), the checker's, the Raft trace's, then unavailability.
    pub(super) fn judge(
        &self,
        spec: &DrillSpec,
        verdict: &Verdict,
        mut unmet: Option<String>,
        steps_seq: u64,
        watched_term: u64,
    ) -> Option<String> {
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
            unmet = checker::matches(verdict, &expect).err();
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
        unmet
    }
}

/// The workload a drill runs: its spec's, aimed at the given bootstraps, on the run's settings.
pub(super) fn workload_config(
    spec: &DrillSpec,
    settings: &ClusterSettings,
    bootstrap: String,
    consumer_bootstrap: String,
    topics: &[String],
    interactive: bool,
) -> WorkloadConfig {
    let w = &spec.workload;
    // In the window a lesson waits for the learner: its workload runs until the steps end.
    let (messages, duration) = match interactive {
        true => (u64::MAX, LESSON_WORKLOAD_LIMIT),
        false => (
            w.messages.unwrap_or(u64::MAX),
            Duration::from_millis(w.duration_ms.unwrap_or(DEFAULT_WORKLOAD_MS)),
        ),
    };
    WorkloadConfig {
        bootstrap,
        consumer_bootstrap: Some(consumer_bootstrap),
        topic: spec.setup.topic.clone(),
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
    }
}
