//! Bounded polling and unique names, shared by the node and cluster test binaries
//! (the cluster suite includes this file with `#[path]`).

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

/// Polls `check` until it returns `Some` or the deadline passes; `what` names the awaited condition.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    let mut last_err = None;
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
        if Instant::now() >= deadline {
            return Err(anyhow!("timed out after {timeout:?} waiting for {what}; last error: {last_err:?}"));
        }
        std::thread::sleep(Duration::from_millis(50)); // poll interval
    }
}

/// A name unique to this test run, so topics and groups never collide across cycles.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{:08x}-{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}
