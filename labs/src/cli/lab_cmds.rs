//! `clusterlab up | serve | status | fault | export`: a long-running lab and commands to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use labs::lab::protocol::{ClusterSettings, Command, LabEvent, LabState, Request};
use labs::lab::{Lab, LabConfig};
use labs::server::{self, Access};
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

pub struct ServeArgs {
    pub bind: SocketAddr,
    pub token: Option<String>,
    pub ui_dir: Option<PathBuf>,
    pub config: LabConfig,
    /// `up`: start this cluster at once; `serve`: None (the UI starts it).
    pub start: Option<ClusterSettings>,
}

impl ServeArgs {
    pub fn new(
        server: super::args::ServerFlags,
        config: LabConfig,
        start: Option<ClusterSettings>,
    ) -> ServeArgs {
        ServeArgs { bind: server.bind, token: server.token, ui_dir: server.ui_dir, config, start }
    }
}

/// Runs a lab until Ctrl-C / SIGTERM, serving the protocol; prints one ready line.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    server::check_bind(args.bind, &args.token).map_err(anyhow::Error::msg)?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let lab = Lab::new(args.config);
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("binding the lab server to {}", args.bind))?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    let app = server::router(Arc::clone(&lab), Access { token: args.token.clone() }, args.ui_dir.clone());
    let served = tokio::spawn(server::serve(listener, app, stop.clone()));
    let mut bootstrap = None;
    if let Some(settings) = args.start {
        match lab.start_cluster(settings).await {
            Ok(b) => bootstrap = Some(b),
            Err(e) => {
                lab.close().await;
                bail!("{}", e.message);
            }
        }
    }
    let lab_url = format!("http://{addr}");
    let record = serde_json::json!({ "lab": lab_url, "pid": std::process::id() });
    let file = super::current_lab_file();
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(&file, record.to_string());
    println!(
        "{}",
        serde_json::json!({
            "event": "ready",
            "bootstrap": bootstrap,
            "lab": lab_url,
            "ui": args.ui_dir.as_ref().map(|_| lab_url.clone())
        })
    );
    tokio::select! {
        _ = sigterm.recv() => {}
        _ = sigint.recv() => {}
    }
    eprintln!("stopping the lab: every node gets SIGTERM");
    lab.close().await;
    stop.cancel();
    let _ = served.await;
    let _ = std::fs::remove_file(&file);
    Ok(())
}

/// The lab a command talks to: `--lab URL` or the one `up` recorded.
fn lab_addr(explicit: Option<String>) -> anyhow::Result<SocketAddr> {
    let url = match explicit {
        Some(u) => u,
        None => {
            let file = super::current_lab_file();
            let text = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "no running lab recorded in {} (start one with `clusterlab up`, or pass --lab)",
                    file.display()
                )
            })?;
            let v: serde_json::Value = serde_json::from_str(&text)?;
            v["lab"].as_str().unwrap_or_default().to_string()
        }
    };
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .with_context(|| format!("'{url}' is not a lab address like http://127.0.0.1:7300"))
}

/// Sends one command to a running lab and returns its result (or the lab's error).
pub async fn send(lab: Option<String>, command: Command) -> anyhow::Result<serde_json::Value> {
    let addr = lab_addr(lab)?;
    let body = serde_json::to_value(Request { id: Some(1), command })?;
    let reply =
        labs::node_client::post_json(addr, "/api/command", &body).await.context("talking to the lab")?;
    match serde_json::from_value::<LabEvent>(reply)? {
        LabEvent::Reply { ok: true, result, .. } => Ok(result),
        LabEvent::Reply { error: Some(e), .. } => bail!("{}: {}", e.code, e.message),
        other => bail!("unexpected answer {other:?}"),
    }
}

/// `export`: converts a saved JSON Lines timeline (`--from`), or has the running lab write its
/// own; prints every file written.
pub async fn export(e: super::args::ExportArgs) -> anyhow::Result<()> {
    if let Some(file) = e.from {
        let reader = std::io::BufReader::new(
            std::fs::File::open(&file).with_context(|| format!("opening {}", file.display()))?,
        );
        let events = labs::timeline::export::read_jsonl(reader)?;
        for f in labs::lab::export::write(&events, &e.format, &e.dir, None, "Cluster Lab run")? {
            println!("{}", f.display());
        }
        return Ok(());
    }
    // The lab resolves paths against its own working directory: send an absolute one.
    let dir = std::path::absolute(&e.dir)?;
    let command = Command::Export { format: e.format, dir: Some(dir.display().to_string()) };
    let result = send(e.lab.lab, command).await?;
    for f in result["files"].as_array().into_iter().flatten() {
        println!("{}", f.as_str().unwrap_or_default());
    }
    Ok(())
}

pub async fn status(lab: Option<String>) -> anyhow::Result<()> {
    let state: LabState = serde_json::from_value(send(lab, Command::Snapshot).await?)?;
    if !state.running {
        println!("no cluster running");
        return Ok(());
    }
    println!("bootstrap: {}", state.bootstrap.as_deref().unwrap_or("-"));
    for n in &state.nodes {
        println!(
            "node {:>2}  {:<8} pid {:<7} kafka {:<21} cpu {:>5.1}%  mem {:>6} MiB",
            n.id,
            n.state,
            n.pid.map(|p| p.to_string()).unwrap_or("-".into()),
            n.kafka,
            n.cpu_percent,
            n.memory_bytes / (1 << 20)
        );
    }
    for r in &state.raft {
        let groups = r.raft.iter().flat_map(|c| &c.groups);
        for g in groups.filter(|g| g.role == broker::telemetry::wire::Role::Leader) {
            let applied = g.applied_index.map_or("null".to_string(), |i| i.to_string());
            println!("  {:<20} leader node {} term {} applied {applied}", g.group, r.node, g.term);
        }
    }
    if let Some(w) = &state.workload {
        println!("workload: {}", serde_json::to_string(w)?);
    }
    Ok(())
}
