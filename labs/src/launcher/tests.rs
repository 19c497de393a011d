//! The launcher against `sh` children: ready lines, stops, stderr tails, kill on drop.

use super::*;

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

#[test]
fn ready_line_then_graceful_stop() {
    let (child, ready) = spawn(
        Launch::new("sh", sh("trap 'exit 3' TERM; echo noise; echo READY 7; while :; do sleep 0.05; done")),
        |l| l.strip_prefix("READY ").map(String::from),
    )
    .unwrap();
    assert_eq!(child.expect_ready(ready, Duration::from_secs(10)).unwrap(), "7");
    assert_eq!(child.stop(Duration::from_secs(10)).unwrap(), Some(3));
    assert!(!child.signal(libc::SIGKILL), "a reaped child is never signalled");
}

#[test]
fn ending_before_ready_quotes_the_stderr_tail() {
    let (child, ready) = spawn(Launch::new("sh", sh("echo 'bad config' >&2; exit 2")), |_| Some(())).unwrap();
    let err = child.expect_ready(ready, Duration::from_secs(10)).unwrap_err().to_string();
    assert!(err.contains("ended before it was ready (exit status 2)") && err.contains("bad config"), "{err}");
}

#[test]
fn no_ready_line_in_time_kills_it_and_drop_kills_a_running_child() {
    let (child, ready) =
        spawn(Launch::new("sh", sh("echo waiting >&2; exec sleep 30")), |_| None::<()>).unwrap();
    let err = child.expect_ready(ready, Duration::from_millis(300)).unwrap_err().to_string();
    assert!(err.contains("no ready line") || err.contains("ready line; it was killed"), "{err}");
    assert!(err.contains("waiting"), "{err}");
    assert_eq!(child.exit().map(|e| e.code), Some(None), "killed by a signal");

    let (child, _ready) = spawn(Launch::new("sh", sh("exec sleep 30")), |_| None::<()>).unwrap();
    let (other, exit) = (child.clone(), Arc::clone(&child.0.exit));
    drop(child);
    assert!(lock(&exit.0).is_none(), "a clone keeps it running");
    drop(other);
    let status = lock(&exit.0).as_ref().map(|e| e.status.clone());
    assert!(
        status.as_deref().is_some_and(|s| s.contains("SIGKILL")),
        "dropping the last handle kills: {status:?}"
    );
}
