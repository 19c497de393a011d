//! `[[steps]]` -> `Vec<Step>`: fault, wait or narration; timing and its order; waits; repeats.
//! A fault's own parameters are checked in `faults.rs`.

use toml::Spanned;

use super::faults::{fault, no_fault_keys, FaultContext};
use super::raw::RawStep;
use super::source::{check_partition, check_target_value, Kind, Source};
use super::spec::{Action, Await, Fault, Setup, Step, Target, Until, When, Workload};
use crate::error::LabError;

/// A storm is for showing churn, not for load: more than this belongs in `clusterlab bench`.
const MAX_REPEAT: u32 = 20;
/// Narration is read off a projector; longer text belongs in `description`.
const MAX_NARRATION_CHARS: usize = 200;
/// An explanation is read after the step, at the learner's pace: a few sentences, no essay.
const MAX_EXPLAIN_CHARS: usize = 500;

/// What came before the current step, for the context-dependent targets.
#[derive(Default)]
struct History {
    faults: FaultContext,
    last_at_ms: Option<(u64, usize)>,
    started: bool,
}

pub(super) fn convert_steps(
    src: &Source,
    setup: &Setup,
    workload: &Workload,
    raw: Vec<Spanned<RawStep>>,
) -> Result<Vec<Step>, LabError> {
    let mut history = History::default();
    let mut steps = Vec::with_capacity(raw.len());
    for raw in raw {
        let (line, _) = src.line_col(raw.span().start);
        let span = raw.span();
        let raw = raw.into_inner();
        let when = timing(src, &raw, line, &mut history)?;
        let narrate = narration(src, &raw)?;
        let action = step_action(src, setup, workload, &raw, &mut history)?;
        if matches!(action, Action::Narrate) && narrate.is_none() {
            return Err(src.error(span, "a step needs `fault`, `until` or `narrate`"));
        }
        check_before_start(src, &raw, &action, when)?;
        let explain = explanation(src, &raw)?;
        let awaits = awaits(src, &raw, &action, when)?;
        // A storm is written once and run `repeat` times; the engine only sees plain steps.
        let (repeat, every_ms) = repetition(src, &raw)?;
        steps.extend(repeats(Step { line, when, action, narrate, explain, awaits }, repeat, every_ms));
    }
    Ok(steps)
}

/// What the step does: a fault, a wait (`until`), or, with neither, only its narration.
fn step_action(
    src: &Source,
    setup: &Setup,
    workload: &Workload,
    raw: &RawStep,
    history: &mut History,
) -> Result<Action, LabError> {
    match (&raw.fault, &raw.until) {
        (Some(_), Some(until)) => {
            Err(src.at(until, "a step is either a fault or a wait (until); split it into two steps"))
        }
        (Some(kind), None) => Ok(Action::Fault(fault(src, setup, raw, kind, &mut history.faults)?)),
        (None, Some(until)) => {
            no_fault_keys(src, raw)?;
            wait(src, setup, workload, raw, until, history)
        }
        (None, None) => {
            no_fault_keys(src, raw)?;
            if let Some(t) = &raw.timeout_ms {
                return Err(src.at(t, "timeout_ms belongs to a wait: add until = \"...\""));
            }
            Ok(Action::Narrate)
        }
    }
}

/// `take_port` runs before start and only it (and narration) may: the rest needs running nodes,
/// and a port taken after start would be taken from a node that already holds it.
fn check_before_start(src: &Source, raw: &RawStep, action: &Action, when: When) -> Result<(), LabError> {
    if when == When::BeforeStart && !matches!(action, Action::Fault(Fault::TakePort { .. }) | Action::Narrate)
    {
        return Err(src.at(
            raw.before_start.as_ref().expect("BeforeStart comes from the key"),
            "only take_port and narration run before start: the other steps need running nodes",
        ));
    }
    if matches!(action, Action::Fault(Fault::TakePort { .. })) && when != When::BeforeStart {
        return Err(src.at(
            raw.fault.as_ref().expect("fault step"),
            "take_port must run before the nodes bind their ports: add before_start = true",
        ));
    }
    Ok(())
}

/// A storm's `repeat` plain steps: the first as written (and the only one narrating), each next
/// one `every_ms` after the previous.
fn repeats(step: Step, repeat: u32, every_ms: u64) -> impl Iterator<Item = Step> {
    (0..repeat).map(move |i| Step {
        when: match (i, step.when) {
            (0, w) => w,
            (_, When::AtMs(at)) => When::AtMs(at + u64::from(i) * every_ms),
            (_, _) => When::AfterMs(every_ms),
        },
        narrate: step.narrate.clone().filter(|_| i == 0),
        ..step.clone()
    })
}

fn timing(src: &Source, raw: &RawStep, line: usize, history: &mut History) -> Result<When, LabError> {
    let before = raw.before_start.as_ref().filter(|b| *b.get_ref());
    let mut given = Vec::new();
    if let Some(b) = before {
        given.push(("before_start", b.span()));
    }
    if let Some(a) = &raw.at_ms {
        given.push(("at_ms", a.span()));
    }
    if let Some(a) = &raw.after_ms {
        given.push(("after_ms", a.span()));
    }
    if let [(first, _), (second, span), ..] = given.as_slice() {
        return Err(
            src.error(span.clone(), format!("a step has one timing: `{first}` or `{second}`, not both"))
        );
    }
    if let Some(b) = before {
        if history.started {
            return Err(src.at(b, "before_start steps must come first"));
        }
        return Ok(When::BeforeStart);
    }
    history.started = true;
    if let Some(at) = &raw.at_ms {
        if let Some((prev, prev_line)) = history.last_at_ms.filter(|(prev, _)| prev > at.get_ref()) {
            return Err(src.at(
                at,
                format!(
                    "at_ms {} is earlier than at_ms {prev} on line {prev_line}: steps run in file order",
                    at.get_ref()
                ),
            ));
        }
        history.last_at_ms = Some((*at.get_ref(), line));
        return Ok(When::AtMs(*at.get_ref()));
    }
    // No timing: right after the previous step, the natural reading of "kill, then wait".
    Ok(When::AfterMs(raw.after_ms.as_ref().map_or(0, |a| *a.get_ref())))
}

fn narration(src: &Source, raw: &RawStep) -> Result<Option<String>, LabError> {
    let Some(n) = &raw.narrate else {
        return Ok(None);
    };
    let text = n.get_ref().trim();
    if text.is_empty() || text.contains('\n') || text.chars().count() > MAX_NARRATION_CHARS {
        return Err(src.at(
            n,
            format!("narrate must be one non-empty line of at most {MAX_NARRATION_CHARS} characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// `explain`: lessons only, one paragraph (a TOML `\\` continuation keeps it on one line).
fn explanation(src: &Source, raw: &RawStep) -> Result<Option<String>, LabError> {
    let Some(e) = &raw.explain else {
        return Ok(None);
    };
    if src.kind == Kind::Drill {
        return Err(src.at(
            e,
            "`explain` belongs to lessons (labs/lessons/); a drill step says what happens with `narrate`",
        ));
    }
    let text = e.get_ref().trim();
    if text.is_empty() || text.contains('\n') || text.chars().count() > MAX_EXPLAIN_CHARS {
        return Err(src.at(
            e,
            format!("explain must be one non-empty paragraph of at most {MAX_EXPLAIN_CHARS} characters"),
        ));
    }
    Ok(Some(text.to_string()))
}

/// `await`: lessons only; `learner` on a fault the node menu offers, aimed at one node.
fn awaits(src: &Source, raw: &RawStep, action: &Action, when: When) -> Result<Option<Await>, LabError> {
    let Some(a) = &raw.awaits else {
        return Ok(None);
    };
    if src.kind == Kind::Drill {
        return Err(
            src.at(a, "`await` belongs to lessons (labs/lessons/): a drill runs with nobody to wait for")
        );
    }
    if when == When::BeforeStart || raw.repeat.is_some() {
        return Err(
            src.at(a, "`await` needs a running cluster and a single step: no before_start, no repeat")
        );
    }
    if *a.get_ref() == Await::Learner {
        let target = match action {
            Action::Fault(f) => f.node_menu_target(),
            _ => {
                return Err(src.at(
                    a,
                    "await = \"learner\" waits for the learner to perform the step's fault: \
                     add fault = \"...\" (or use await = \"next\")",
                ))
            }
        };
        match target {
            Some(t) if t.is_single_node() && *t != Target::Random => {}
            _ => {
                return Err(src.at(
                    a,
                    "await = \"learner\" needs a fault from the node menu (kill, stop, pause, resume, \
                     restart, power_cut, slow_disk, fsync_fail, isolate) on one named node or role; \
                     use await = \"next\" otherwise",
                ))
            }
        }
    }
    Ok(Some(*a.get_ref()))
}

fn wait(
    src: &Source,
    setup: &Setup,
    workload: &Workload,
    raw: &RawStep,
    until: &Spanned<Until>,
    history: &History,
) -> Result<Action, LabError> {
    let timeout_ms = match &raw.timeout_ms {
        Some(t) if *t.get_ref() > 0 => *t.get_ref(),
        Some(t) => return Err(src.at(t, "timeout_ms must be above 0")),
        None => return Err(src.at(until, "a wait needs timeout_ms (> 0), so a drill can never hang")),
    };
    match until.get_ref() {
        Until::LeaderElected(tp) => check_partition(src, setup, tp, until.span())?,
        Until::CaughtUp(Target::Previous) | Until::NodeReady(Target::Previous)
            if !history.faults.fault_with_nodes =>
        {
            return Err(
                src.at(until, "`previous` refers to the node(s) of an earlier fault; there is none yet")
            )
        }
        Until::CaughtUp(t) | Until::NodeReady(t) => check_target_value(src, setup, t, until.span())?,
        Until::Acked(n) => {
            if let Some(total) = workload.messages.filter(|total| n > total) {
                return Err(
                    src.at(until, format!("acked:{n} can never happen: the workload sends {total} messages"))
                );
            }
        }
        Until::AllLeaders => {}
    }
    Ok(Action::Wait { until: until.get_ref().clone(), timeout_ms })
}

fn repetition(src: &Source, raw: &RawStep) -> Result<(u32, u64), LabError> {
    let repeat = match &raw.repeat {
        None => 1,
        Some(r) if (1..=MAX_REPEAT).contains(r.get_ref()) => *r.get_ref(),
        Some(r) => return Err(src.at(r, format!("repeat must be 1 to {MAX_REPEAT}"))),
    };
    match &raw.every_ms {
        Some(e) if *e.get_ref() == 0 => Err(src.at(e, "every_ms must be above 0")),
        Some(e) => Ok((repeat, *e.get_ref())),
        None if repeat > 1 => Err(src
            .at(raw.repeat.as_ref().expect("repeat > 1"), "repeat needs every_ms (the gap between repeats)")),
        None => Ok((1, 0)),
    }
}
