//! Starts, kills, stops and restarts the three `clusterlab-broker` processes of a cluster, and
//! reads their `/state` and `/digest` to wait for cluster-level conditions.
//!
//! Every process is owned by a `Proc` and killed by PID when dropped (also when a test panics).
//! Nothing sleeps to synchronise: start-up waits for the ready line, stops poll the exit status,
//! cluster conditions poll `/state` with a deadline, and every wait names what it waited for.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::links::Links;

pub const BROKER_BIN: &str = env!("CARGO_BIN_EXE_clusterlab-broker");
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Elections, catch-up and convergence on a loaded 2-core machine.
pub const CLUSTER_TIMEOUT: Duration = Duration::from_secs(30);
const STDERR_TAIL_BYTES: usize = 256 * 1024;

/// Captured stderr of a broker process.
#[derive(Clone, Default)]
pub struct Tail(Arc<Mutex<String>>, Arc<AtomicBool>);

impl Tail {
    pub fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn collect<R: std::io::Read + Send + 'static>(stream: R, label: String) -> Tail {
        let tail = Tail::default();
        let writer = tail.clone();
        let echo = std::env::var_os("BROKER_ECHO").is_some();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[{label}] {line}");
                }
                let mut s = writer.0.lock().unwrap_or_else(|p| p.into_inner());
                s.push_str(&line);
                s.push('\n');
                if s.len() > STDERR_TAIL_BYTES {
                    let mut cut = s.len() - STDERR_TAIL_BYTES;
                    while !s.is_char_boundary(cut) {
                        cut += 1;
                    }
                    s.drain(..cut);
                }
            }
            writer.1.store(true, Ordering::Release);
        });
        tail
    }
}

/// One running broker process; SIGKILLed by PID on drop.
pub struct Proc {
    pub pid: u32,
    child: Option<Child>,
    stderr: Tail,
}

impl Proc {
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().map(|c| matches!(c.try_wait(), Ok(None))).unwrap_or(false)
    }

    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        let rc = unsafe { libc::kill(self.pid as libc::pid_t, sig) };
        if rc != 0 {
            bail!("kill({}, {sig}) failed: {}", self.pid, std::io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().ok_or_else(|| anyhow!("pid {} already reaped", self.pid))?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "broker pid {} did not exit within {timeout:?}; stderr tail:\n{}",
                    self.pid,
                    tail_lines(&self.stderr.text(), 60)
                );
            }
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.text()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill(); // SIGKILL by PID
            }
            let _ = child.wait();
        }
    }
}

pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A node of the cluster: fixed ports and data dir, and its process when running.
pub struct Node {
    pub id: i32,
    pub kafka: SocketAddr,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    pub data_dir: PathBuf,
    /// Where this node dials each peer's Raft listener (the listener itself, or a link proxy).
    pub peer_raft: BTreeMap<i32, SocketAddr>,
    pub proc: Option<Proc>,
    /// stderr of the previous process of this node (kept for failure messages).
    pub last_stderr: String,
}

impl Node {
    fn command(&self, peers: &[(i32, SocketAddr)]) -> Command {
        let mut cmd = Command::new(BROKER_BIN);
        cmd.arg("--node-id")
            .arg(self.id.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--kafka-listen")
            .arg(self.kafka.to_string())
            .arg("--http-listen")
            .arg(self.http.to_string())
            .arg("--raft-listen")
            .arg(self.raft.to_string())
            .args([
                "--election-timeout-min-ms",
                "300",
                "--election-timeout-max-ms",
                "600",
                "--heartbeat-interval-ms",
                "100",
            ])
            .args(["--replication-factor", "3", "--default-partitions", "3"]);
        for (id, kafka) in peers {
            cmd.arg("--peer").arg(format!("{id}={},{kafka}", self.peer_raft[id]));
        }
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().map(|p| p.is_running()).unwrap_or(false)
    }

    pub fn stderr(&self) -> String {
        self.proc.as_ref().map(|p| p.stderr()).unwrap_or_else(|| self.last_stderr.clone())
    }
}

/// A spawned process whose ready line has not been seen yet.
struct Starting {
    proc: Proc,
    lines: mpsc::Receiver<String>,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub links: Option<Links>,
    _dirs: Vec<tempfile::TempDir>,
}

fn free_ports(n: usize) -> Result<(Vec<TcpListener>, Vec<u16>)> {
    let mut ls = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind("127.0.0.1:0")?;
        ports.push(l.local_addr()?.port());
        ls.push(l);
    }
    Ok((ls, ports))
}

impl Cluster {
    /// Starts `n` nodes with direct Raft links and waits for a controller leader known by all.
    pub fn start(n: usize) -> Result<Cluster> {
        Self::start_opts(n, false)
    }

    /// Like `start`, but every directed Raft link i->j goes through a test-local proxy.
    pub fn start_with_links(n: usize) -> Result<Cluster> {
        Self::start_opts(n, true)
    }

    fn start_opts(n: usize, with_links: bool) -> Result<Cluster> {
        let mut last = None;
        for attempt in 0..3 {
            let (mut c, reserved) = Self::configure(n, with_links)?;
            drop(reserved); // free the reserved ports just before the brokers bind them
            let ids: Vec<i32> = c.ids();
            match c.start_nodes(&ids) {
                Ok(()) => {
                    c.wait_controller(CLUSTER_TIMEOUT)?;
                    return Ok(c);
                }
                Err(e) if format!("{e:#}").contains("in use") => {
                    eprintln!("cluster start attempt {attempt}: a reserved port was taken, retrying: {e:#}");
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap())
    }

    /// Allocates ports, dirs (and proxies) without starting anything. The returned listeners hold
    /// the ports until dropped.
    pub fn configure(n: usize, with_links: bool) -> Result<(Cluster, Vec<TcpListener>)> {
        let (reserved, ports) = free_ports(3 * n)?;
        let addr = |p: u16| -> SocketAddr { SocketAddr::from(([127, 0, 0, 1], p)) };
        let mut dirs = Vec::new();
        let mut nodes = Vec::new();
        for i in 0..n {
            let dir =
                tempfile::Builder::new().prefix(&format!("clusterlab-cluster-n{}-", i + 1)).tempdir()?;
            nodes.push(Node {
                id: i as i32 + 1,
                kafka: addr(ports[3 * i]),
                http: addr(ports[3 * i + 1]),
                raft: addr(ports[3 * i + 2]),
                data_dir: dir.path().to_path_buf(),
                peer_raft: BTreeMap::new(),
                proc: None,
                last_stderr: String::new(),
            });
            dirs.push(dir);
        }
        let raft: BTreeMap<i32, SocketAddr> = nodes.iter().map(|n| (n.id, n.raft)).collect();
        let links = if with_links { Some(Links::start(&raft)?) } else { None };
        for node in &mut nodes {
            for (&j, &r) in &raft {
                if j != node.id {
                    let target = match &links {
                        Some(l) => l.addr(node.id, j),
                        None => r,
                    };
                    node.peer_raft.insert(j, target);
                }
            }
        }
        Ok((Cluster { nodes, links, _dirs: dirs }, reserved))
    }

    pub fn ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: i32) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    fn spawn(&mut self, id: i32) -> Result<Starting> {
        let peers: Vec<(i32, SocketAddr)> =
            self.nodes.iter().filter(|n| n.id != id).map(|n| (n.id, n.kafka)).collect();
        let node = self.node_mut(id);
        if node.is_running() {
            bail!("node {id} is already running");
        }
        if let Some(old) = node.proc.take() {
            node.last_stderr = old.stderr();
        }
        let mut child = node.command(&peers).spawn().with_context(|| format!("spawning {BROKER_BIN}"))?;
        let pid = child.id();
        let stderr = Tail::collect(child.stderr.take().expect("piped"), format!("node{id} pid {pid}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        Ok(Starting { proc: Proc { pid, child: Some(child), stderr }, lines: rx })
    }

    fn await_ready(&mut self, id: i32, mut s: Starting) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match s.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let Ok(v) = serde_json::from_str::<Value>(&line) else { continue };
                    if v["event"] != "ready" {
                        continue;
                    }
                    if v["node_id"].as_i64() != Some(id as i64) {
                        bail!("node {id} ready line names another node: {line}");
                    }
                    self.node_mut(id).proc = Some(s.proc);
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = s.proc.wait_exit(EXIT_TIMEOUT)?;
                    bail!(
                        "node {id} (pid {}) exited ({status}) before its ready line; stderr:\n{}",
                        s.proc.pid,
                        tail_lines(&s.proc.stderr(), 40)
                    );
                }
            }
            if let Some(status) = s.proc.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!(
                    "node {id} (pid {}) exited ({status}) before its ready line; stderr:\n{}",
                    s.proc.pid,
                    tail_lines(&s.proc.stderr(), 40)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "node {id} (pid {}) printed no ready line within {READY_TIMEOUT:?}; stderr:\n{}",
                    s.proc.pid,
                    tail_lines(&s.proc.stderr(), 40)
                );
            }
        }
    }

    /// Spawns the given nodes together, then waits for each one's ready line.
    pub fn start_nodes(&mut self, ids: &[i32]) -> Result<()> {
        let mut starting = Vec::new();
        for &id in ids {
            starting.push((id, self.spawn(id)?));
        }
        for (id, s) in starting {
            self.await_ready(id, s)?;
        }
        Ok(())
    }

    /// SIGKILL: a crash with no chance to flush or hand over leadership.
    pub fn kill(&mut self, id: i32) -> Result<()> {
        let node = self.node_mut(id);
        let proc = node.proc.as_mut().ok_or_else(|| anyhow!("kill: node {id} is not running"))?;
        proc.signal(libc::SIGKILL)?;
        proc.wait_exit(EXIT_TIMEOUT)?;
        Ok(())
    }

    /// SIGTERM and wait for the graceful exit, which must be code 0.
    pub fn stop(&mut self, id: i32) -> Result<()> {
        let node = self.node_mut(id);
        let proc = node.proc.as_mut().ok_or_else(|| anyhow!("stop: node {id} is not running"))?;
        proc.signal(libc::SIGTERM)?;
        let status = proc
            .wait_exit(EXIT_TIMEOUT)
            .with_context(|| format!("node {id}: waiting for the exit after SIGTERM"))?;
        if status.code() != Some(0) {
            bail!(
                "node {id} exited with {status} after SIGTERM, expected 0; stderr:\n{}",
                tail_lines(&proc.stderr(), 60)
            );
        }
        Ok(())
    }

    /// Starts a stopped node again with the same ports and data dir.
    pub fn restart(&mut self, id: i32) -> Result<()> {
        if self.node_mut(id).is_running() {
            bail!("restart: node {id} is still running");
        }
        self.start_nodes(&[id])
    }

    pub fn running(&mut self) -> Vec<i32> {
        self.nodes.iter_mut().filter_map(|n| n.is_running().then_some(n.id)).collect()
    }

    pub fn bootstrap(&self, id: i32) -> String {
        self.node(id).kafka.to_string()
    }

    pub fn bootstrap_all(&self) -> String {
        self.nodes.iter().map(|n| n.kafka.to_string()).collect::<Vec<_>>().join(",")
    }

    pub fn bootstrap_of(&self, ids: &[i32]) -> String {
        ids.iter().map(|id| self.node(*id).kafka.to_string()).collect::<Vec<_>>().join(",")
    }

    // ----- /state and /digest -----

    pub fn state(&self, id: i32) -> Result<Value> {
        let (status, body) = crate::http::get(self.node(id).http, "/state")?;
        if status != 200 {
            bail!("node {id}: GET /state answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("node {id}: /state is not JSON"))
    }

    /// `GET <path>` of node `id` as JSON (e.g. `/raft/summary`, `/raft/groups?topic=t`).
    pub fn get_json(&self, id: i32, path: &str) -> Result<Value> {
        let (status, body) = crate::http::get(self.node(id).http, path)?;
        if status != 200 {
            bail!("node {id}: GET {path} answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("node {id}: {path} is not JSON"))
    }

    pub fn digest(&self, id: i32) -> Result<Value> {
        let (status, body) = crate::http::get(self.node(id).http, "/digest")?;
        if status != 200 {
            bail!("node {id}: GET /digest answered {status}: {body}");
        }
        serde_json::from_str(&body).with_context(|| format!("node {id}: /digest is not JSON"))
    }

    /// The controller leader, once every running node names the same one and it is running.
    pub fn controller_leader(&mut self) -> Result<Option<i32>> {
        let running = self.running();
        let mut seen = Vec::new();
        for &id in &running {
            seen.push(self.state(id)?["raft"]["controller_leader"].as_i64().map(|v| v as i32));
        }
        match seen.first() {
            Some(Some(l)) if seen.iter().all(|s| *s == Some(*l)) && running.contains(l) => Ok(Some(*l)),
            _ => Ok(None),
        }
    }

    pub fn wait_controller(&mut self, timeout: Duration) -> Result<i32> {
        let running = self.running();
        wait_for(&format!("a controller leader known by all running nodes {running:?}"), timeout, || {
            self.controller_leader()
        })
    }

    /// (leader id, term) of one Raft group as seen by `from` (`role == Leader` on that node).
    pub fn group_on(&self, from: i32, group: &str) -> Result<Option<Value>> {
        let s = self.state(from)?;
        Ok(s["raft"]["groups"].as_array().and_then(|gs| gs.iter().find(|g| g["group"] == group).cloned()))
    }

    /// The node that is Leader of `topic-p` in its own /state (highest term if several claim it).
    pub fn leader_of(&mut self, topic: &str, p: i32) -> Result<Option<(i32, u64)>> {
        let group = format!("{topic}-{p}");
        let mut best: Option<(i32, u64)> = None;
        for id in self.running() {
            let Ok(Some(g)) = self.group_on(id, &group) else { continue };
            if g["role"] == "Leader" {
                let term = g["term"].as_u64().unwrap_or(0);
                if best.map(|(_, t)| term > t).unwrap_or(true) {
                    best = Some((id, term));
                }
            }
        }
        Ok(best)
    }

    /// Waits until every partition of `topic` has a leader that all running replicas follow.
    pub fn wait_all_leaders(&mut self, topic: &str, partitions: i32) -> Result<BTreeMap<i32, (i32, u64)>> {
        let running = self.running();
        wait_for(
            &format!("a leader for every partition of {topic}, agreed by nodes {running:?}"),
            CLUSTER_TIMEOUT,
            || {
                let mut out = BTreeMap::new();
                for p in 0..partitions {
                    let Some((l, term)) = self.leader_of(topic, p)? else { return Ok(None) };
                    for &id in &running {
                        let Some(g) = self.group_on(id, &format!("{topic}-{p}"))? else { return Ok(None) };
                        if g["leader"].as_i64() != Some(l as i64) || g["term"].as_u64() != Some(term) {
                            return Ok(None);
                        }
                    }
                    out.insert(p, (l, term));
                }
                Ok(Some(out))
            },
        )
    }

    /// Polls until, for every partition of `topic`, every running node reports the same digest
    /// and high watermark (and at least `partitions` partitions exist on each).
    pub fn digests_equal(
        &mut self,
        topic: &str,
        partitions: i32,
        timeout: Duration,
    ) -> Result<BTreeMap<i32, Value>> {
        let running = self.running();
        let mut last = String::new();
        let r = wait_for(
            &format!("equal /digest of every partition of {topic} on nodes {running:?}"),
            timeout,
            || {
                let mut per: BTreeMap<i32, Vec<(i32, Value)>> = BTreeMap::new();
                for &id in &running {
                    let d = self.digest(id)?;
                    for e in d.as_array().into_iter().flatten().filter(|e| e["topic"] == topic) {
                        let p = e["partition"].as_i64().unwrap_or(-1) as i32;
                        per.entry(p).or_default().push((
                            id,
                            serde_json::json!({"hw": e["high_watermark"], "digest": e["digest"]}),
                        ));
                    }
                }
                last = format!("{per:?}");
                if per.len() < partitions as usize {
                    return Ok(None);
                }
                let mut out = BTreeMap::new();
                for (p, v) in per {
                    if v.len() != running.len() || v.iter().any(|(_, d)| *d != v[0].1) {
                        return Ok(None);
                    }
                    out.insert(p, v[0].1.clone());
                }
                Ok(Some(out))
            },
        );
        r.with_context(|| format!("last digests seen: {last}"))
    }

    /// After a restart: waits until `id` follows a leader in every Raft group it belongs to and has
    /// applied at least what each group's leader had in its log when this call started.
    pub fn wait_caught_up(&mut self, id: i32, timeout: Duration) -> Result<()> {
        let running = self.running();
        // Leader's last_log_index per group, from the leaders' own /state.
        let mut targets: BTreeMap<String, u64> = BTreeMap::new();
        wait_for(&format!("a leader for every Raft group node {id} belongs to"), timeout, || {
            targets.clear();
            let mine = self.state(id)?;
            let groups: Vec<String> = mine["raft"]["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g["group"].as_str().map(String::from))
                .collect();
            if groups.is_empty() {
                return Ok(None);
            }
            let states: Vec<Value> = running.iter().map(|&n| self.state(n)).collect::<Result<_>>()?;
            for g in groups {
                let lead = states
                    .iter()
                    .filter_map(|s| {
                        s["raft"]["groups"].as_array().and_then(|gs| {
                            gs.iter().find(|x| x["group"] == g.as_str() && x["role"] == "Leader")
                        })
                    })
                    .max_by_key(|x| x["term"].as_u64());
                let Some(lead) = lead else { return Ok(None) };
                targets.insert(g, lead["last_log_index"].as_u64().unwrap_or(0));
            }
            Ok(Some(()))
        })?;
        let mut lag = String::new();
        wait_for(&format!("node {id} to apply every group's leader log as of its restart"), timeout, || {
            let mine = self.state(id)?;
            let mut behind = Vec::new();
            for (g, target) in &targets {
                let Some(x) = mine["raft"]["groups"]
                    .as_array()
                    .and_then(|gs| gs.iter().find(|x| x["group"] == g.as_str()))
                else {
                    behind.push(format!("{g}: missing"));
                    continue;
                };
                let applied = x["applied_index"].as_u64().unwrap_or(0);
                if applied < *target || x["leader"].is_null() {
                    behind.push(format!(
                        "{g}: applied {applied} < {target} (role {}, leader {})",
                        x["role"], x["leader"]
                    ));
                }
            }
            lag = behind.join("; ");
            Ok(behind.is_empty().then_some(()))
        })
        .with_context(|| format!("still behind: {lag}"))
    }

    /// stderr tails and a /state summary of every node, for failure messages.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = Vec::new();
        for n in &self.nodes {
            out.push(format!("----- node {} stderr -----\n{}", n.id, tail_lines(&n.stderr(), lines)));
        }
        for n in &self.nodes {
            let Ok(s) = self.state(n.id) else {
                out.push(format!("----- node {}: no /state -----", n.id));
                continue;
            };
            out.push(format!(
                "----- node {} /state summary (controller_leader {}) -----",
                n.id, s["raft"]["controller_leader"]
            ));
            for g in s["raft"]["groups"].as_array().into_iter().flatten() {
                out.push(format!(
                    "  raft {} role {} term {} leader {} last_log {} applied {} matched {}",
                    g["group"],
                    g["role"],
                    g["term"],
                    g["leader"],
                    g["last_log_index"],
                    g["applied_index"],
                    g["matched"]
                ));
            }
            for p in s["partitions"].as_array().into_iter().flatten() {
                out.push(format!(
                    "  log {}-{} leo {} hw {} flushed {}",
                    p["topic"], p["partition"], p["log_end_offset"], p["high_watermark"], p["flushed_offset"]
                ));
            }
        }
        out.join("\n")
    }
}

pub use crate::wait::{unique, wait_for};
