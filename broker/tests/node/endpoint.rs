//! The node's loopback HTTP endpoint, through the lab's one node client (`labs::node_client`,
//! decision 41). Blocking wrappers: the tests are synchronous or run their own runtime, so each
//! call runs on a short-lived thread with a runtime of its own (never nested in the caller's).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, Result};
use labs::node_client;
use serde::de::DeserializeOwned;

/// Bound on one call; generous for a loaded CI machine.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn block_on<T: Send>(work: impl Future<Output = labs::Result<T>> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(work).map_err(anyhow::Error::from)
        })
        .join()
        .map_err(|_| anyhow!("the HTTP call's thread panicked"))?
    })
}

/// `GET path`, read into the type the node wrote it from; a status other than 2xx is an error
/// quoting the node's answer.
pub fn get<T: DeserializeOwned + Send>(addr: SocketAddr, path: &str) -> Result<T> {
    block_on(node_client::get(addr, path, CALL_TIMEOUT))
}

/// `GET path` as text (`/health` answers `ok`, not JSON).
pub fn get_text(addr: SocketAddr, path: &str) -> Result<String> {
    block_on(node_client::get_text(addr, path, CALL_TIMEOUT))
}

/// `POST path` with a JSON body; the answer as text. A status other than 2xx is an error.
pub fn post(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Result<String> {
    block_on(node_client::post_text(addr, path, Some(body.to_string()), CALL_TIMEOUT))
}
