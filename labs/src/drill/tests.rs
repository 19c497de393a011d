//! Tests for the drill format: the shipped catalog, and that every mistake an author is likely to
//! make is reported at `file:line:column` with what was expected.

use std::path::{Path, PathBuf};

use super::*;

const FILE: &str = "labs/drills/x.toml";

/// A minimal valid drill; tests append steps or swap lines to break it in one place.
const BASE: &str = r#"name = "x"
title = "X"
description = "d"

[setup]
topic = "orders"
fsync = "always"
partitions = 2

[workload]
messages = 100
duration_ms = 5000
"#;

fn parse(text: &str) -> Result<DrillSpec, String> {
    parse_drill(text, Path::new(FILE)).map_err(|e| e.to_string())
}

fn with_steps(steps: &str) -> String {
    format!("{BASE}\n{steps}\n[expect]\nlost = \"none\"\n")
}

/// Parses and returns the error text, which must start with `file:line:`.
fn error_at(text: &str, line: usize) -> String {
    let err = parse(text).expect_err("drill should be rejected");
    let prefix = format!("{FILE}:{line}:");
    assert!(err.starts_with(&prefix), "expected error at line {line}, got: {err}");
    err
}

fn catalog_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("drills")
}

#[test]
fn base_drill_parses_with_defaults() {
    let d = parse(&with_steps("")).unwrap();
    assert_eq!(d.setup.nodes, 3);
    assert_eq!(d.setup.replication_factor, 3);
    assert_eq!(d.setup.acks, Acks::All);
    assert_eq!(d.expect.duplicates, Outcome::None);
    assert_eq!(d.workload.consume_via, Target::All);
}

#[test]
fn every_catalog_drill_parses_and_validates() {
    let catalog = load_catalog(&catalog_dir()).unwrap();
    assert!(catalog.len() >= 16, "only {} drills", catalog.len());
    assert!(catalog.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
    for seed in [
        "seed-single-node-sigterm",
        "seed-three-node-formation",
        "seed-leader-crash",
        "seed-follower-rejoin",
        "seed-rolling-restart",
    ] {
        assert!(find(&catalog, seed).unwrap().tags.contains(&"seed".to_string()), "{seed}");
    }
    for d in &catalog {
        // Narration counts file lines, not repeats of a storm step.
        let lines: std::collections::BTreeSet<_> =
            d.steps.iter().filter(|s| s.narrate.is_some()).map(|s| s.line).collect();
        assert!((2..=4).contains(&lines.len()), "{}: {} narration lines", d.name, lines.len());
        // A CI runs every drill: the workload must end within 25 s.
        assert!(d.workload.duration_ms.is_some_and(|ms| ms <= 25_000), "{}: unbounded or too long", d.name);
        // The file stem is the name, so `drill run NAME` and the file are found the same way.
        assert_eq!(d.file.file_stem().unwrap().to_str().unwrap(), d.name);
    }
}

#[test]
fn catalog_expectations_match_the_lessons() {
    let catalog = load_catalog(&catalog_dir()).unwrap();
    let expect = |name: &str| &find(&catalog, name).unwrap().expect;
    assert_eq!(expect("power-cut-fsync-always").lost, Outcome::None);
    assert_eq!(expect("power-cut-fsync-never").lost, Outcome::Some);
    assert_eq!(expect("duplicates-non-idempotent").duplicates, Outcome::Any);
    assert_eq!(expect("duplicates-idempotent").duplicates, Outcome::None);
    assert!(expect("port-taken").start_fails_with.as_deref().unwrap().contains("{port}"));
    let storm = find(&catalog, "restart-storm").unwrap();
    let restarts =
        storm.steps.iter().filter(|s| matches!(s.action, Action::Fault(Fault::Restart { .. }))).count();
    assert_eq!(restarts, 6, "repeat = 6 expands to six steps");
    assert_eq!(storm.steps[5].when, When::AtMs(12_000));
}

#[test]
fn typo_key_reports_location_and_expected_keys() {
    let err = error_at(&BASE.replace("fsync = ", "fsynk = "), 7);
    assert!(err.starts_with("labs/drills/x.toml:7:1: unknown field `fsynk`, expected one of"), "{err}");
    assert!(err.contains("`fsync`") && err.contains("`replication_factor`"), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");
}

#[test]
fn bad_target_is_explained_at_its_line() {
    let err = error_at(
        &with_steps("[[steps]]\nat_ms = 1000\nfault = \"kill\"\ntarget = \"leeder:orders/0\"\n"),
        17,
    );
    assert!(
        err.contains("unknown target 'leeder:orders/0': expected node:<id>, leader:<topic>/<p>"),
        "{err}"
    );
    let err = error_at(&with_steps("[[steps]]\nfault = \"kill\"\ntarget = \"leader:orders\"\n"), 16);
    assert!(err.contains("expected leader:<topic>/<partition>"), "{err}");
}

#[test]
fn bad_wait_is_explained_at_its_line() {
    let err = error_at(&with_steps("[[steps]]\nuntil = \"leader_elect:orders/0\"\ntimeout_ms = 100\n"), 15);
    assert!(
        err.contains(
            "unknown wait 'leader_elect:orders/0': expected leader_elected:<topic>/<p>, all_leaders"
        ),
        "{err}"
    );
}

#[test]
fn bad_fsync_and_fault_names_are_explained() {
    let err = error_at(&BASE.replace("\"always\"", "\"sometimes\""), 7);
    assert!(
        err.ends_with(
            "unknown fsync policy 'sometimes': expected always, interval:<ms> (e.g. interval:50) or never"
        ),
        "{err}"
    );
    let err = error_at(&with_steps("[[steps]]\nfault = \"kil\"\ntarget = \"node:1\"\n"), 15);
    assert!(err.contains("unknown variant `kil`, expected one of `kill`, `stop`"), "{err}");
}

#[test]
fn step_semantics_are_checked_with_the_step_line() {
    let cases = [
        (
            "[[steps]]\nfault = \"kill\"\ntarget = \"leader:payments/0\"\n",
            16,
            "topic 'payments' is not this drill's topic 'orders'",
        ),
        ("[[steps]]\nfault = \"kill\"\ntarget = \"leader:orders/2\"\n", 16, "partition 2 does not exist"),
        ("[[steps]]\nfault = \"kill\"\ntarget = \"node:4\"\n", 16, "the drill has nodes 1 to 3"),
        ("[[steps]]\nfault = \"kill\"\ntarget = \"minority\"\n", 16, "only means something after a split"),
        ("[[steps]]\nfault = \"restart\"\ntarget = \"previous\"\n", 16, "there is none yet"),
        ("[[steps]]\nuntil = \"all_leaders\"\n", 15, "a wait needs timeout_ms"),
        ("[[steps]]\nuntil = \"all_leaders\"\ntimeout_ms = 0\n", 16, "timeout_ms must be above 0"),
        (
            "[[steps]]\nat_ms = 5000\nnarrate = \"a\"\n[[steps]]\nat_ms = 2000\nnarrate = \"b\"\n",
            18,
            "at_ms 2000 is earlier than at_ms 5000 on line 14",
        ),
        (
            "[[steps]]\nfault = \"kill\"\ntarget = \"node:1\"\ndelay_ms = 5\n",
            17,
            "`delay_ms` does not apply to fault `kill`",
        ),
        ("[[steps]]\nfault = \"slow_disk\"\ntarget = \"node:1\"\n", 15, "fault `slow_disk` needs `delay_ms`"),
        (
            "[[steps]]\nfault = \"split\"\nminority = [\"node:1\", \"node:2\"]\n",
            16,
            "fewer than half of the 3 nodes",
        ),
        (
            "[[steps]]\nfault = \"kill\"\ntarget = \"node:1\"\nuntil = \"all_leaders\"\n",
            17,
            "either a fault or a wait",
        ),
        ("[[steps]]\nat_ms = 1\nafter_ms = 2\nnarrate = \"a\"\n", 16, "`at_ms` or `after_ms`, not both"),
        ("[[steps]]\nuntil = \"acked:500\"\ntimeout_ms = 100\n", 15, "the workload sends 100 messages"),
        ("[[steps]]\nfault = \"take_port\"\ntarget = \"node:1\"\n", 15, "add before_start = true"),
        ("[[steps]]\nat_ms = 1\n", 14, "a step needs `fault`, `until` or `narrate`"),
    ];
    for (steps, line, message) in cases {
        let err = error_at(&with_steps(steps), line);
        assert!(err.contains(message), "for {steps:?}: {err}");
    }
}

#[test]
fn setup_and_workload_semantics_are_checked() {
    let err = error_at(&with_steps("").replace("partitions = 2", "partitions = 0"), 8);
    assert!(err.ends_with("partitions must be at least 1"), "{err}");
    let err = error_at(&with_steps("").replace("partitions = 2", "nodes = 2\nreplication_factor = 3"), 9);
    assert!(err.ends_with("replication_factor must be 1 to nodes (2)"), "{err}");
    let err = error_at(&with_steps("").replace("messages = 100\nduration_ms = 5000\n", ""), 10);
    assert!(err.contains("[workload] needs a bound"), "{err}");
    let err = error_at(&with_steps("").replace("[expect]", "[expect]\nstart_fails_with = \"port\""), 16);
    assert!(err.contains("needs a step with fault = \"take_port\""), "{err}");
}

#[test]
fn catalog_refuses_duplicate_names() {
    let dir = std::env::temp_dir().join(format!("drill-catalog-dup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), with_steps("")).unwrap();
    std::fs::write(dir.join("b.toml"), with_steps("")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a drill").unwrap();
    let err = load_catalog(&dir).unwrap_err().to_string();
    std::fs::remove_dir_all(&dir).unwrap();
    let b = dir.join("b.toml");
    assert!(err.starts_with(&format!("{}:1:1: duplicate drill name 'x'", b.display())), "{err}");
    assert!(err.contains("a.toml already uses it"), "{err}");
}

#[test]
fn selectors_round_trip_through_display() {
    for s in [
        "node:2",
        "leader:orders/0",
        "follower:o.x/3",
        "controller",
        "busiest",
        "random",
        "minority",
        "previous",
        "all",
    ] {
        assert_eq!(s.parse::<Target>().unwrap().to_string(), s);
    }
    for s in ["leader_elected:orders/1", "all_leaders", "caught_up:node:3", "node_ready:previous", "acked:10"]
    {
        assert_eq!(s.parse::<Until>().unwrap().to_string(), s);
    }
    assert!("caught_up:all".parse::<Until>().unwrap_err().contains("is not one node"));
    assert_eq!("interval:50".parse::<Fsync>().unwrap(), Fsync::IntervalMs(50));
}

#[test]
fn term_expectation_is_a_percentage() {
    let ok = parse(&format!("{BASE}\n[expect]\nmin_term_plus_one_pct = 95\n")).unwrap();
    assert_eq!(ok.expect.min_term_plus_one_pct, Some(95.0));
    let text = format!("{BASE}\n[expect]\nmin_term_plus_one_pct = 140\n");
    let line = text.lines().count();
    assert!(error_at(&text, line).contains("is a percentage: 0 to 100"));
}

/// Seeded mutations of every catalog drill (bytes flipped, lines cut, numbers made huge or
/// negative): parsing never panics, and a rejection always says `file:line:` where.
#[test]
fn mutated_drill_files_are_rejected_with_a_location_never_a_panic() {
    let mut rng = crate::bench::fuzz::Rng::new(0x5EED_D811_u64);
    let mut next = move || rng.next();
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(catalog_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut rejected = 0;
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        for _ in 0..40 {
            let mut bytes = text.clone().into_bytes();
            match next() % 4 {
                0 => {
                    let at = (next() % bytes.len() as u64) as usize;
                    const CHARS: &[u8] = b"=[]\"#\n0x-9z{}.";
                    bytes[at] = CHARS[(next() % CHARS.len() as u64) as usize];
                }
                1 => bytes.truncate((next() % bytes.len() as u64) as usize),
                2 => {
                    let s = String::from_utf8_lossy(&bytes).replacen(
                        |c: char| c.is_ascii_digit(),
                        "99999999999999999999",
                        1,
                    );
                    bytes = s.into_bytes();
                }
                _ => {
                    let s = String::from_utf8_lossy(&bytes).replacen(" = ", " = -", 1);
                    bytes = s.into_bytes();
                }
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            if let Err(e) = parse(&mutated) {
                rejected += 1;
                assert!(e.starts_with(&format!("{FILE}:")), "no location in: {e}");
            }
        }
    }
    assert!(rejected > 0, "no mutation was rejected: the mutations do nothing");
}
