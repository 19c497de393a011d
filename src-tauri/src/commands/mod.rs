//! IPC commands: thin adapters from the UI's transport (ui/src/api/tauri.ts) to `Lab`.

pub mod lab;
