//! The honest negative control, against real brokers: with fsync=never, a power cut of every
//! node must lose acknowledged writes; chaos must find that, save a drill, and shrinking must end
//! with a drill of few steps that still shows it.
//!
//! Ignored by default: one chaos run and a shrink are several cluster runs (about 8 minutes on
//! two cores), far over what CI spends per test. Run it with
//! `cargo test -p labs --lib chaos::tests -- --ignored --nocapture`.

use std::collections::BTreeSet;
use std::time::Duration;

use super::shrink::{episodes, shrink, ShrinkLimits};
use super::{build_drill, ChaosOptions, Family};
use crate::checker::AnomalyKind;
use crate::drill::{parse_drill, Action, Fault, Fsync, Target};
use crate::lab::{Lab, LabConfig};

fn lab(root: &std::path::Path) -> std::sync::Arc<Lab> {
    Lab::new(LabConfig::for_tests(root))
}

fn cuts_every_node(steps: &[crate::drill::Step]) -> bool {
    steps.iter().any(|s| matches!(&s.action, Action::Fault(Fault::PowerCut { target: Target::All })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "several real cluster runs (~8 min); see the module doc"]
async fn fsync_never_and_power_cuts_lose_writes_and_shrink_to_the_power_cut() {
    let root = std::env::temp_dir().join(format!("clusterlab-chaos-control-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    // Seed 2 draws five episodes of kills, pauses and power cuts; the fourth cuts every node.
    let opts = ChaosOptions {
        seed: 2,
        duration_ms: 30_000,
        families: vec![Family::Kill, Family::Pause, Family::PowerCut],
        fsync: Fsync::Never,
        ..ChaosOptions::default()
    };
    let spec = build_drill(&opts);
    assert!(
        cuts_every_node(&spec.steps) && episodes(&spec.steps).len() == 5,
        "the drawing changed: pick a seed"
    );

    let l = lab(&root);
    let report = l.run_chaos(&opts, None, &root).await.expect("chaos runs");
    l.close().await;
    println!("chaos: {report:?}");
    assert!(
        !report.passed && report.anomalies.get(&AnomalyKind::LostWrite).is_some_and(|n| *n > 0),
        "{report:?}"
    );
    let saved = report.saved.expect("a run with anomalies saves its drill");
    let replay =
        parse_drill(&std::fs::read_to_string(&saved).unwrap(), &saved).expect("the saved drill parses");
    assert_eq!(replay.steps.len(), spec.steps.len());

    let limits = ShrinkLimits { max_attempts: 10, max_time: Duration::from_secs(600) };
    let rerun = |candidate| {
        let root = root.clone();
        async move {
            let l = lab(&root);
            let outcome = l.run_drill_spec(candidate, Some(2), None).await;
            l.close().await;
            let kinds: BTreeSet<AnomalyKind> = outcome
                .map(|o| super::run::anomaly_kinds(o.verdict.as_ref()).into_keys().collect())
                .unwrap_or_default();
            kinds
        }
    };
    let r = shrink(replay, limits, None, rerun, |line| println!("{line}")).await;
    println!(
        "shrink: {} -> {} steps, {:?} -> {:?} ms, {} attempts, {:.0} s, stopped: {}",
        r.steps_before,
        r.steps_after,
        r.duration_before_ms,
        r.duration_after_ms,
        r.attempts,
        r.seconds,
        r.stopped
    );
    assert_eq!(r.target, Some(AnomalyKind::LostWrite), "the most severe kind is kept: {:?}", r.kinds);
    assert!(r.steps_after <= 6, "few steps left: {:?}", r.smallest.steps);
    assert!(cuts_every_node(&r.smallest.steps), "the power cut of every node is what loses writes");
    let _ = std::fs::remove_dir_all(&root);
}
