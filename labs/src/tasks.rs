//! Background tasks a component owns: it keeps their handles and, when it stops, waits for them
//! (bounded), so nothing it started outlives it unnoticed.

use std::time::Duration;

use tokio::task::{JoinHandle, JoinSet};

/// How long a stop waits for its tasks. Every owned task ends within one poll or one node call
/// (3 s at most) of its stop signal; past this one is stuck, and is aborted.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(5);

/// Waits until every task in `tasks` has ended, at most [`STOP_WAIT`]; aborts what is left then.
pub(crate) async fn join_all(tasks: &mut JoinSet<()>, what: &str) {
    let all = async {
        while let Some(ended) = tasks.join_next().await {
            log_panic(ended, what);
        }
    };
    if tokio::time::timeout(STOP_WAIT, all).await.is_err() {
        tracing::warn!(left = tasks.len(), "{what} did not stop within {STOP_WAIT:?}; aborted");
        tasks.shutdown().await;
    }
}

/// Waits until `task` has ended, at most [`STOP_WAIT`]; aborts it then.
pub(crate) async fn join(mut task: JoinHandle<()>, what: &str) {
    match tokio::time::timeout(STOP_WAIT, &mut task).await {
        Ok(ended) => log_panic(ended, what),
        Err(_) => {
            tracing::warn!("{what} did not stop within {STOP_WAIT:?}; aborted");
            task.abort();
        }
    }
}

/// A panicked task already printed its panic; this ties it to the component that owned it.
fn log_panic(ended: Result<(), tokio::task::JoinError>, what: &str) {
    if let Err(e) = ended {
        if e.is_panic() {
            tracing::warn!(error = %e, "{what} panicked");
        }
    }
}
