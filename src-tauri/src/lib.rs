//! Cluster Lab desktop shell: the web UI (ui/dist) in a Tauri window, talking to one
//! `labs::lab::Lab` over IPC. Everything lab-specific lives in `labs`; this crate only adapts.
//!
//! Lifecycle rule: no broker may outlive the window. Closing the window, app exit and
//! SIGINT/SIGTERM/SIGHUP (e.g. a WebDriver ending its session) all go through `Shell::close`.
//!
//! ## Dependency direction
//!
//! A module uses only modules on later lines; `scripts/module-cycles.py` (CI) checks every use
//! between top-level modules against this list:
//!
//! 1. `commands` (the IPC handlers, reaching the lab through [`Shell`] in this file)
//! 2. `config`
//!
//! This file uses both, and `labs` (through it, `broker`'s wire types). Nothing depends on this
//! crate.

mod commands;
mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use labs::lab::Lab;
use tauri::{Manager, RunEvent, WindowEvent};

/// Longest we hold the window open while the cluster stops (brokers get SIGTERM, then SIGKILL).
const CLOSE_BOUND: Duration = Duration::from_secs(20);

/// Managed state: the lab, and whether we are shutting down (then no new commands run).
pub struct Shell {
    pub lab: Arc<Lab>,
    pub closing: AtomicBool,
    /// Set to true once `close` has stopped the lab: the shell's long-lived tasks (the signal
    /// watcher, the event streams to the UI) end on it. Not earlier: while the cluster stops,
    /// the window still shows it and a signal still takes the signal path.
    closed: tokio::sync::watch::Sender<bool>,
}

impl Shell {
    fn new(lab: Arc<Lab>) -> Shell {
        Shell { lab, closing: AtomicBool::new(false), closed: tokio::sync::watch::Sender::new(false) }
    }

    /// Resolves once `close` has finished (at once if it has).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            // An error means the shell is gone, which is closed too.
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Stops the cluster, bounded. Idempotent: `Lab::close` takes what is running.
    async fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        tracing::info!("stopping the cluster before exit");
        let stopped = tokio::time::timeout(CLOSE_BOUND, self.lab.close()).await;
        self.closed.send_replace(true);
        if stopped.is_err() {
            return tracing::warn!(
                "the lab did not close within {CLOSE_BOUND:?}; \
                 exiting anyway (brokers die with us via PDEATHSIG)"
            );
        }
        tracing::info!("lab closed");
    }
}

pub fn run() {
    // GTK panics without a display; say what to do instead.
    if let Err(message) = config::check_display() {
        eprintln!("{message}");
        std::process::exit(2);
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .try_init();
    // Resolve the broker and drills before opening a window, so a missing one is a clear message.
    let (broker_bin, drills_dir) = match config::locate() {
        Ok(found) => found,
        Err(message) => {
            eprintln!("clusterlab desktop: {message}");
            std::process::exit(2);
        }
    };

    let app = tauri::Builder::default()
        // Window size and position, restored at start and saved as they change (config dir).
        .plugin(tauri_plugin_window_state::Builder::default().build())
        .setup(move |app| {
            let lab = new_lab(broker_bin, drills_dir);
            if config::start_on_launch() {
                spawn_start(Arc::clone(&lab));
            }
            app.manage(Shell::new(lab));
            spawn_signal_handler(app.handle().clone());
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![commands::lab::lab_command, commands::lab::lab_subscribe])
        .on_window_event(on_window_event)
        .build(tauri::generate_context!())
        .expect("building the Cluster Lab window");
    app.run(on_run_event);
}

/// The lab, in the same places as the CLI's (labs::paths): `clusterlab runs list` shows the
/// window's runs, and both start from the same remembered settings.
fn new_lab(broker_bin: std::path::PathBuf, drills_dir: std::path::PathBuf) -> Arc<Lab> {
    let data = labs::paths::data_dir();
    let lab_config = labs::lab::LabConfig {
        broker_bin,
        data_root: None,
        // Lessons sit beside the drills (source tree and package alike).
        lessons_dir: labs::paths::lessons_dir(None).unwrap_or_else(|_| drills_dir.with_file_name("lessons")),
        drills_dir,
        export_dir: data.join("exports"),
        runs_dir: None,
        preferences_file: None,
    }
    .remembering();
    tracing::info!(data = %data.display(), "clusterlab desktop");
    // Lab::new spawns its forwarders with tokio::spawn: it needs the runtime's context.
    tauri::async_runtime::block_on(async move { Lab::new(lab_config) })
}

/// Closing the window keeps it until the cluster is down, then exits the whole app.
fn on_window_event(window: &tauri::Window, event: &WindowEvent) {
    if let WindowEvent::CloseRequested { api, .. } = event {
        api.prevent_close();
        let app = window.app_handle().clone();
        if app.state::<Shell>().closing.swap(true, Ordering::SeqCst) {
            return; // already closing; a second click changes nothing
        }
        // Ends by itself: the close is bounded (CLOSE_BOUND), then the app exits.
        tauri::async_runtime::spawn(async move {
            app.state::<Shell>().close().await;
            app.exit(0);
        });
    }
}

/// Any other way out (app.exit, last window gone): stop the cluster before the process ends.
fn on_run_event(app: &tauri::AppHandle, event: RunEvent) {
    if let RunEvent::Exit = event {
        let shell = app.state::<Shell>();
        // The window and signal paths have closed it already (closing is set).
        if !shell.closing.load(Ordering::SeqCst) {
            tauri::async_runtime::block_on(shell.close());
        }
    }
}

/// `--start`: the window opens on a running three-node cluster with the default settings (the
/// README's run command uses it). The UI learns of it like of any start: from the event stream.
fn spawn_start(lab: Arc<Lab>) {
    // Ends by itself: the start is bounded by the lab (every node's ready wait has a timeout).
    tauri::async_runtime::spawn(async move {
        let start = labs::lab::protocol::Command::StartCluster { settings: Default::default() };
        match lab.handle(start).await {
            Ok(_) => tracing::info!("cluster started on launch"),
            // The window shows the failure too (as a lab event); the log says it for terminals.
            Err(e) => tracing::error!(code = %e.code, "starting the cluster on launch failed: {}", e.message),
        }
    });
}

/// Signals would kill us before the window's close handler runs; stop the cluster first.
#[cfg(unix)]
fn spawn_signal_handler(app: tauri::AppHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    // Waits for a signal until the shell has closed (see `Shell::closed`).
    let closed = app.state::<Shell>().closed();
    tauri::async_runtime::spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            tracing::warn!("could not install signal handlers");
            return;
        };
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
            _ = hup.recv() => {},
            _ = closed => return, // closed another way: nothing left to stop
        }
        tracing::info!("signal: stopping the cluster");
        app.state::<Shell>().close().await;
        app.exit(0);
    });
}

#[cfg(not(unix))]
fn spawn_signal_handler(_app: tauri::AppHandle) {}
