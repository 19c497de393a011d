//! `clusterlab serve`: the lab protocol over HTTP and WebSocket, next to the built UI.
//!
//! | route              | what                                                              |
//! |--------------------|-------------------------------------------------------------------|
//! | `GET /api/ws`      | WebSocket: a state snapshot, then every event; commands in        |
//! | `POST /api/command`| one command (JSON `Request`), answered with its `Reply` event     |
//! | `GET /api/state`   | the current `LabState`                                            |
//! | `GET /*`           | the web UI (static files from `--ui-dir`)                         |
//!
//! Control needs the token whenever one is configured (always when bound beyond loopback):
//! `Authorization: Bearer <token>` or `?token=<token>`. Without it a client is a viewer: it
//! receives everything and may send only read-only commands — the workshop mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::lab::protocol::{LabEvent, LabFailure, Request};
use crate::lab::Lab;

/// Who may do what.
#[derive(Clone)]
pub struct Access {
    /// None: everyone on loopback controls the lab.
    pub token: Option<String>,
}

impl Access {
    fn may_control(&self, headers: &HeaderMap, query_token: Option<&str>) -> bool {
        let Some(expected) = &self.token else { return true };
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let matches = |given: Option<&str>| given.is_some_and(|g| token_eq(g, expected));
        // Both checked, whatever the first says: no early exit to time either.
        matches(bearer) | matches(query_token)
    }
}

/// Compares a presented token with the lab's in time that does not depend on where they first
/// differ, so a viewer on the workshop network cannot find the token byte by byte.
fn token_eq(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Lengths are not secret (tokens are generated at a fixed length); the bytes are.
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[derive(Clone)]
struct AppState {
    lab: Arc<Lab>,
    access: Access,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

pub fn router(lab: Arc<Lab>, access: Access, ui_dir: Option<PathBuf>) -> Router {
    let mut app = Router::new()
        .route("/api/ws", get(ws))
        .route("/api/command", post(command))
        .route("/api/state", get(state))
        .with_state(AppState { lab, access });
    if let Some(dir) = ui_dir {
        app = app.fallback_service(
            tower_http::services::ServeDir::new(&dir).append_index_html_on_directories(true),
        );
    }
    app
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: CancellationToken,
) -> crate::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| crate::LabError::Io { what: "serving the lab protocol".into(), source })
}

/// Refuses a non-loopback bind without a token: a workshop server must not hand out control.
pub fn check_bind(addr: SocketAddr, token: &Option<String>) -> Result<(), String> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(format!(
            "binding {addr} beyond loopback needs --token so that only the instructor controls the lab"
        ));
    }
    Ok(())
}

async fn state(State(app): State<AppState>) -> impl IntoResponse {
    Json(app.lab.state().await)
}

async fn command(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    Json(req): Json<Request>,
) -> Response {
    let control = app.access.may_control(&headers, q.token.as_deref());
    let reply = run(&app.lab, req, control).await;
    let status = match &reply {
        LabEvent::Reply { error: Some(e), .. } if e.code == "forbidden" => StatusCode::FORBIDDEN,
        _ => StatusCode::OK,
    };
    (status, Json(reply)).into_response()
}

async fn run(lab: &Arc<Lab>, req: Request, control: bool) -> LabEvent {
    if !control && !req.command.is_read_only() {
        let error = LabFailure::new("forbidden", "this viewer is read-only: control needs the lab's token");
        return LabEvent::Reply {
            id: req.id,
            ok: false,
            result: serde_json::Value::Null,
            error: Some(error),
        };
    }
    match lab.handle(req.command).await {
        Ok(result) => LabEvent::Reply { id: req.id, ok: true, result, error: None },
        Err(error) => {
            LabEvent::Reply { id: req.id, ok: false, result: serde_json::Value::Null, error: Some(error) }
        }
    }
}

async fn ws(
    State(app): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<TokenQuery>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let control = app.access.may_control(&headers, q.token.as_deref());
    upgrade.on_upgrade(move |socket| session(socket, app.lab, control))
}

/// One WebSocket client: first the state, then every event; its commands run one at a time.
async fn session(socket: WebSocket, lab: Arc<Lab>, control: bool) {
    let (mut tx, mut rx) = socket.split();
    let mut events = lab.subscribe();
    let hello = LabEvent::State { state: Box::new(lab.state().await) };
    if send(&mut tx, &hello).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => if send(&mut tx, &e).await.is_err() { return },
                // A slow viewer skips ahead; the next state snapshot brings it back in line.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            },
            incoming = rx.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let reply = match serde_json::from_str::<Request>(&text) {
                        Ok(req) => run(&lab, req, control).await,
                        Err(e) => LabEvent::Reply {
                            id: None,
                            ok: false,
                            result: serde_json::Value::Null,
                            error: Some(LabFailure::new("bad_request", format!("not a lab command: {e}"))),
                        },
                    };
                    if send(&mut tx, &reply).await.is_err() { return }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

async fn send(
    tx: &mut futures::stream::SplitSink<WebSocket, Message>,
    event: &LabEvent,
) -> Result<(), axum::Error> {
    let text = serde_json::to_string(event).unwrap_or_else(|e| {
        format!(
            "{{\"event\":\"reply\",\"ok\":false,\"error\":{{\"code\":\"internal\",\"message\":\"{e}\"}}}}"
        )
    });
    tx.send(Message::Text(text.into())).await
}

#[cfg(test)]
mod token_tests {
    use super::*;

    #[test]
    fn only_the_exact_token_grants_control() {
        let access = Access { token: Some("s3cret-token".into()) };
        let bearer = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", v.parse().unwrap());
            h
        };
        assert!(access.may_control(&bearer("Bearer s3cret-token"), None));
        assert!(access.may_control(&HeaderMap::new(), Some("s3cret-token")));
        for wrong in ["s3cret-toke", "s3cret-tokenX", "S3cret-token", ""] {
            assert!(!access.may_control(&bearer(&format!("Bearer {wrong}")), Some(wrong)), "{wrong:?}");
        }
        assert!(Access { token: None }.may_control(&HeaderMap::new(), None), "no token: everyone controls");
    }
}
