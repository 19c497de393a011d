//! Tests for lesson files: the shipped lessons, and that a typo'd or invalid lesson is reported
//! at `file:line:column` naming the key, like a drill.

use std::path::{Path, PathBuf};

use super::*;

const FILE: &str = "labs/lessons/x.toml";

/// A minimal valid lesson; tests swap one line to break it in one place.
const BASE: &str = r#"name = "x"
title = "X"
description = "d"
watch = "orders-0"

[setup]
topic = "orders"

[workload]
messages = 100
duration_ms = 5000

[[steps]]
fault = "kill"
target = "leader:orders/0"
await = "learner"
narrate = "Kill the leader."
explain = "A follower takes over."

[[steps]]
until = "leader_elected:orders/0"
timeout_ms = 5000

[expect]
elected_in_higher_term = true
"#;

fn lesson_err(text: &str, line: usize) -> String {
    let err = parse_lesson(text, Path::new(FILE)).expect_err("lesson should be rejected").to_string();
    let prefix = format!("{FILE}:{line}:");
    assert!(err.starts_with(&prefix), "expected an error at line {line}, got: {err}");
    err
}

fn lessons_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons")
}

#[test]
fn the_base_lesson_parses_with_its_lesson_keys() {
    let l = parse_lesson(BASE, Path::new(FILE)).unwrap();
    assert!(l.lesson);
    assert_eq!(l.watch.as_deref(), Some("orders-0"));
    assert_eq!(l.steps[0].awaits, Some(Await::Learner));
    assert_eq!(l.steps[0].explain.as_deref(), Some("A follower takes over."));
    assert!(l.expect.raft.elected_in_higher_term);
}

#[test]
fn every_shipped_lesson_parses_teaches_and_stays_short() {
    let lessons = load_lessons(&lessons_dir()).unwrap();
    let names: Vec<&str> = lessons.iter().map(|l| l.name.as_str()).collect();
    for must in [
        "leader-election",
        "log-replication",
        "leader-crash",
        "minority-leader-rollback",
        "power-cut-fsync",
        "slow-disk",
    ] {
        assert!(names.contains(&must), "missing lesson {must}: {names:?}");
    }
    for l in &lessons {
        assert_eq!(l.file.file_stem().unwrap().to_str().unwrap(), l.name);
        assert!(l.watch.is_some(), "{}: the Raft view needs a group", l.name);
        assert!(l.steps.iter().any(|s| s.explain.is_some()), "{}: explains nothing", l.name);
        assert!(l.steps.iter().any(|s| s.awaits.is_some()), "{}: never waits for the learner", l.name);
        // "Checked like a drill expectation": each lesson demonstrates something checkable.
        let e = &l.expect;
        let demonstrates = !e.raft.is_empty() || e.lost == Outcome::Some || e.max_unavailability_ms.is_some();
        assert!(demonstrates, "{}: no expectation shows what it teaches", l.name);
        // CI runs every lesson: an upper bound on the workload, well under the drills'.
        assert!(l.workload.duration_ms.is_some_and(|ms| ms <= 15_000), "{}: too long", l.name);
    }
}

#[test]
fn a_typo_in_a_lesson_key_names_file_line_and_key() {
    let err = lesson_err(&BASE.replace("explain =", "explian ="), 18);
    assert!(err.contains("unknown field `explian`, expected one of"), "{err}");
    assert!(err.contains("`explain`") && err.contains("`await`"), "{err}");
    let err = lesson_err(&BASE.replace("await = \"learner\"", "await = \"lerner\""), 16);
    assert!(err.contains("unknown variant `lerner`, expected `learner` or `next`"), "{err}");
    let err = lesson_err(&BASE.replace("elected_in_higher_term", "elected_higher_term"), 25);
    assert!(err.contains("unknown field `elected_higher_term`"), "{err}");
}

#[test]
fn invalid_lessons_say_what_is_wrong_where() {
    let err = lesson_err(&BASE.replace("watch = \"orders-0\"\n", ""), 1);
    assert!(err.contains("a lesson needs `watch = \"<group>\"`"), "{err}");
    let err = lesson_err(&BASE.replace("\"orders-0\"", "\"orders-3\""), 4);
    assert!(
        err.contains("watch = \"orders-3\" is not a Raft group of this drill: controller or orders-0"),
        "{err}"
    );
    // The learner can only do what the node menu offers, on one node.
    let err = lesson_err(&BASE.replace("target = \"leader:orders/0\"", "target = \"all\""), 16);
    assert!(err.contains("await = \"learner\" needs a fault from the node menu"), "{err}");
    let wait_by_learner = BASE.replace("timeout_ms = 5000\n", "timeout_ms = 5000\nawait = \"learner\"\n");
    let err = lesson_err(&wait_by_learner, 23);
    assert!(err.contains("waits for the learner to perform the step's fault"), "{err}");
    let err = lesson_err(&BASE.replace("\"A follower takes over.\"", "\"\""), 18);
    assert!(err.contains("explain must be one non-empty paragraph"), "{err}");
}

#[test]
fn lesson_keys_are_refused_in_drills_and_trace_expectations_need_a_watched_group() {
    let as_drill = |text: &str| parse_drill(text, Path::new(FILE)).unwrap_err().to_string();
    let unwatched = BASE.replace("watch = \"orders-0\"\n", "");
    let err = as_drill(&unwatched);
    assert!(err.starts_with(&format!("{FILE}:17:")) && err.contains("`explain` belongs to lessons"), "{err}");
    let unexplained = unwatched.replace("explain = \"A follower takes over.\"\n", "");
    let err = as_drill(&unexplained);
    assert!(err.starts_with(&format!("{FILE}:15:")) && err.contains("`await` belongs to lessons"), "{err}");
    let no_await = unwatched.replace("await = \"learner\"\n", "");
    let plain = no_await.replace("explain = \"A follower takes over.\"\n", "");
    let err = as_drill(&plain);
    assert!(
        err.starts_with(&format!("{FILE}:22:"))
            && err.contains("`elected_in_higher_term` reads the Raft trace"),
        "{err}"
    );
    // With a watched group a drill may state trace expectations too.
    let watched = format!("watch = \"controller\"\n{plain}");
    assert!(parse_drill(&watched, Path::new(FILE)).unwrap().expect.raft.elected_in_higher_term);
}
