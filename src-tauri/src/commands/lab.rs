//! `lab_command {request}` and `lab_subscribe {channel}`, exactly what ui/src/api/tauri.ts invokes.

use std::sync::atomic::Ordering;

use labs::lab::protocol::{LabEvent, LabFailure, Request};
use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use tokio::sync::broadcast::error::RecvError;

use crate::Shell;

/// A shell-level failure (the invoke rejects with `{code, message}`); lab failures are Replies.
#[derive(Debug, Serialize)]
pub struct CommandError {
    pub code: String,
    pub message: String,
}

impl CommandError {
    fn new(code: &str, message: impl Into<String>) -> CommandError {
        CommandError { code: code.into(), message: message.into() }
    }
}

/// Runs one protocol request; answers the `LabEvent::Reply` the WebSocket transport would send.
#[tauri::command]
pub async fn lab_command(
    shell: State<'_, Shell>,
    request: serde_json::Value,
) -> Result<LabEvent, CommandError> {
    if shell.closing.load(Ordering::SeqCst) {
        // A cluster started now could outlive the window.
        return Err(CommandError::new("closing", "the app is closing"));
    }
    // Parse here rather than in the signature, so a bad request is a Reply with bad_request
    // (which the UI shows) and keeps its id.
    let id = request.get("id").and_then(serde_json::Value::as_u64);
    let request: Request = match serde_json::from_value(request) {
        Ok(r) => r,
        Err(e) => return Ok(reply(id, Err(LabFailure::new("bad_request", e.to_string())))),
    };
    Ok(reply(request.id, shell.lab.handle(request.command).await))
}

fn reply(id: Option<u64>, result: Result<serde_json::Value, LabFailure>) -> LabEvent {
    match result {
        Ok(result) => LabEvent::Reply { id, ok: true, result, error: None },
        Err(e) => LabEvent::Reply { id, ok: false, result: serde_json::Value::Null, error: Some(e) },
    }
}

/// Sends a state snapshot, then every LabEvent until the channel fails. Returns at once (the UI
/// marks the connection open when this invoke resolves); a task does the streaming.
#[tauri::command]
pub async fn lab_subscribe(shell: State<'_, Shell>, channel: Channel<LabEvent>) -> Result<(), CommandError> {
    let lab = shell.lab.clone();
    // Subscribe before the snapshot so nothing between the two is lost.
    let mut events = lab.subscribe();
    let snapshot = LabEvent::State { state: Box::new(lab.state().await) };
    channel.send(snapshot).map_err(|e| CommandError::new("ipc", e.to_string()))?;
    // Ends when the UI's channel fails or the shell has closed (the lab's sender outlives it).
    let closed = shell.closed();
    tauri::async_runtime::spawn(async move {
        tokio::pin!(closed);
        loop {
            let received = tokio::select! {
                r = events.recv() => r,
                _ = &mut closed => return,
            };
            let event = match received {
                Ok(event) => event,
                // Too slow: skip ahead to a fresh snapshot, as the lab's own contract says.
                Err(RecvError::Lagged(_)) => LabEvent::State { state: Box::new(lab.state().await) },
                Err(RecvError::Closed) => return,
            };
            if channel.send(event).is_err() {
                return;
            }
        }
    });
    Ok(())
}
