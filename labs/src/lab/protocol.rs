//! The lab protocol: one serde JSON command/event vocabulary for every front end.
//!
//! The desktop window (Tauri IPC), browsers (`clusterlab serve`, WebSocket) and the CLI all speak
//! it. Commands go in; events come out — timeline events as they happen and state snapshots.
//! Errors are `{code, message}`, never bare strings, so a UI can react to the code.

use broker::cluster::ClusterSnapshot;
use broker::state::{PartitionState, PartitionSummary};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::timeline::TimelineEvent;
use crate::workload::CounterValues;

pub use crate::settings::ClusterSettings;

/// Who a fault is aimed at (resolved to a node when it runs).
pub type TargetSpec = String;

/// Everything a front end can ask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    StartCluster {
        /// Settings left out take their defaults.
        #[ts(type = "Partial<ClusterSettings>")]
        settings: ClusterSettings,
    },
    StopCluster,
    /// `fault`: kill | stop | pause | resume | restart | power_cut | slow_disk | fsync_fail | isolate | heal;
    /// `target`: node:<id> | leader:<topic>/<p> | follower:<topic>/<p> | controller | random.
    Fault {
        fault: String,
        target: TargetSpec,
        #[serde(default)]
        #[ts(optional)]
        param: Option<u64>,
    },
    /// Cut (or heal) one direction or both of the link between two nodes.
    CutLink {
        from: i32,
        to: i32,
        both: bool,
    },
    /// Both directions of the link between two nodes pass again.
    HealLink {
        from: i32,
        to: i32,
    },
    HealAll,
    StartWorkload {
        #[serde(default)]
        #[ts(optional)]
        rate_per_sec: Option<u32>,
        #[serde(default)]
        #[ts(optional)]
        messages: Option<u64>,
    },
    StopWorkload,
    ListDrills,
    RunDrill {
        name: String,
        #[serde(default)]
        #[ts(optional)]
        seed: Option<u64>,
    },
    /// The guided lessons (`labs/lessons/`).
    ListLessons,
    /// Start a lesson in the window: its steps wait for the learner (their fault from the node
    /// menu, or `lesson_next`); progress comes as the state's `drill`.
    RunLesson {
        name: String,
    },
    /// The learner pressed Next (while a step waits for the learner's own action, the lab then
    /// performs it).
    LessonNext,
    /// A seeded chaos run on the safe settings: `faults` is the `--faults` list (default all).
    /// A run with anomalies saves its drill in the export directory. `topics`: how many topics
    /// the workload writes (default 1).
    RunChaos {
        seed: u64,
        duration_ms: u64,
        #[serde(default)]
        #[ts(optional)]
        faults: Option<String>,
        #[serde(default)]
        #[ts(optional)]
        topics: Option<u32>,
    },
    /// `format`: jsonl | perfetto | edn | csv | charts | html | all.
    Export {
        format: String,
        #[serde(default)]
        #[ts(optional)]
        dir: Option<String>,
    },
    /// Append an imported JSON Lines run to the lab's timeline, so viewers can replay it.
    ImportTimeline {
        jsonl: String,
    },
    Snapshot,
    /// Record every RPC of this Raft group in full (`controller` or `<topic>-<partition>`) for
    /// the Raft view; other groups are only counted (decision 27). `null`: no group, counters
    /// only (a long run's timeline then stops growing by the node heartbeats, ~15 KB/s).
    WatchRaftGroup {
        group: Option<String>,
    },
    /// The remembered preferences (last cluster settings, UI preferences, recent-runs cap).
    GetPreferences,
    /// Change some preferences; fields left out stay, `ui` keys merge (null deletes one).
    SetPreferences {
        patch: crate::prefs::PreferencesPatch,
    },
    /// The recent runs, newest first, with the store's size and cap.
    ListRuns,
    /// One recent run (`run`: its id; `id` is the request's own): its summary and its timeline
    /// as JSON Lines, to replay.
    OpenRun {
        run: String,
    },
    /// Export a recent run (`format` as for `export`) into `dir` [default: the export dir/<id>].
    ExportRun {
        run: String,
        format: String,
        #[serde(default)]
        #[ts(optional)]
        dir: Option<String>,
    },
    DeleteRun {
        run: String,
    },
}

impl Command {
    /// Commands a read-only viewer may send.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Command::Snapshot
                | Command::ListDrills
                | Command::ListLessons
                | Command::GetPreferences
                | Command::ListRuns
                | Command::OpenRun { .. }
        )
    }
}

/// A protocol error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LabFailure {
    /// Stable machine code: bad_request, not_running, already_running, forbidden, fault_failed,
    /// no_leader (a fault's role target is electing), drill_failed, export_failed, internal.
    pub code: String,
    pub message: String,
}

impl LabFailure {
    pub fn new(code: &str, message: impl Into<String>) -> LabFailure {
        LabFailure { code: code.into(), message: message.into() }
    }
}

/// One node as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct NodeView {
    pub id: i32,
    pub state: String,
    pub pid: Option<u32>,
    pub kafka: String,
    pub http: String,
    pub cpu_percent: f32,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

/// The whole lab at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, TS)]
pub struct LabState {
    pub running: bool,
    pub settings: Option<ClusterSettings>,
    pub bootstrap: Option<String>,
    pub nodes: Vec<NodeView>,
    pub raft: Vec<RaftReport>,
    pub partitions: Vec<PartitionReport>,
    /// The fabric's links, both directions of each endpoint pair.
    pub links: Vec<crate::fabric::LinkState>,
    pub workload: Option<CounterValues>,
    pub drill: Option<DrillProgress>,
    pub timeline_len: u64,
    /// The Raft group whose messages the nodes record in full (`raft_trace` timeline entries).
    #[serde(default)]
    pub raft_watch: Option<String>,
}

/// One node's Raft report in a snapshot: its `/state` `raft` section (summary, controller leader,
/// peers) with every group (`complete`) or one page of them from `offset` of `total`
/// (`lab::detail`); the summary is always whole. `raft` is None for a single node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RaftReport {
    pub node: i32,
    pub raft: Option<ClusterSnapshot>,
    pub complete: bool,
    pub offset: usize,
    pub total: usize,
}

/// Like [`RaftReport`]: a node's partitions' offsets (appended / flushed / committed), all or one
/// page, with their summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PartitionReport {
    pub node: i32,
    pub partitions: Vec<PartitionState>,
    pub summary: PartitionSummary,
    pub complete: bool,
    pub offset: usize,
    pub total: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DrillProgress {
    pub name: String,
    pub step: usize,
    pub steps: usize,
    pub narration: Option<String>,
    /// The checker's verdict: `ok`, `summary` and the findings.
    pub verdict: Option<crate::checker::Verdict>,
    pub done: bool,
    /// A guided lesson rather than a drill.
    #[serde(default)]
    pub lesson: bool,
    /// The Raft group the run is about (the Raft view shows it).
    #[serde(default)]
    pub watch: Option<String>,
    /// Lessons: what the step that just ended showed, and why; while a step waits for the
    /// learner, why what they did was not what it asks.
    #[serde(default)]
    pub explanation: Option<String>,
    /// Lessons in the window: `learner` (do the step's fault yourself) or `next` (press Next).
    #[serde(default)]
    pub awaiting: Option<String>,
}

/// What the lab tells front ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LabEvent {
    /// A new timeline entry.
    Timeline { entry: TimelineEvent },
    /// A full state snapshot (sent on connect and about every 500 ms while running).
    State { state: Box<LabState> },
    /// The recent-runs store changed (a run began or finished recording, or was pruned or
    /// deleted): front ends list the runs again, instead of polling for them.
    RunsChanged,
    /// The answer to one command (`id` echoes the request's id when it had one).
    Reply {
        id: Option<u64>,
        ok: bool,
        /// Each command's own answer (`ui/src/api/types.ts` types `Reply<R>` per command).
        #[ts(type = "unknown")]
        result: serde_json::Value,
        error: Option<LabFailure>,
    },
}

/// A command with an optional correlation id, as it arrives on a socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(flatten)]
    pub command: Command,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_the_json_a_ui_sends() {
        let r: Request =
            serde_json::from_str(r#"{"id":7,"command":"fault","fault":"kill","target":"leader:orders/0"}"#)
                .unwrap();
        assert_eq!(r.id, Some(7));
        assert_eq!(
            r.command,
            Command::Fault { fault: "kill".into(), target: "leader:orders/0".into(), param: None }
        );
        let r: Request =
            serde_json::from_str(r#"{"command":"start_cluster","settings":{"fsync":"never"}}"#).unwrap();
        assert!(
            matches!(r.command, Command::StartCluster { settings } if settings.fsync == "never" && settings.nodes == 3)
        );
        assert!(serde_json::from_str::<Request>(
            r#"{"command":"start_cluster","settings":{"fsynk":"never"}}"#
        )
        .is_err());
    }

    #[test]
    fn heal_link_names_both_ends_and_changes_the_lab() {
        let r: Request = serde_json::from_str(r#"{"command":"heal_link","from":1,"to":3}"#).unwrap();
        assert_eq!(r.command, Command::HealLink { from: 1, to: 3 });
        assert!(!r.command.is_read_only());
        assert!(serde_json::from_str::<Request>(r#"{"command":"heal_link","from":1}"#).is_err());
    }

    /// What a stray or hostile WebSocket client may send: every valid request mutated (cut,
    /// bytes replaced, nested ten thousand deep). Decoding answers an error, never panics.
    #[test]
    fn mutated_requests_decode_to_errors_never_panics() {
        let valid = [
            r#"{"id":7,"command":"fault","fault":"kill","target":"leader:orders/0"}"#,
            r#"{"command":"start_cluster","settings":{"fsync":"never","nodes":3}}"#,
            r#"{"id":1,"command":"heal_all"}"#,
        ];
        let mut rng = crate::bench::fuzz::Rng::new(0x5EED_7E57_u64);
        let mut next = move || rng.next();
        for v in valid {
            for _ in 0..500 {
                let mut b = v.as_bytes().to_vec();
                if next() % 2 == 0 {
                    b.truncate((next() % b.len() as u64) as usize);
                } else {
                    let at = (next() % b.len() as u64) as usize;
                    b[at] = next() as u8;
                }
                let _ = serde_json::from_slice::<Request>(&b);
            }
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(serde_json::from_str::<Request>(&deep).is_err());
    }

    /// A command's own fields must not be named `id`: the request's `id` (the reply's
    /// correlation number) is flattened beside them. `open_run {id}` once failed that way.
    #[test]
    fn recent_run_commands_carry_the_run_beside_the_request_id() {
        let r: Request = serde_json::from_str(
            r#"{"id":3,"command":"open_run","run":"20261204-073735915-drill-seed-three-node-formation"}"#,
        )
        .unwrap();
        assert_eq!(r.id, Some(3));
        assert_eq!(
            r.command,
            Command::OpenRun { run: "20261204-073735915-drill-seed-three-node-formation".into() }
        );
        let r: Request = serde_json::from_str(r#"{"id":4,"command":"delete_run","run":"2026"}"#).unwrap();
        assert_eq!(r.command, Command::DeleteRun { run: "2026".into() });
        let r: Request =
            serde_json::from_str(r#"{"id":5,"command":"set_preferences","patch":{"ui":{"theme":"light"}}}"#)
                .unwrap();
        assert!(matches!(r.command, Command::SetPreferences { .. }));
    }

    #[test]
    fn watching_a_raft_group_takes_a_name_or_null() {
        let r: Request = serde_json::from_str(r#"{"command":"watch_raft_group","group":"lab-0"}"#).unwrap();
        assert_eq!(r.command, Command::WatchRaftGroup { group: Some("lab-0".into()) });
        let r: Request = serde_json::from_str(r#"{"command":"watch_raft_group","group":null}"#).unwrap();
        assert_eq!(r.command, Command::WatchRaftGroup { group: None });
        assert!(!r.command.is_read_only(), "what the nodes record is the instructor's choice");
    }

    #[test]
    fn a_chaos_run_takes_seed_duration_and_optional_families() {
        let r: Request =
            serde_json::from_str(r#"{"command":"run_chaos","seed":3,"duration_ms":20000}"#).unwrap();
        assert_eq!(r.command, Command::RunChaos { seed: 3, duration_ms: 20_000, faults: None, topics: None });
        assert!(!r.command.is_read_only());
        let bad = serde_json::from_str::<Request>(r#"{"command":"run_chaos","seed":-1,"duration_ms":20000}"#);
        assert!(bad.is_err(), "a seed is a u64");
    }

    #[test]
    fn lesson_commands_name_the_lesson_and_next_takes_nothing() {
        let r: Request =
            serde_json::from_str(r#"{"id":9,"command":"run_lesson","name":"leader-election"}"#).unwrap();
        assert_eq!((r.id, r.command), (Some(9), Command::RunLesson { name: "leader-election".into() }));
        let r: Request = serde_json::from_str(r#"{"id":10,"command":"lesson_next"}"#).unwrap();
        assert_eq!(r.command, Command::LessonNext);
        assert!(!r.command.is_read_only(), "Next moves the instructor's lesson on");
        assert!(Command::ListLessons.is_read_only());
    }

    #[test]
    fn only_snapshots_and_listings_are_read_only() {
        assert!(Command::Snapshot.is_read_only());
        assert!(!Command::HealAll.is_read_only());
    }
}
