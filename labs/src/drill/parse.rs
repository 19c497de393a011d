//! `parse_drill`: TOML text -> validated `DrillSpec`, every error located as `file:line:column`.
//!
//! Two passes. serde + `toml` catch syntax, unknown keys, wrong types and malformed selector
//! strings (each with its span). Then `validate` catches what only makes sense across keys: a step
//! aimed at another topic, a replication factor above the node count, a wait without a timeout.

use std::path::Path;

use toml::Spanned;

use super::raw::{RawDrill, RawExpect, RawSetup, RawWorkload};
use super::source::{check_target, Kind, Source};
use super::spec::{
    Acks, Action, Anomalies, ConsumersStart, DrillSpec, Expect, Fault, Fsync, Outcome, RaftExpect, Setup,
    Target, Workload,
};
use super::steps::convert_steps;
use crate::error::LabError;

/// A laptop runs every node as a process with its own ports and data dir; beyond this a drill
/// measures the laptop, not the protocol.
const MAX_NODES: u32 = 9;
/// Enough to carry the workload's unique message id and a timestamp.
const DEFAULT_MESSAGE_BYTES: u32 = 100;
/// Below this a group would spend all its time rebalancing (joins take a session round trip).
const MIN_CHURN_MS: u64 = 1_000;

/// Parse and validate one drill. `file` is only used in messages and stored in the spec.
pub fn parse_drill(text: &str, file: &Path) -> Result<DrillSpec, LabError> {
    parse_as(text, file, Kind::Drill)
}

/// Parse and validate one guided lesson: a drill file with `watch` (required), per-step
/// `explain` and `await`, checked the same way and reported the same way (`file:line:column`).
pub fn parse_lesson(text: &str, file: &Path) -> Result<DrillSpec, LabError> {
    parse_as(text, file, Kind::Lesson)
}

pub(super) fn parse_as(text: &str, file: &Path, kind: Kind) -> Result<DrillSpec, LabError> {
    let src = Source { text, file, kind };
    let raw: RawDrill = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        // `message()`, not `Display`: Display adds a multi-line source excerpt that would not fit
        // the one-line `file:line:column: message` form editors and the UI understand.
        src.error(span, e.message().trim_end())
    })?;
    validate(&src, raw)
}

/// More topics than this would be a benchmark, not a drill (and slow to create on two cores).
const MAX_TOPICS: u32 = 16;

fn validate(src: &Source, raw: RawDrill) -> Result<DrillSpec, LabError> {
    let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if raw.name.get_ref().is_empty() || !raw.name.get_ref().chars().all(name_ok) {
        return Err(src.at(
            &raw.name,
            "drill name must be lowercase letters, digits and '-' (it is typed on the command line)",
        ));
    }
    let setup = convert_setup(src, raw.setup)?;
    let watch = match &raw.watch {
        Some(w) => Some(check_group(src, &setup, w)?),
        None if src.kind == Kind::Lesson => {
            return Err(src.at(
                &raw.name,
                "a lesson needs `watch = \"<group>\"` (controller or <topic>-<partition>): the Raft group it is about",
            ))
        }
        None => None,
    };
    let workload = convert_workload(src, &setup, raw.workload)?;
    let steps = convert_steps(src, &setup, &workload, raw.steps)?;
    // Point at start_fails_with when it is the key in question, else at the [expect] header.
    let expect_span = raw.expect.get_ref().start_fails_with.as_ref().map_or(raw.expect.span(), Spanned::span);
    let expect = convert_expect(src, raw.expect, watch.is_some())?;

    let takes_port = steps.iter().any(|s| matches!(s.action, Action::Fault(Fault::TakePort { .. })));
    if takes_port != expect.start_fails_with.is_some() {
        return Err(src.error(expect_span, match takes_port {
            true => "a drill with a take_port step must say how start-up fails: set [expect] start_fails_with",
            false => "[expect] start_fails_with needs a step with fault = \"take_port\" that makes start-up fail",
        }));
    }
    Ok(DrillSpec {
        name: raw.name.into_inner(),
        title: raw.title,
        description: raw.description,
        tags: raw.tags,
        file: src.file.to_path_buf(),
        lesson: src.kind == Kind::Lesson,
        watch,
        setup,
        workload,
        steps,
        expect,
    })
}

fn convert_setup(src: &Source, raw: RawSetup) -> Result<Setup, LabError> {
    let nodes = raw.nodes.as_ref().map_or(3, |n| *n.get_ref());
    if let Some(n) = raw.nodes.as_ref().filter(|n| !(1..=MAX_NODES).contains(n.get_ref())) {
        return Err(src.at(n, format!("nodes must be 1 to {MAX_NODES}")));
    }
    let topic_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if raw.topic.get_ref().is_empty() || !raw.topic.get_ref().chars().all(topic_ok) {
        return Err(src.at(&raw.topic, "topic must be letters, digits, '.', '_' or '-' (Kafka's rule)"));
    }
    let partitions = raw.partitions.as_ref().map_or(1, |p| *p.get_ref());
    if let Some(p) = raw.partitions.as_ref().filter(|p| *p.get_ref() < 1) {
        return Err(src.at(p, "partitions must be at least 1"));
    }
    if let Some(t) = raw.topics.as_ref().filter(|t| !(1..=MAX_TOPICS).contains(t.get_ref())) {
        return Err(src.at(t, format!("topics must be 1 to {MAX_TOPICS}")));
    }
    let replication_factor = raw.replication_factor.as_ref().map_or(nodes.min(3), |r| *r.get_ref());
    if let Some(r) = raw.replication_factor.as_ref().filter(|r| !(1..=nodes).contains(r.get_ref())) {
        return Err(src.at(r, format!("replication_factor must be 1 to nodes ({nodes})")));
    }
    // Unset timing is the lab's default (the broker's own), fast enough for a 10-25 s drill.
    let lab = crate::settings::ClusterSettings::default();
    let election_timeout_ms = raw
        .election_timeout_ms
        .as_ref()
        .map_or([lab.election_timeout_min_ms, lab.election_timeout_max_ms], |e| *e.get_ref());
    if let Some(e) =
        raw.election_timeout_ms.as_ref().filter(|e| e.get_ref()[0] == 0 || e.get_ref()[0] > e.get_ref()[1])
    {
        return Err(src.at(e, "election_timeout_ms must be [min, max] with 0 < min <= max"));
    }
    let heartbeat_ms = raw.heartbeat_ms.as_ref().map_or(lab.heartbeat_ms, |h| *h.get_ref());
    if heartbeat_ms == 0 || heartbeat_ms >= election_timeout_ms[0] {
        // Followers would call elections between two heartbeats of a healthy leader.
        let msg = format!(
            "heartbeat_ms ({heartbeat_ms}) must be above 0 and below the election timeout minimum ({})",
            election_timeout_ms[0]
        );
        return Err(match &raw.heartbeat_ms {
            Some(h) => src.at(h, msg),
            None => src.at(raw.election_timeout_ms.as_ref().expect("defaults are consistent"), msg),
        });
    }
    Ok(Setup {
        nodes,
        topic: raw.topic.into_inner(),
        topics: raw.topics.as_ref().map_or(1, |t| *t.get_ref()),
        partitions,
        replication_factor,
        fsync: raw.fsync.unwrap_or(Fsync::Always),
        acks: raw.acks.unwrap_or(Acks::All),
        // librdkafka's default, so a drill that does not say so behaves like a stock client.
        idempotence: raw.idempotence.unwrap_or(false),
        election_timeout_ms,
        heartbeat_ms,
        seed: raw.seed,
    })
}

fn convert_workload(src: &Source, setup: &Setup, raw: Spanned<RawWorkload>) -> Result<Workload, LabError> {
    let span = raw.span();
    let raw = raw.into_inner();
    check_workload_numbers(src, span, &raw)?;
    let consumers_start = raw.consumers_start.unwrap_or(ConsumersStart::WithProducers);
    let produce_via = bootstrap_via(src, setup, raw.produce_via, false, consumers_start)?;
    let consume_via = bootstrap_via(src, setup, raw.consume_via, true, consumers_start)?;
    Ok(Workload {
        producers: raw.producers.unwrap_or(1),
        consumers: raw.consumers.unwrap_or(1),
        messages: raw.messages.map(Spanned::into_inner),
        duration_ms: raw.duration_ms.map(Spanned::into_inner),
        rate_per_sec: raw.rate_per_sec.map(Spanned::into_inner),
        message_bytes: raw.message_bytes.map_or(DEFAULT_MESSAGE_BYTES, Spanned::into_inner),
        consumer_group: raw.consumer_group.unwrap_or(false),
        churn_ms: raw.churn_ms.map(Spanned::into_inner),
        produce_via,
        consume_via,
        consumers_start,
    })
}

/// The workload's bound (a CI runs every drill), its counts above 0, and churn only where a
/// group can rebalance.
fn check_workload_numbers(
    src: &Source,
    span: std::ops::Range<usize>,
    raw: &RawWorkload,
) -> Result<(), LabError> {
    if raw.messages.is_none() && raw.duration_ms.is_none() {
        return Err(src
            .error(span, "[workload] needs a bound: messages, duration_ms or both (a CI runs every drill)"));
    }
    for (key, v) in [("messages", &raw.messages), ("duration_ms", &raw.duration_ms)] {
        if let Some(v) = v.as_ref().filter(|v| *v.get_ref() == 0) {
            return Err(src.at(v, format!("{key} must be above 0")));
        }
    }
    for (key, v) in [("rate_per_sec", &raw.rate_per_sec), ("message_bytes", &raw.message_bytes)] {
        if let Some(v) = v.as_ref().filter(|v| *v.get_ref() == 0) {
            return Err(src.at(v, format!("{key} must be above 0")));
        }
    }
    if let Some(c) = &raw.churn_ms {
        if *c.get_ref() < MIN_CHURN_MS {
            return Err(
                src.at(c, format!("churn_ms must be at least {MIN_CHURN_MS} (a rebalance takes seconds)"))
            );
        }
        if raw.consumer_group != Some(true) || raw.consumers.unwrap_or(1) < 2 {
            return Err(
                src.at(c, "churn_ms needs consumer_group = true and at least 2 consumers (one stays)")
            );
        }
    }
    Ok(())
}

/// `produce_via` / `consume_via` (`consume`): every node when unset. `previous` is known only
/// for consumers that start after the steps; `minority` names no bootstrap node at all.
fn bootstrap_via(
    src: &Source,
    setup: &Setup,
    t: Option<Spanned<Target>>,
    consume: bool,
    consumers_start: ConsumersStart,
) -> Result<Target, LabError> {
    let Some(t) = t else { return Ok(Target::All) };
    match t.get_ref() {
        Target::Minority => {
            return Err(src.at(&t, "a workload cannot bootstrap via `minority`; use node:<id> or all"))
        }
        Target::Previous if !(consume && consumers_start == ConsumersStart::AfterSteps) => {
            return Err(src.at(
                &t,
                "`previous` is only known after the steps ran: \
                 use it in consume_via with consumers_start = \"after_steps\"",
            ))
        }
        _ => check_target(src, setup, &t)?,
    }
    Ok(t.into_inner())
}

/// `watch` names a Raft group of this drill: the controller's or one of its topic's partitions.
fn check_group(src: &Source, setup: &Setup, w: &Spanned<String>) -> Result<String, LabError> {
    let g = w.get_ref();
    if g == "controller" {
        return Ok(g.clone());
    }
    let partition = g.strip_prefix(&format!("{}-", setup.topic)).and_then(|p| p.parse::<u32>().ok());
    match partition {
        Some(p) if p < setup.partitions => Ok(g.clone()),
        _ => Err(src.at(
            w,
            format!(
                "watch = \"{g}\" is not a Raft group of this drill: controller or {}-0 to {}-{}",
                setup.topic,
                setup.topic,
                setup.partitions - 1
            ),
        )),
    }
}

fn convert_expect(src: &Source, raw: Spanned<RawExpect>, watching: bool) -> Result<Expect, LabError> {
    let raw = raw.into_inner();
    let raft = convert_raft_expect(src, &raw, watching)?;
    if let Some(m) = raw.max_unavailability_ms.as_ref().filter(|m| *m.get_ref() == 0) {
        return Err(src.at(m, "max_unavailability_ms must be above 0 (leave it out for no bound)"));
    }
    if let Some(p) = raw.min_term_plus_one_pct.as_ref().filter(|p| !(0.0..=100.0).contains(p.get_ref())) {
        return Err(src.at(p, "min_term_plus_one_pct is a percentage: 0 to 100"));
    }
    if let Some(s) = raw.start_fails_with.as_ref().filter(|s| s.get_ref().trim().is_empty()) {
        return Err(src.at(s, "start_fails_with must name the expected error text"));
    }
    Ok(Expect {
        // Strict by default: a drill that forgets to state expectations asserts correctness.
        lost: raw.lost.unwrap_or(Outcome::None),
        duplicates: raw.duplicates.unwrap_or(Outcome::None),
        other_anomalies: raw.other_anomalies.unwrap_or(Anomalies::None),
        max_unavailability_ms: raw.max_unavailability_ms.map(Spanned::into_inner),
        min_term_plus_one_pct: raw.min_term_plus_one_pct.map(Spanned::into_inner),
        start_fails_with: raw.start_fails_with.map(Spanned::into_inner),
        raft,
    })
}

/// The `[expect]` keys over the Raft trace: they read the watched group's messages, so they need
/// `watch`; a count of 0 would always hold.
fn convert_raft_expect(src: &Source, raw: &RawExpect, watching: bool) -> Result<RaftExpect, LabError> {
    let flags = [
        ("elected_in_higher_term", &raw.elected_in_higher_term),
        ("discarded_uncommitted", &raw.discarded_uncommitted),
    ];
    let counts = [("min_commits", &raw.min_commits), ("min_flush_lag", &raw.min_flush_lag)];
    let spans = flags
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.span())))
        .chain(counts.iter().filter_map(|(k, v)| v.as_ref().map(|v| (*k, v.span()))));
    for (key, span) in spans {
        if !watching {
            return Err(src.error(
                span,
                format!(
                    "`{key}` reads the Raft trace of the watched group: add watch = \"<group>\" at the top"
                ),
            ));
        }
    }
    for (key, v) in counts {
        if let Some(v) = v.as_ref().filter(|v| *v.get_ref() == 0) {
            return Err(src.at(v, format!("{key} must be above 0 (leave it out for no bound)")));
        }
    }
    let flag = |v: &Option<Spanned<bool>>| v.as_ref().is_some_and(|v| *v.get_ref());
    Ok(RaftExpect {
        elected_in_higher_term: flag(&raw.elected_in_higher_term),
        discarded_uncommitted: flag(&raw.discarded_uncommitted),
        min_commits: raw.min_commits.as_ref().map(|v| *v.get_ref()),
        min_flush_lag: raw.min_flush_lag.as_ref().map(|v| *v.get_ref()),
    })
}
