use std::sync::Arc;

use super::recorder::RunOutcome;
use super::*;
use crate::timeline::{EventKind, Source, Timeline};

fn note(t: &Timeline, text: &str) -> u64 {
    t.append(Source::Lab, crate::history::now_ns(), EventKind::Narration { text: text.into() })
}

#[tokio::test]
async fn a_recording_keeps_its_events_and_verdict_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::new(dir.path());
    let timeline = Arc::new(Timeline::new());
    note(&timeline, "before the run: not recorded");
    let first = note(&timeline, "first");
    let rec =
        Recording::start(&store, Arc::clone(&timeline), first, RunKind::Cluster, "cluster", None).unwrap();
    assert_eq!(store.list().unwrap()[0].status, RunStatus::Recording);
    timeline.append(Source::Lab, 1, EventKind::Verdict { ok: false, summary: "2 lost".into() });
    note(&timeline, "last");
    let meta = rec.finish(RunOutcome::default()).await;
    assert_eq!((meta.status, meta.events, meta.ok), (RunStatus::Complete, 3, Some(false)));
    assert_eq!(meta.summary.as_deref(), Some("2 lost"), "a cluster run takes its last verdict");
    let (read, events) = store.events(&meta.id).unwrap();
    assert_eq!(read, meta);
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].seq, first);
    assert!(meta.id.ends_with("-cluster"), "{}", meta.id);
}

#[tokio::test]
async fn a_drill_outcome_overrides_verdicts_seen_and_ids_take_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::new(dir.path());
    let timeline = Arc::new(Timeline::new());
    let first = note(&timeline, "drill");
    let rec = Recording::start(&store, timeline, first, RunKind::Drill, "Bridge drill", None).unwrap();
    let outcome = RunOutcome { ok: Some(true), summary: Some("PASSED".into()), verdict: None };
    let meta = rec.finish(outcome).await;
    assert!(meta.id.ends_with("-drill-bridge-drill"), "{}", meta.id);
    assert_eq!(store.get(&meta.id[..10]).unwrap().id, meta.id);
    let err = store.get("nope").unwrap_err().to_string();
    assert!(err.contains("no run \"nope\""), "{err}");
    store.delete(&meta.id).unwrap();
    assert!(store.list().unwrap().is_empty());
}

#[tokio::test]
async fn a_run_whose_process_died_is_interrupted_and_keeps_its_whole_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::new(dir.path());
    let timeline = Arc::new(Timeline::new());
    let first = note(&timeline, "one");
    note(&timeline, "two");
    let rec = Recording::start(&store, timeline, first, RunKind::Cluster, "cluster", None).unwrap();
    let meta = rec.finish(RunOutcome::default()).await;
    // As a crash leaves it: still "recording", by a process that is gone, last line half-written.
    let mut crashed = meta.clone();
    crashed.status = RunStatus::Recording;
    crashed.pid = dead_pid();
    write_meta(&dir.path().join(&meta.id), &crashed).unwrap();
    let path = dir.path().join(&meta.id).join(TIMELINE);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"seq\":99,\"ts_ns\":1,\"sour");
    std::fs::write(&path, text).unwrap();

    let listed = store.get(&meta.id).unwrap();
    assert_eq!(listed.status, RunStatus::Interrupted);
    assert_eq!(store.events(&meta.id).unwrap().1.len(), 2);
    // A bad line in the middle is not a crash's doing: it is an error naming the line.
    std::fs::write(&path, "garbage\n{}\n").unwrap();
    let err = store.events(&meta.id).unwrap_err().to_string();
    assert!(err.contains("line 1"), "{err}");
}

#[tokio::test]
async fn prune_deletes_the_oldest_finished_runs_first_never_one_recording() {
    let dir = tempfile::tempdir().unwrap();
    let store = RunStore::new(dir.path());
    let timeline = Arc::new(Timeline::new());
    let mut ids = Vec::new();
    for i in 0..3 {
        let first = note(&timeline, &"x".repeat(2000));
        let rec =
            Recording::start(&store, Arc::clone(&timeline), first, RunKind::Drill, &format!("d{i}"), None)
                .unwrap();
        ids.push(rec.finish(RunOutcome::default()).await.id);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await; // distinct start times
    }
    let live = Recording::start(&store, Arc::clone(&timeline), 0, RunKind::Cluster, "cluster", None).unwrap();
    let total = store.total_bytes().unwrap();
    let deleted = store.prune(total - 1).unwrap();
    assert_eq!(deleted, vec![ids[0].clone()], "only the oldest had to go");
    let deleted = store.prune(0).unwrap();
    assert_eq!(deleted, vec![ids[1].clone(), ids[2].clone()]);
    assert_eq!(store.list().unwrap().len(), 1, "the run being recorded stays");
    assert!(store.delete(&live.id()).unwrap_err().to_string().contains("still being recorded"));
    live.finish(RunOutcome::default()).await;
}

/// The pid of a process that has exited (and been reaped).
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

/// A real crash: `clusterlab up` (the CLI binary of this build) records its cluster run and is
/// SIGKILLed mid-run; the run is still listed, as interrupted, with the events that reached disk.
#[test]
fn a_lab_killed_mid_run_leaves_its_run_listed_as_interrupted() {
    use std::io::BufRead;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let broker = crate::supervisor::tests_broker_bin();
    let cli = broker.with_file_name("clusterlab");
    assert!(cli.is_file(), "{} missing: cargo build --workspace first", cli.display());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut up = std::process::Command::new(&cli)
        .args(["up", "--bind", &format!("127.0.0.1:{port}"), "--partitions", "1"])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--broker-bin")
        .arg(&broker)
        .env("XDG_DATA_HOME", dir.path()) // its current-lab.json too, not the user's
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = up.stdout.take().unwrap();
    let mut up = KillOnDrop(up);
    let mut ready = String::new();
    std::io::BufReader::new(stdout).read_line(&mut ready).unwrap();
    assert!(ready.contains("\"ready\""), "clusterlab up did not start: {ready:?}");
    let store = RunStore::new(dir.path().join("recent-runs"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let recorded = loop {
        let runs = store.list().unwrap();
        if let Some(r) = runs.iter().find(|r| r.events > 0) {
            break r.clone();
        }
        assert!(Instant::now() < deadline, "no events recorded within 30 s: {runs:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(recorded.status, RunStatus::Recording);
    up.0.kill().unwrap(); // SIGKILL: no chance to finish the run (its brokers die with it)
    up.0.wait().unwrap();
    let after = store.get(&recorded.id).unwrap();
    assert_eq!(after.status, RunStatus::Interrupted);
    let (_, events) = store.events(&recorded.id).unwrap();
    assert!(
        events.len() as u64 >= recorded.events,
        "{} events read, {} recorded",
        events.len(),
        recorded.events
    );
}

/// A child that is SIGKILLed if the test fails before it does (its brokers follow: PDEATHSIG).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
