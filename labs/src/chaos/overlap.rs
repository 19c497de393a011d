//! Overlapping episodes: companions drawn inside main-lane episodes, so that faults of different
//! kinds meet (a kill during a partition, a link toxic while a node is paused, a partition while
//! a disk is slow), as in real incidents.
//!
//! Companions come from their own ChaCha8 stream of the seed (stream 1; the main lane uses
//! stream 0), so turning overlap on adds episodes without changing what the main lane draws.
//!
//! Rules, from how heals work:
//! - A link or partition is healed by `heal`, which sets *every* link back to pass
//!   (`Fabric::heal_all`), so at most one fabric episode runs at a time: a main fabric episode
//!   gets node companions only, and a main node episode gets fabric companions only.
//! - A node fault is healed through `previous` (`restart previous`, `resume previous`,
//!   `slow_disk previous 0`), which means the nodes of the *latest* fault that hit nodes. So
//!   between a node fault and its heal no other step may hit nodes: a companion nests strictly
//!   inside its main episode (its fault after the main fault, its heal before the main heal), a
//!   node companion's `previous` is then its own, and the fabric companions of a main node episode
//!   are link faults (`toxic`, one-way `cut_link`), which do not set `previous` (isolate and
//!   bridge would).
//! - Restarts and corrupted segments heal themselves in one step and get no companion.
//!
//! Majority outages are allowed (as in Jepsen): a kill of the majority side's leader during an
//! isolation leaves one reachable node for up to a hold. The checker judges safety only, and
//! the outage shows as an unavailability window. No step waits for leaders while the main
//! fault of an episode makes a majority impossible: a node companion that targets a role waits
//! (the majority side of a partition elects), a link companion names nodes by id and never waits.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::family::Family;
use super::schedule::{between, draw_toxic, episode, node_pair, Episode, Plan};
use crate::drill::{Direction, Fault, Target};

/// Chance that a main episode gets a companion.
pub const OVERLAP_CHANCE: f64 = 0.5;
/// A companion starts at least this long after its main fault and is healed at least this long
/// before the main heal, so the two never share a step time.
const MARGIN_MS: u64 = 250;
/// A companion shorter than this would be gone before it mattered.
const MIN_HOLD_MS: u64 = 300;
const HOLD_MS: (u64, u64) = (1_000, 6_000);

/// How an episode's fault is healed, which decides what may run inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Links: healed by `heal` (all links).
    Fabric,
    /// Processes and disks: healed through `previous`.
    Node,
    /// Heals itself in its own step (restart, corrupted segment).
    SelfHealing,
}

pub fn kind(f: &Fault) -> Kind {
    match f {
        Fault::Isolate { .. }
        | Fault::Bridge { .. }
        | Fault::Split { .. }
        | Fault::CutLink { .. }
        | Fault::DelayLink { .. }
        | Fault::BlackholeLink { .. }
        | Fault::Toxic { .. } => Kind::Fabric,
        Fault::Restart { .. } | Fault::CorruptSegment { .. } => Kind::SelfHealing,
        _ => Kind::Node,
    }
}

/// Whether a fault changes what `previous` means (`lab/faults.rs`: every fault that hits
/// nodes, except link faults).
pub fn sets_previous(f: &Fault) -> bool {
    !matches!(
        f,
        Fault::Heal
            | Fault::CutLink { .. }
            | Fault::HealLink { .. }
            | Fault::DelayLink { .. }
            | Fault::BlackholeLink { .. }
            | Fault::Toxic { .. }
    )
}

/// `main` with companions inserted right after the episode each runs inside.
pub fn add_companions(plan: &Plan, main: Vec<Episode>) -> Vec<Episode> {
    let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
    rng.set_stream(1);
    let mut out = Vec::with_capacity(main.len() * 2);
    for m in main {
        let within = out.len();
        let companion = companion(&mut rng, plan, &m);
        out.push(m);
        if let Some(mut c) = companion {
            c.within = Some(within);
            out.push(c);
        }
    }
    out
}

fn companion(rng: &mut ChaCha8Rng, plan: &Plan, main: &Episode) -> Option<Episode> {
    // The coin first, always, so that one episode's draw never shifts what the next one gets
    // for reasons other than its own.
    if !rng.random_bool(OVERLAP_CHANCE) {
        return None;
    }
    let allowed: &[Family] = match kind(&main.fault) {
        Kind::Fabric => {
            &[Family::Kill, Family::Pause, Family::Stop, Family::Restart, Family::PowerCut, Family::Disk]
        }
        Kind::Node => &[Family::Link, Family::Partition],
        Kind::SelfHealing => return None,
    };
    let families: Vec<Family> = plan.families.iter().copied().filter(|f| allowed.contains(f)).collect();
    if families.is_empty() || main.hold_ms < 2 * MARGIN_MS + MIN_HOLD_MS {
        return None;
    }
    let family = families[rng.random_range(0..families.len())];
    let (fault, heal, hold_ms) = match family {
        Family::Partition => {
            let (from, to) = node_pair(rng);
            (
                Fault::CutLink { from, to, direction: Direction::OneWay },
                vec![Fault::Heal],
                between(rng, HOLD_MS),
            )
        }
        Family::Link => {
            let (from, to) = node_pair(rng);
            (Fault::Toxic { from, to, toxic: draw_toxic(rng) }, vec![Fault::Heal], between(rng, HOLD_MS))
        }
        f => episode(rng, f, plan.topic, plan.partitions),
    };
    let at_ms = main.at_ms + rng.random_range(MARGIN_MS..=main.hold_ms - MARGIN_MS - MIN_HOLD_MS);
    let latest_end = main.at_ms + main.hold_ms - MARGIN_MS;
    let hold_ms = hold_ms.min(latest_end - at_ms);
    let wait = targets_a_role(&fault);
    Some(Episode { family, at_ms, fault, heal, hold_ms, within: None, wait })
}

/// A role (`leader:`, `follower:`, `controller`) needs a leader to resolve to a node.
fn targets_a_role(f: &Fault) -> bool {
    let target = match f {
        Fault::Kill { target }
        | Fault::Stop { target }
        | Fault::Pause { target }
        | Fault::Restart { target }
        | Fault::PowerCut { target }
        | Fault::CorruptSegment { target }
        | Fault::FsyncFail { target }
        | Fault::SlowDisk { target, .. } => target,
        // Companion links are drawn between nodes by id.
        _ => return false,
    };
    matches!(target, Target::Leader(_) | Target::Follower(_) | Target::Controller | Target::Busiest)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::chaos::draw_plan;
    use crate::chaos::schedule::{draw, to_steps, COOL_DOWN_MS};
    use crate::drill::{Action, When};

    fn plan(seed: u64, duration_ms: u64, families: &[Family]) -> Vec<Episode> {
        draw_plan(&Plan { seed, duration_ms, families, topic: "chaos", partitions: 3, overlap: true })
    }

    fn uses_previous(f: &Fault) -> bool {
        matches!(
            f,
            Fault::Restart { target: Target::Previous }
                | Fault::Resume { target: Target::Previous }
                | Fault::SlowDisk { target: Target::Previous, .. }
        )
    }

    #[test]
    fn overlap_is_drawn_from_the_seed_and_leaves_the_main_lane_as_it_was() {
        let a = plan(42, 60_000, &Family::ALL);
        assert_eq!(a, plan(42, 60_000, &Family::ALL));
        assert_ne!(a, plan(43, 60_000, &Family::ALL));
        let main: Vec<Episode> = a.iter().filter(|e| e.within.is_none()).cloned().collect();
        assert_eq!(main, draw(42, 60_000, &Family::ALL, "chaos", 3));
        // Pinned, like the main lane's first episode: a change here changes what seeds mean.
        let first = a.iter().find(|e| e.within.is_some()).expect("seed 42 overlaps");
        assert_eq!(format!("{} at {} ms", first.family, first.at_ms), "kill at 10773 ms");
    }

    #[test]
    fn overlap_is_present_in_most_minutes_and_in_the_ci_seed() {
        let with =
            (0..100).filter(|s| plan(*s, 60_000, &Family::ALL).iter().any(|e| e.within.is_some())).count();
        assert!(with >= 90, "only {with} of 100 seeds overlap");
        let ci = plan(1, 60_000, &Family::ALL);
        assert!(ci.iter().filter(|e| e.within.is_some()).count() >= 2, "{ci:?}");
        // No family that could nest inside another: nothing to overlap.
        assert!(plan(1, 60_000, &[Family::Kill, Family::Pause]).iter().all(|e| e.within.is_none()));
    }

    /// Walks the faults and heals of many schedules in time order, as the drill runner will, and
    /// checks the rules of the module doc.
    #[test]
    fn every_fault_is_healed_by_its_own_heal_and_no_heal_undoes_another_episode() {
        for seed in 0..300 {
            let eps = plan(seed, 90_000, &Family::ALL);
            // (time, order, episode, step): order keeps an episode's fault before its heals.
            let mut events: Vec<(u64, usize, usize, Fault)> = Vec::new();
            for (i, e) in eps.iter().enumerate() {
                events.push((e.at_ms, events.len(), i, e.fault.clone()));
                for h in &e.heal {
                    events.push((e.at_ms + e.hold_ms, events.len(), i, h.clone()));
                }
                assert!(e.at_ms + e.hold_ms <= 90_000 - COOL_DOWN_MS, "seed {seed}: {e:?} ends too late");
                assert_eq!(e.heal.is_empty(), kind(&e.fault) == Kind::SelfHealing, "seed {seed}: {e:?}");
                if let Some(j) = e.within {
                    let m = &eps[j];
                    assert!(m.within.is_none() && j < i, "seed {seed}: companions nest one deep");
                    assert!(
                        e.at_ms > m.at_ms && e.at_ms + e.hold_ms < m.at_ms + m.hold_ms,
                        "seed {seed}: {e:?} in {m:?}"
                    );
                    assert_ne!(
                        kind(&e.fault),
                        kind(&m.fault),
                        "seed {seed}: two of a kind at once: {e:?} in {m:?}"
                    );
                    assert!(
                        !(kind(&e.fault) == Kind::Fabric && sets_previous(&e.fault)),
                        "seed {seed}: {e:?}"
                    );
                }
            }
            events.sort_by_key(|(t, order, _, _)| (*t, *order));
            let mut fabric: BTreeSet<usize> = BTreeSet::new();
            let mut previous: Option<usize> = None;
            let mut down: BTreeSet<usize> = BTreeSet::new();
            for (t, _, i, f) in &events {
                let healing = e_heals(&eps[*i], f);
                if healing && f == &Fault::Heal {
                    assert_eq!(
                        fabric,
                        BTreeSet::from([*i]),
                        "seed {seed} at {t}: heal would undo other links"
                    );
                    fabric.clear();
                } else if healing && uses_previous(f) {
                    assert_eq!(
                        previous,
                        Some(*i),
                        "seed {seed} at {t}: {f:?} would hit another episode's node"
                    );
                }
                if !healing && kind(f) == Kind::Fabric {
                    fabric.insert(*i);
                }
                if !healing && kind(f) == Kind::Node {
                    assert!(
                        down.insert(*i) && down.len() == 1,
                        "seed {seed} at {t}: two node faults at once"
                    );
                }
                if healing && kind(&eps[*i].fault) == Kind::Node {
                    down.remove(i);
                }
                if sets_previous(f) {
                    previous = Some(*i);
                }
            }
            assert!(fabric.is_empty() && down.is_empty(), "seed {seed}: not healed: {fabric:?} {down:?}");
        }
    }

    fn e_heals(e: &Episode, f: &Fault) -> bool {
        e.heal.contains(f) && f != &e.fault
    }

    #[test]
    fn steps_run_in_time_order_and_shrinking_sees_each_companion_as_an_episode() {
        for seed in 0..50 {
            let eps = plan(seed, 60_000, &Family::ALL);
            let steps = to_steps(&eps);
            let mut last = 0;
            for s in &steps {
                if let When::AtMs(ms) = s.when {
                    assert!(ms >= last, "seed {seed}: step at {ms} after {last}");
                    last = ms;
                }
            }
            let units = crate::chaos::shrink::episodes(&steps);
            assert_eq!(units.len(), eps.len(), "seed {seed}");
            for (u, e) in units.iter().zip(&eps) {
                let faults: Vec<&Fault> = u
                    .iter()
                    .filter_map(|s| if let Action::Fault(f) = &s.action { Some(f) } else { None })
                    .collect();
                assert_eq!(faults[0], &e.fault, "seed {seed}");
                assert_eq!(faults.len(), 1 + e.heal.len(), "seed {seed}: {u:?}");
            }
        }
    }
}
