//! Supervisor tests with real `clusterlab-broker` processes on loopback (see `tests_broker_bin`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use super::*;

async fn lab(name: &str, nodes: usize) -> (Supervisor, UnboundedReceiver<SupervisorEvent>) {
    let root = std::env::temp_dir().join(format!("clusterlab-supervisor-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    lab_on(root, nodes).await
}

/// The controller leader `node` reports, polled until `ok` accepts it or 10 s pass.
async fn leader_seen_by(sup: &Supervisor, node: i32, ok: impl Fn(i64) -> bool) -> i64 {
    let t = Instant::now();
    loop {
        if let Ok(state) = sup.state(node).await {
            let leader = state.raft.and_then(|r| r.controller_leader).map(|l| l as i64);
            if let Some(leader) = leader.filter(|&l| ok(l)) {
                return leader;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "node {node} saw no acceptable controller leader within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Waits for a Process event of `node` in `state`, skipping everything else.
async fn next_process_event(
    rx: &mut UnboundedReceiver<SupervisorEvent>,
    node: i32,
    state: ProcessState,
) -> String {
    let wait = async {
        while let Some(e) = rx.recv().await {
            if let SupervisorEvent::Process { node: n, state: s, detail, .. } = e {
                if n == node && s == state {
                    return detail;
                }
            }
        }
        panic!("event channel closed");
    };
    tokio::time::timeout(Duration::from_secs(10), wait).await.expect("process event in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_starts_elects_and_survives_kill_restart_pause_and_death() {
    let (sup, mut rx) = lab("lifecycle", 3).await;
    sup.start_all().await.unwrap();
    assert!(sup.nodes().iter().all(|n| n.state == NodeState::Running && n.pid.is_some()));
    let info = sup.node_info(1).unwrap();
    assert!(info.config_file.is_file() && info.kafka_advertised != info.kafka_direct);
    assert_eq!(sup.bootstrap_servers().split(',').count(), 3);
    leader_seen_by(&sup, 1, |_| true).await;

    // kill + restart
    let old = sup.node_info(2).unwrap().pid.unwrap();
    sup.kill(2).await.unwrap();
    assert!(!alive(old));
    assert_eq!(sup.node_info(2).unwrap().state, NodeState::Stopped);
    next_process_event(&mut rx, 2, ProcessState::Exited).await;
    sup.restart(2).await.unwrap();
    assert_ne!(sup.node_info(2).unwrap().pid.unwrap(), old);
    leader_seen_by(&sup, 2, |_| true).await;

    // pause / resume: a paused node answers nothing, a resumed one answers again.
    sup.pause(3).unwrap();
    assert_eq!(sup.node_info(3).unwrap().state, NodeState::Paused);
    // "Nothing" is no answer: a call may time out or fail (a loaded machine can refuse the
    // connection of a stopped process), but must not get the node's state.
    let answer = tokio::time::timeout(Duration::from_millis(500), sup.state(3)).await;
    assert!(!matches!(answer, Ok(Ok(_))), "a paused node answered: {answer:?}");
    sup.resume(3).unwrap();
    leader_seen_by(&sup, 3, |_| true).await;

    // A death the lab did not ask for is reported as such, with its cause.
    let pid3 = sup.node_info(3).unwrap().pid.unwrap();
    unsafe { libc::kill(pid3 as libc::pid_t, libc::SIGKILL) };
    let detail = next_process_event(&mut rx, 3, ProcessState::Died).await;
    assert!(detail.contains("SIGKILL"), "{detail}");
    assert_eq!(sup.node_info(3).unwrap().state, NodeState::Died);
    sup.start(3).await.unwrap();

    let pids: Vec<u32> = sup.nodes().iter().filter_map(|n| n.pid).collect();
    sup.shutdown().await.unwrap();
    assert!(pids.iter().all(|&p| !alive(p)));
    let _ = std::fs::remove_dir_all(sup.run_dir());
}

#[tokio::test]
async fn a_taken_port_refuses_start_and_names_it() {
    let (sup, _rx) = lab("taken-port", 3).await;
    let http = sup.node_info(2).unwrap().http;
    let squatter = std::net::TcpListener::bind(http).unwrap();
    let err = sup.start_all().await.unwrap_err().to_string();
    assert!(err.contains(&format!("port {}", http.port())), "{err}");
    assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
    // Nothing was spawned: every node was checked before any started.
    assert!(sup.nodes().iter().all(|n| n.pid.is_none()));
    drop(squatter);
    let _ = std::fs::remove_dir_all(sup.run_dir());
}

#[tokio::test]
async fn drop_leaves_no_child_process() {
    let (sup, _rx) = lab("drop", 1).await;
    sup.start_all().await.unwrap();
    let pid = sup.node_info(1).unwrap().pid.unwrap();
    assert!(alive(pid));
    let dir = sup.run_dir().to_path_buf();
    drop(sup);
    // Killed and reaped: not even a zombie is left.
    assert!(!alive(pid), "pid {pid} is still there after Drop");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_leader_is_replaced_by_the_other_two() {
    let (sup, _rx) = lab("isolate", 3).await;
    sup.start_all().await.unwrap();
    let leader = leader_seen_by(&sup, 1, |_| true).await as i32;
    sup.fabric().isolate(leader).unwrap();
    let others: Vec<i32> = sup.node_ids().into_iter().filter(|&n| n != leader).collect();
    let a = leader_seen_by(&sup, others[0], |l| l != leader as i64).await;
    let b = leader_seen_by(&sup, others[1], |l| l == a).await;
    assert_eq!(a, b);
    let cut = sup.fabric().links().into_iter().filter(|l| l.mode == crate::fabric::Mode::Blackhole).count();
    assert_eq!(cut, 2, "exactly the isolated node's two node links are cut");
    sup.fabric().heal_all();
    // Healed: the old leader rejoins and agrees on the new one.
    leader_seen_by(&sup, leader, |l| l == a).await;
    sup.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(sup.run_dir());
}

#[tokio::test]
async fn corrupting_needs_a_stopped_node_and_resources_are_sampled() {
    let (sup, mut rx) = lab("corrupt", 1).await;
    sup.start_all().await.unwrap();
    assert!(matches!(sup.corrupt_segment(1, "t", 0), Err(LabError::NodeState { id: 1, .. })));
    let sample = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(SupervisorEvent::Resources { memory_bytes, disk_bytes, node_memory, .. }) =
                rx.recv().await
            {
                // The very first sample can catch the process right after exec, before the
                // runtime has mapped its memory (and before it serves its account): wait for
                // one of a started broker.
                if memory_bytes > 1024 * 1024 && node_memory.is_some() {
                    return (memory_bytes, disk_bytes, node_memory);
                }
            }
        }
    })
    .await
    .expect("a resource sample of more than 1 MiB, with the node's own account, within 5 s");
    let heap = sample.2.and_then(|m| m.heap_in_use_bytes).expect("jemalloc accounting");
    assert!(heap > 0, "{sample:?}");
    sup.slow_disk(1, 5).await.unwrap();
    sup.stop(1).await.unwrap();
    assert!(sup.corrupt_segment(1, "t", 0).is_err(), "no such partition yet");
    let _ = std::fs::remove_dir_all(sup.run_dir());
}

#[tokio::test]
async fn a_stale_broker_on_the_data_dir_refuses_start_and_names_its_pid() {
    let (first, _rx) = lab("stale", 1).await;
    let info = first.node_info(1).unwrap();
    // A broker left over from an earlier run: started by hand with the node's own config file.
    // Killed on drop too, so a failing assert below does not leave it running.
    let mut leftover = KillOnDrop(
        std::process::Command::new(tests_broker_bin())
            .arg("--config")
            .arg(&info.config_file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t = Instant::now();
    while !info.data_dir.join(".lock").is_file()
        || std::fs::read_to_string(info.data_dir.join(".lock")).unwrap().trim().is_empty()
    {
        assert!(t.elapsed() < Duration::from_secs(10), "the leftover broker never locked its dir");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(first);
    let (second, _rx) = lab_on(info.data_dir.parent().unwrap().parent().unwrap().to_path_buf(), 1).await;
    let err = second.start_all().await.unwrap_err();
    leftover.0.kill().unwrap();
    leftover.0.wait().unwrap();
    let msg = err.to_string();
    assert!(matches!(err, LabError::StaleBroker { .. }), "{msg}");
    assert!(
        msg.contains(&format!("pid {}", leftover.0.id()))
            && msg.contains(&info.data_dir.display().to_string()),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(second.run_dir());
}

/// The benches' options: brokers reach each other and clients reach them directly, nothing is
/// sampled, each start has its own log file, and a graceful stop is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_lab_has_no_proxies_a_log_per_start_and_checked_stops() {
    let root = std::env::temp_dir().join(format!("clusterlab-supervisor-direct-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut config = SupervisorConfig::new(tests_broker_bin());
    config.data_root = Some(root);
    config.fsync = "interval:50".into();
    (config.direct_links, config.sample_resources, config.log_files) = (true, false, true);
    config.auto_create_topics = false;
    let (tx, mut rx) = unbounded_channel();
    let sup = Supervisor::new(config, tx).await.expect("lab laid out");
    sup.start_all().await.unwrap();
    let nodes = sup.nodes();
    assert!(nodes.iter().all(|n| n.kafka_advertised == n.kafka_direct));
    let direct: Vec<String> = nodes.iter().map(|n| n.kafka_direct.to_string()).collect();
    assert_eq!(sup.bootstrap_servers(), direct.join(","));
    assert!(sup.fabric().links().is_empty() && sup.fabric().isolate(1).is_err());
    let toml = std::fs::read_to_string(&nodes[0].config_file).unwrap();
    let peer = nodes[1].raft.to_string();
    assert!(toml.contains(&peer) && toml.contains("auto_create_topics = false"), "{toml}");
    leader_seen_by(&sup, 1, |_| true).await;

    sup.kill(2).await.unwrap();
    sup.start(2).await.unwrap();
    let dir = nodes[1].config_file.parent().unwrap().to_path_buf();
    assert!(dir.join("broker-start-1.log").is_file() && dir.join("broker-start-2.log").is_file());
    // A death the lab did not ask for is no graceful stop; a clean SIGTERM exit is.
    let pid3 = sup.node_info(3).unwrap().pid.unwrap();
    unsafe { libc::kill(pid3 as libc::pid_t, libc::SIGKILL) };
    next_process_event(&mut rx, 3, ProcessState::Died).await;
    let err = sup.stop_gracefully(3).await.unwrap_err().to_string();
    assert!(err.contains("SIGKILL") && err.contains("before it was asked to stop"), "{err}");
    sup.stop_gracefully(1).await.unwrap();
    sup.stop_gracefully(2).await.unwrap();
    while let Ok(e) = rx.try_recv() {
        assert!(!matches!(e, SupervisorEvent::Resources { .. }), "sampled although off: {e:?}");
    }
    let _ = std::fs::remove_dir_all(sup.run_dir());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn lab_on(root: PathBuf, nodes: usize) -> (Supervisor, UnboundedReceiver<SupervisorEvent>) {
    let mut config = SupervisorConfig::new(tests_broker_bin());
    config.nodes = nodes;
    config.data_root = Some(root);
    config.fsync = "interval:50".into();
    let (tx, rx) = unbounded_channel();
    (Supervisor::new(config, tx).await.expect("lab laid out"), rx)
}
