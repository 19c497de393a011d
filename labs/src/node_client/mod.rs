//! Talking to a broker node's loopback HTTP endpoint: JSON calls and the live event stream.
//!
//! The lab's one HTTP client for nodes (the supervisor, the lab and the benchmarks use it; three
//! hand-written ones came before, issue 12), on `reqwest` without TLS. No connection is kept
//! between calls: a node may be paused, killed or restarted between two of them, and tests run
//! many short-lived runtimes that a pooled connection would outlive.

pub mod events;
mod sse;
pub mod typed;

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Duration;

use crate::LabError;

static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .no_proxy() // loopback only, whatever HTTP_PROXY says
        .pool_max_idle_per_host(0)
        .build()
        .expect("an HTTP client without TLS always builds")
});

/// Bound on one call: a paused node must not hang the lab.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET path` and parse the JSON body.
pub async fn get_json(addr: SocketAddr, path: &str) -> crate::Result<serde_json::Value> {
    get_json_within(addr, path, CALL_TIMEOUT).await
}

/// `GET path` with its own bound: a poll that runs every few hundred milliseconds must not
/// wait seconds on a paused node.
pub async fn get_json_within(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> crate::Result<serde_json::Value> {
    let text = call(addr, reqwest::Method::GET, path, None, limit).await?;
    parse(addr, "GET", path, &text)
}

/// `POST path` with a JSON body; parse the JSON answer.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> crate::Result<serde_json::Value> {
    let text = call(addr, reqwest::Method::POST, path, Some(body.to_string()), CALL_TIMEOUT).await?;
    parse(addr, "POST", path, &text)
}

/// `POST path` with an optional JSON body, bounded by `limit`; the answer's body as text.
pub async fn post_text(
    addr: SocketAddr,
    path: &str,
    body: Option<String>,
    limit: Duration,
) -> crate::Result<String> {
    call(addr, reqwest::Method::POST, path, body, limit).await
}

/// `GET path`, bounded by `limit`; the answer's body as text (`/health` answers `ok`).
pub async fn get_text(addr: SocketAddr, path: &str, limit: Duration) -> crate::Result<String> {
    call(addr, reqwest::Method::GET, path, None, limit).await
}

/// `GET path` read into the type the node wrote it from (`broker::telemetry::wire` lists them).
pub async fn get<T: serde::de::DeserializeOwned>(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> crate::Result<T> {
    let text = call(addr, reqwest::Method::GET, path, None, limit).await?;
    parse(addr, "GET", path, &text)
}

fn parse<T: serde::de::DeserializeOwned>(
    addr: SocketAddr,
    method: &str,
    path: &str,
    text: &str,
) -> crate::Result<T> {
    serde_json::from_str(text).map_err(|e| LabError::Telemetry {
        addr: addr.to_string(),
        detail: format!("{method} {path}: not the answer expected: {e}"),
    })
}

/// One request; a status other than 2xx is an error quoting the body (the broker says why there).
async fn call(
    addr: SocketAddr,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
    limit: Duration,
) -> crate::Result<String> {
    let fail = |detail: String| LabError::Telemetry { addr: addr.to_string(), detail };
    let what = format!("{method} {path}");
    let mut request = CLIENT.request(method, format!("http://{addr}{path}"));
    if let Some(body) = body {
        request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
    }
    let work = async {
        let answer = request.send().await.map_err(|e| fail(format!("{what}: {e}")))?;
        let status = answer.status();
        let text = answer.text().await.map_err(|e| fail(format!("{what}: reading the answer: {e}")))?;
        if !status.is_success() {
            return Err(fail(format!("{what} answered {}: {}", status.as_u16(), text.trim())));
        }
        Ok(text)
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| LabError::Timeout { what: format!("{what} on {addr}"), secs: limit.as_secs_f64() })?
}
