//! Talking to a broker node's loopback HTTP endpoint: JSON calls and the live event stream.
//!
//! Plain HTTP/1.1 over a TcpStream: the endpoint is ours, on loopback, and speaks a tiny subset
//! (GET/POST, Content-Length or close-delimited bodies, SSE). A client library would bring a TLS
//! stack and a connection pool we do not need.

pub mod events;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::LabError;

/// Bound on one call: a paused node must not hang the lab.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// `GET path` and parse the JSON body.
pub async fn get_json(addr: SocketAddr, path: &str) -> crate::Result<serde_json::Value> {
    call(addr, "GET", path, None, CALL_TIMEOUT).await
}

/// `GET path` with its own bound: a poll that runs every few hundred milliseconds must not
/// wait seconds on a paused node.
pub async fn get_json_within(
    addr: SocketAddr,
    path: &str,
    limit: Duration,
) -> crate::Result<serde_json::Value> {
    call(addr, "GET", path, None, limit).await
}

/// `POST path` with a JSON body; parse the JSON answer.
pub async fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> crate::Result<serde_json::Value> {
    call(addr, "POST", path, Some(body.to_string()), CALL_TIMEOUT).await
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<String>,
    limit: Duration,
) -> crate::Result<serde_json::Value> {
    let fail = |detail: String| LabError::Telemetry { addr: addr.to_string(), detail };
    let work = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| fail(format!("connect: {e}")))?;
        let body = body.unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.map_err(|e| fail(format!("send {method} {path}: {e}")))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| fail(format!("read {method} {path}: {e}")))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| fail(format!("{method} {path}: no HTTP header end")))?;
        let status = head.split_whitespace().nth(1).unwrap_or("?");
        if status != "200" {
            return Err(fail(format!("{method} {path} answered {status}: {}", body.trim())));
        }
        serde_json::from_str(body).map_err(|e| fail(format!("{method} {path}: body is not JSON: {e}")))
    };
    tokio::time::timeout(limit, work).await.map_err(|_| LabError::Timeout {
        what: format!("{method} {path} on {addr}"),
        secs: limit.as_secs_f64(),
    })?
}
