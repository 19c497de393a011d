//! Shrinking a failing drill: drop fault episodes (delta debugging over episodes), then pull the
//! remaining ones together and shorten the run, keeping every change after which a rerun still
//! shows an anomaly of a kind the original showed. Bounded by attempts and by time.
//!
//! Steps are grouped into episodes so that a fault is never separated from what heals it: an
//! episode starts at a wait or a fault, and takes the heals that follow (`resume`, `heal`,
//! `restart previous`, `slow_disk ... 0`) and narration. A rerun is a real cluster run, so a
//! flaky anomaly can make the search keep less than it could; it never keeps a drill that did
//! not show the anomaly on its last run.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use super::schedule::{COOL_DOWN_MS, WARM_UP_MS};
use crate::checker::AnomalyKind;
use crate::drill::{Action, DrillSpec, Fault, Step, Target, When};

/// How far a shrink may go.
#[derive(Debug, Clone, Copy)]
pub struct ShrinkLimits {
    /// Reruns, the first one (does it reproduce at all?) included.
    pub max_attempts: u32,
    /// No new attempt starts after this much time.
    pub max_time: Duration,
}

/// The kind to keep: `wanted` if the first run showed it, else its most severe kind (kinds are
/// ordered by severity, most severe first), so the search cannot drift from a lost write to a
/// lesser anomaly that some other episode also shows.
pub fn target_kind(shown: &BTreeSet<AnomalyKind>, wanted: Option<AnomalyKind>) -> Option<AnomalyKind> {
    match wanted {
        Some(w) => shown.contains(&w).then_some(w),
        None => shown.first().copied(),
    }
}

#[derive(Debug, Clone)]
pub struct ShrinkReport {
    /// Anomaly kinds of the first run.
    pub kinds: BTreeSet<AnomalyKind>,
    /// The kind every kept candidate showed (see [`target_kind`]).
    pub target: Option<AnomalyKind>,
    pub reproduced: bool,
    pub attempts: u32,
    pub seconds: f64,
    /// Why the search stopped: "done", "attempt limit", "time limit".
    pub stopped: &'static str,
    pub steps_before: usize,
    pub steps_after: usize,
    pub duration_before_ms: Option<u64>,
    pub duration_after_ms: Option<u64>,
    pub smallest: DrillSpec,
}

/// A heal belongs to the fault before it.
fn is_follow_up(step: &Step) -> bool {
    match &step.action {
        Action::Fault(Fault::Resume { .. } | Fault::Heal) => true,
        Action::Fault(Fault::Restart { target: Target::Previous }) => true,
        Action::Fault(Fault::SlowDisk { delay_ms: 0, .. }) => true,
        Action::Narrate => true,
        Action::Fault(_) | Action::Wait { .. } => false,
    }
}

/// Whether heal step `heal` undoes fault `fault` (how chaos heals each kind).
fn heals(heal: &Fault, fault: &Fault) -> bool {
    match heal {
        Fault::Resume { .. } => matches!(fault, Fault::Pause { .. }),
        Fault::Heal => super::overlap::kind(fault) == super::overlap::Kind::Fabric,
        Fault::Restart { .. } => {
            matches!(
                fault,
                Fault::Kill { .. } | Fault::Stop { .. } | Fault::PowerCut { .. } | Fault::FsyncFail { .. }
            )
        }
        Fault::SlowDisk { .. } => matches!(fault, Fault::SlowDisk { .. }),
        _ => false,
    }
}

/// Steps cut into episodes, as indices into `steps` (in file order within each). An episode
/// starts at a wait or a fault; a heal joins the innermost open episode whose fault it undoes
/// (so a companion nested inside another episode is an episode of its own), else the latest
/// one; narration joins the latest. Before-start steps stay in the first episode.
fn units(steps: &[Step]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    // (episode, its fault) for episodes whose fault waits for a heal, innermost last.
    let mut open: Vec<(usize, Fault)> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let opens = !is_follow_up(s) && s.when != When::BeforeStart;
        // A wait opens an episode, and the fault right after it joins it.
        let joins_wait =
            out.last().is_some_and(|e| e.iter().all(|x| matches!(steps[*x].action, Action::Wait { .. })));
        if opens && !joins_wait {
            out.push(Vec::new());
        }
        let Some(last) = out.len().checked_sub(1) else {
            out.push(vec![i]);
            continue;
        };
        let unit = match &s.action {
            Action::Fault(h) if !opens => {
                match open.iter().rposition(|(_, f)| heals(h, f)).or(open.len().checked_sub(1)) {
                    Some(k) => open.remove(k).0,
                    None => last,
                }
            }
            _ => last,
        };
        out[unit].push(i);
        if let (true, Action::Fault(f)) = (opens, &s.action) {
            if super::overlap::kind(f) != super::overlap::Kind::SelfHealing {
                open.push((unit, f.clone()));
            }
        }
    }
    out
}

/// Steps cut into episodes; before-start steps stay in the first one.
pub fn episodes(steps: &[Step]) -> Vec<Vec<Step>> {
    units(steps).into_iter().map(|u| u.into_iter().map(|i| steps[i].clone()).collect()).collect()
}

/// Runs of consecutive steps that no episode crosses: an episode with its companions, which
/// must move together when the schedule is compacted.
fn clusters(steps: &[Step]) -> Vec<Vec<Step>> {
    let mut spans: Vec<(usize, usize)> =
        units(steps).iter().filter_map(|u| Some((*u.iter().min()?, *u.iter().max()?))).collect();
    spans.sort();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (a, b) in spans {
        match merged.last_mut() {
            Some(m) if a <= m.1 => m.1 = m.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged.into_iter().map(|(a, b)| steps[a..=b].to_vec()).collect()
}

fn at_ms(s: &Step) -> Option<u64> {
    match s.when {
        When::AtMs(ms) => Some(ms),
        _ => None,
    }
}

/// Clusters (an episode with its companions) moved so that each starts `gap_ms` after the previous
/// one ends (the first after the warm-up), heals `hold_factor` of the way through, and the run ends
/// a cool-down after the last.
fn compact(spec: &DrillSpec, eps: &[Vec<Step>], gap_ms: u64, hold_factor: f64) -> DrillSpec {
    let mut t = WARM_UP_MS;
    let mut steps = Vec::new();
    for e in eps {
        let Some(start) = e.iter().find_map(at_ms) else {
            steps.extend(e.iter().cloned());
            continue;
        };
        let begin = t.max(WARM_UP_MS);
        let mut end = begin;
        for s in e {
            let mut s = s.clone();
            if let Some(ms) = at_ms(&s) {
                let offset = ((ms.saturating_sub(start)) as f64 * hold_factor) as u64;
                s.when = When::AtMs(begin + offset);
                end = end.max(begin + offset);
            }
            steps.push(s);
        }
        t = end + gap_ms;
    }
    let mut out = spec.clone();
    let last = steps.iter().filter_map(at_ms).max().unwrap_or(WARM_UP_MS);
    if out.workload.duration_ms.is_some() {
        out.workload.duration_ms = Some(last + COOL_DOWN_MS + 1_000);
    }
    out.steps = steps;
    out
}

/// `spec` with only the steps of the episodes `keep` (indices into `spec.steps`), in file order.
fn with_episodes(spec: &DrillSpec, keep: &[Vec<usize>]) -> DrillSpec {
    let mut kept: Vec<usize> = keep.iter().flatten().copied().collect();
    kept.sort_unstable();
    let mut out = spec.clone();
    out.steps = kept.into_iter().map(|i| spec.steps[i].clone()).collect();
    out
}

/// Shrinks `spec`. `rerun` runs a candidate and returns the anomaly kinds it showed (empty: clean
/// or could not run); `log` hears one line per attempt.
pub async fn shrink<F, Fut>(
    spec: DrillSpec,
    limits: ShrinkLimits,
    wanted: Option<AnomalyKind>,
    rerun: F,
    log: impl FnMut(String),
) -> ShrinkReport
where
    F: FnMut(DrillSpec) -> Fut,
    Fut: Future<Output = BTreeSet<AnomalyKind>>,
{
    let report = ShrinkReport {
        kinds: BTreeSet::new(),
        target: None,
        reproduced: false,
        attempts: 0,
        seconds: 0.0,
        stopped: "done",
        steps_before: spec.steps.len(),
        steps_after: spec.steps.len(),
        duration_before_ms: spec.workload.duration_ms,
        duration_after_ms: spec.workload.duration_ms,
        smallest: spec.clone(),
    };
    let mut s = Shrinker { limits, started: Instant::now(), report, rerun, log };
    // Attempt 1: does it reproduce at all, and with what?
    s.report.attempts += 1;
    s.report.kinds = (s.rerun)(spec.clone()).await;
    (s.log)(format!(
        "attempt 1 (the drill as given, {} steps): {}",
        spec.steps.len(),
        kinds_text(&s.report.kinds)
    ));
    s.report.target = target_kind(&s.report.kinds, wanted);
    s.report.reproduced = s.report.target.is_some();
    let Some(target) = s.report.target else {
        s.report.stopped = "not reproduced";
        s.report.seconds = s.started.elapsed().as_secs_f64();
        return s.report;
    };
    (s.log)(format!("keeping {target}"));
    let best = s.drop_episodes(&spec, target).await;
    let mut best = s.shorten(best, target).await;
    let mut report = s.report;
    report.steps_after = best.steps.len();
    report.duration_after_ms = best.workload.duration_ms;
    best.name = format!("{}-min", spec.name.trim_end_matches("-min"));
    best.description = format!(
        "{} Shrunk by `clusterlab chaos shrink` from {} to {} steps ({} attempts).",
        spec.description, report.steps_before, report.steps_after, report.attempts
    );
    report.smallest = best;
    report.seconds = s.started.elapsed().as_secs_f64();
    report
}

/// One shrink in progress: its limits, its report so far, how to rerun a candidate, where to log.
struct Shrinker<F, L> {
    limits: ShrinkLimits,
    started: Instant,
    report: ShrinkReport,
    rerun: F,
    log: L,
}

impl<F, Fut, L> Shrinker<F, L>
where
    F: FnMut(DrillSpec) -> Fut,
    Fut: Future<Output = BTreeSet<AnomalyKind>>,
    L: FnMut(String),
{
    /// True (and the reason recorded) once the attempt or time limit is reached.
    fn over(&mut self) -> bool {
        if self.report.attempts >= self.limits.max_attempts {
            self.report.stopped = "attempt limit";
            true
        } else if self.started.elapsed() >= self.limits.max_time {
            self.report.stopped = "time limit";
            true
        } else {
            false
        }
    }

    /// Reruns `candidate`; whether it still shows `target`. `what` says what was tried.
    async fn still_shows(&mut self, candidate: &DrillSpec, target: AnomalyKind, what: String) -> bool {
        self.report.attempts += 1;
        let kinds = (self.rerun)(candidate.clone()).await;
        let keep = kinds.contains(&target);
        (self.log)(format!(
            "attempt {}: {what}: {}{}",
            self.report.attempts,
            kinds_text(&kinds),
            if keep { " -> kept" } else { "" }
        ));
        keep
    }

    /// Delta debugging over episodes: remove one of n chunks at a time; on success keep the
    /// rest and coarsen, else refine until chunks are single episodes.
    async fn drop_episodes(&mut self, spec: &DrillSpec, target: AnomalyKind) -> DrillSpec {
        let mut best = spec.clone();
        let mut eps = units(&spec.steps);
        let mut n = 2usize;
        'search: while !eps.is_empty() {
            let chunk = eps.len().div_ceil(n.min(eps.len()));
            let mut removed_one = false;
            for start in (0..eps.len()).step_by(chunk.max(1)) {
                if self.over() {
                    break 'search;
                }
                let rest: Vec<Vec<usize>> = eps
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i < start || *i >= start + chunk)
                    .map(|(_, e)| e.clone())
                    .collect();
                let candidate = with_episodes(spec, &rest);
                let what = format!(
                    "without episodes {}..{} ({} steps left)",
                    start + 1,
                    (start + chunk).min(eps.len()),
                    candidate.steps.len()
                );
                if self.still_shows(&candidate, target, what).await {
                    eps = rest;
                    best = candidate;
                    n = (n - 1).max(2);
                    removed_one = true;
                    break;
                }
            }
            if !removed_one {
                if chunk <= 1 {
                    break;
                }
                n = (n * 2).min(eps.len());
            }
        }
        best
    }

    /// Then time: episodes pulled together, then held half as long.
    async fn shorten(&mut self, mut best: DrillSpec, target: AnomalyKind) -> DrillSpec {
        for (gap, factor, what) in [(1_000, 1.0, "pulled together"), (1_000, 0.5, "faults held half as long")]
        {
            if self.over() || best.workload.duration_ms.is_none() {
                break;
            }
            let candidate = compact(&best, &clusters(&best.steps), gap, factor);
            if candidate == best {
                continue;
            }
            let what = format!("{what}, run of {} ms", candidate.workload.duration_ms.unwrap_or(0));
            if self.still_shows(&candidate, target, what).await {
                best = candidate;
            }
        }
        best
    }
}

fn kinds_text(kinds: &BTreeSet<AnomalyKind>) -> String {
    if kinds.is_empty() {
        "no anomaly".into()
    } else {
        format!("anomalies {}", names(kinds))
    }
}

/// `lost_write, duplicate`: most severe first.
pub fn names(kinds: &BTreeSet<AnomalyKind>) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chaos::{build_drill, ChaosOptions, Family};

    /// The search on its own, with an oracle instead of a cluster: "lost writes show whenever a
    /// power cut of every node is in the drill".
    #[tokio::test]
    async fn shrinking_keeps_only_the_episode_that_shows_the_anomaly() {
        let opts = ChaosOptions {
            seed: 3,
            duration_ms: 90_000,
            fsync: crate::drill::Fsync::Never,
            ..Default::default()
        };
        let spec = build_drill(&opts);
        let cuts_all = |s: &DrillSpec| {
            s.steps
                .iter()
                .any(|s| matches!(&s.action, Action::Fault(Fault::PowerCut { target: Target::All })))
        };
        assert!(
            cuts_all(&spec),
            "seed 3 draws a power cut of every node; pick another seed if the drawing changed"
        );
        let eps_before = episodes(&spec.steps).len();
        let limits = ShrinkLimits { max_attempts: 60, max_time: Duration::from_secs(60) };
        let oracle = |s: DrillSpec| async move {
            if cuts_all(&s) {
                BTreeSet::from([AnomalyKind::LostWrite])
            } else {
                BTreeSet::new()
            }
        };
        let r = shrink(spec, limits, None, oracle, |_| {}).await;
        assert!(r.reproduced && r.stopped == "done", "{}", r.stopped);
        let eps = episodes(&r.smallest.steps);
        assert_eq!(eps.len(), 1, "from {eps_before} episodes to one: {:?}", r.smallest.steps);
        assert!(cuts_all(&r.smallest) && r.steps_after <= 3, "{:?}", r.smallest.steps);
        assert!(r.duration_after_ms.unwrap() < r.duration_before_ms.unwrap());
        let restart = r
            .smallest
            .steps
            .iter()
            .any(|s| matches!(&s.action, Action::Fault(Fault::Restart { target: Target::Previous })));
        assert!(restart, "the power cut keeps its heal");
        let _ = Family::ALL;
    }

    /// An anomaly that needs two faults at once: a kill while a partition is in force.
    #[tokio::test]
    async fn shrinking_keeps_a_companion_with_the_episode_it_runs_inside() {
        let kill_in_partition = |s: &DrillSpec| {
            let mut cut = false;
            for step in &s.steps {
                match &step.action {
                    Action::Fault(Fault::Heal) => cut = false,
                    Action::Fault(Fault::Kill { .. }) if cut => return true,
                    Action::Fault(f)
                        if super::super::overlap::kind(f) == super::super::overlap::Kind::Fabric =>
                    {
                        cut = true
                    }
                    _ => {}
                }
            }
            false
        };
        let seed = (1..200)
            .find(|seed| kill_in_partition(&build_drill(&ChaosOptions { seed: *seed, ..Default::default() })))
            .expect("some seed kills during a partition");
        let spec = build_drill(&ChaosOptions { seed, ..Default::default() });
        let limits = ShrinkLimits { max_attempts: 80, max_time: Duration::from_secs(60) };
        let oracle = |s: DrillSpec| async move {
            match kill_in_partition(&s) {
                true => BTreeSet::from([AnomalyKind::LostWrite]),
                false => BTreeSet::new(),
            }
        };
        let r = shrink(spec, limits, None, oracle, |_| {}).await;
        assert!(r.reproduced && r.stopped == "done", "seed {seed}: {}", r.stopped);
        let eps = episodes(&r.smallest.steps);
        assert_eq!(eps.len(), 2, "seed {seed}: the partition and the kill inside it: {:?}", r.smallest.steps);
        assert!(kill_in_partition(&r.smallest), "compacting kept the kill inside: {:?}", r.smallest.steps);
        // The smallest drill is a drill file that parses again.
        let text = crate::chaos::drill_file::render(&r.smallest);
        crate::drill::parse_drill(&text, &r.smallest.file).expect("the shrunk drill parses");
    }

    #[test]
    fn heals_stay_with_their_fault() {
        let spec = build_drill(&ChaosOptions { seed: 11, ..Default::default() });
        let spec_eps = crate::chaos::draw_episodes(&ChaosOptions { seed: 11, ..Default::default() });
        assert!(spec_eps.iter().any(|e| e.within.is_some()), "seed 11 overlaps");
        for e in episodes(&spec.steps) {
            // A main episode and a companion that targets a role wait for leaders first.
            assert!(matches!(e[0].action, Action::Wait { .. } | Action::Fault(_)), "{e:?}");
            let primaries = e.iter().filter(|s| !is_follow_up(s) && !matches!(s.action, Action::Wait { .. }));
            assert_eq!(primaries.count(), 1, "{e:?}");
        }
    }
}
