//! The few HTTP calls the supervisor makes to a node (faults, state), over loopback.
//!
//! HTTP/1.0 with `Connection: close`: the server then answers with a plain body (no chunked
//! encoding) and closes, so "read to EOF" is the whole response and no client library is needed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::{LabError, Result};

const TIMEOUT: Duration = Duration::from_secs(5);
/// /state of a busy node is tens of KiB; this only guards against a runaway answer.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// Sends one request and returns the status code and body; a non-2xx status is an error that
/// quotes the body (the broker puts the reason there).
pub(crate) async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    json_body: Option<&str>,
) -> Result<String> {
    let err = |detail: String| LabError::Telemetry { addr: addr.to_string(), detail };
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| err(format!("connect: {e}")))?;
        let body = json_body.unwrap_or("");
        let content = if json_body.is_some() {
            format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len())
        } else if method == "POST" {
            "Content-Length: 0\r\n".to_string()
        } else {
            String::new()
        };
        let req =
            format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n{content}\r\n{body}");
        s.write_all(req.as_bytes()).await.map_err(|e| err(format!("send {method} {path}: {e}")))?;
        let mut raw = Vec::new();
        s.take(MAX_RESPONSE)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| err(format!("read {method} {path}: {e}")))?;
        Ok::<_, LabError>(raw)
    };
    let raw = tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| LabError::Timeout {
        what: format!("{method} {path} on {addr}"),
        secs: TIMEOUT.as_secs_f64(),
    })??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| err(format!("{method} {path}: no HTTP header in the answer")))?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| err(format!("{method} {path}: bad status line {:?}", head.lines().next())))?;
    if !(200..300).contains(&status) {
        return Err(err(format!("{method} {path} answered {status}: {}", body.trim())));
    }
    Ok(body.to_string())
}

/// GET returning JSON.
pub(crate) async fn get_json(addr: SocketAddr, path: &str) -> Result<serde_json::Value> {
    let body = call(addr, "GET", path, None).await?;
    serde_json::from_str(&body)
        .map_err(|source| LabError::Json { what: format!("reading GET {path} from {addr}"), source })
}
