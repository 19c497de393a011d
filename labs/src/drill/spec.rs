//! The validated, typed drill the engine executes. Everything here has passed `parse_drill`'s checks,
//! so the engine can trust it (targets name the drill's topic, timeouts are positive, ...).
//! `Serialize` so the lab protocol can send a drill to the UI's drill runner as-is.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use super::selector::{Acks, Fsync, Target, TopicPartition, Until};
pub use crate::fabric::Toxic;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DrillSpec {
    /// Unique within the catalog; what `clusterlab drill run NAME` takes.
    pub name: String,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    /// The file the drill came from, so messages and the UI can point at it.
    pub file: PathBuf,
    /// A guided lesson (`labs/lessons/`) rather than a drill: its steps may wait for the learner
    /// and explain themselves afterwards.
    pub lesson: bool,
    /// The Raft group the nodes record message by message during the run (the Raft view shows
    /// it; the `[expect]` keys over the Raft trace read it).
    pub watch: Option<String>,
    pub setup: Setup,
    pub workload: Workload,
    pub steps: Vec<Step>,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setup {
    pub nodes: u32,
    pub topic: String,
    /// How many topics the workload writes and reads: `topic`, then `<topic>2`, `<topic>3`, ...
    /// each with `partitions` and `replication_factor` (role targets name any of them).
    pub topics: u32,
    pub partitions: u32,
    pub replication_factor: u32,
    pub fsync: Fsync,
    pub acks: Acks,
    pub idempotence: bool,
    /// Raft election timeout range `[min, max]`, each node draws from it.
    pub election_timeout_ms: [u64; 2],
    pub heartbeat_ms: u64,
    /// Seeds every random choice (random targets, follower picks) so a failure can be replayed.
    /// `None`: the engine picks one and logs it on the timeline.
    pub seed: Option<u64>,
}

impl Setup {
    /// The topics of the drill, the first being `topic`.
    pub fn topic_names(&self) -> Vec<String> {
        std::iter::once(self.topic.clone())
            .chain((2..=self.topics).map(|i| format!("{}{i}", self.topic)))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub producers: u32,
    pub consumers: u32,
    /// Stop producing after this many messages in total (at least one bound is set).
    pub messages: Option<u64>,
    /// Stop producing after this long.
    pub duration_ms: Option<u64>,
    /// `None`: as fast as the cluster acknowledges.
    pub rate_per_sec: Option<u32>,
    pub message_bytes: u32,
    /// Consumers join one consumer group (offsets committed) instead of assigning partitions.
    pub consumer_group: bool,
    /// Group members leave and rejoin this often (so rebalances happen under test), committing
    /// their offsets themselves, sync and async in turn. `None`: members stay, auto-commit.
    pub churn_ms: Option<u64>,
    /// The node producers bootstrap from (`all`: every node).
    pub produce_via: Target,
    /// The node consumers bootstrap from; may be `previous` when consumers start after the steps.
    pub consume_via: Target,
    pub consumers_start: ConsumersStart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsumersStart {
    /// Consume live while producing (the default).
    WithProducers,
    /// Read everything back once every step has run — how the seed checked its restarts.
    AfterSteps,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// 1-based line of the step's `[[steps]]` header, for the timeline and error messages.
    pub line: usize,
    pub when: When,
    pub action: Action,
    /// One short line shown (and optionally spoken by the instructor) when the step starts.
    pub narrate: Option<String>,
    /// Lessons: what happened and why, shown once the step is done.
    pub explain: Option<String>,
    /// Lessons: what the step waits for from the learner (headless, the runner goes on itself).
    pub awaits: Option<Await>,
}

/// What a lesson step waits for before it counts as done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Await {
    /// The learner performs the step's fault (e.g. kills the leader from the node menu).
    /// Headless, the runner performs it.
    Learner,
    /// The learner presses Next (after reading the narration). Headless: no wait.
    Next,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Before the cluster starts: `take_port` (the port must be taken before the node binds) and narration.
    BeforeStart,
    /// Not before this offset from the workload's start; steps still run in file order.
    AtMs(u64),
    /// This long after the previous step finished (0: right away).
    AfterMs(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Fault(Fault),
    Wait {
        until: Until,
        timeout_ms: u64,
    },
    /// A narration-only step: the text is the point.
    Narrate,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    Kill {
        target: Target,
    },
    Stop {
        target: Target,
    },
    Pause {
        target: Target,
    },
    Resume {
        target: Target,
    },
    /// SIGTERM then start again; on a node that is down, just start it.
    Restart {
        target: Target,
    },
    PowerCut {
        target: Target,
    },
    /// Adds `delay_ms` before every fsync of the node; 0 takes the delay away again.
    SlowDisk {
        target: Target,
        delay_ms: u64,
    },
    CorruptSegment {
        target: Target,
    },
    /// Every fsync of the node fails with EIO from now on: the broker stops (exit 74) at its next
    /// flush and stays down until restarted.
    FsyncFail {
        target: Target,
    },
    Isolate {
        target: Target,
    },
    Split {
        minority: Vec<Target>,
    },
    CutLink {
        from: Target,
        to: Target,
        direction: Direction,
    },
    DelayLink {
        from: Target,
        to: Target,
        delay_ms: u64,
    },
    BlackholeLink {
        from: Target,
        to: Target,
    },
    /// A link toxic on the bytes `from` sends to `to` (latency with jitter, bandwidth, ...).
    Toxic {
        from: Target,
        to: Target,
        toxic: Toxic,
    },
    /// `target` keeps its links to both sides; the other nodes cannot talk to each other.
    Bridge {
        target: Target,
    },
    Heal,
    /// Both directions of one link pass again; other faults stay.
    HealLink {
        from: Target,
        to: Target,
    },
    TakePort {
        target: Target,
    },
}

impl Fault {
    /// The target of a fault the window's node menu offers (`Lab::fault`: one node at a time),
    /// which a lesson may therefore ask the learner to perform; None for the others.
    pub fn node_menu_target(&self) -> Option<&Target> {
        match self {
            Fault::Kill { target }
            | Fault::Stop { target }
            | Fault::Pause { target }
            | Fault::Resume { target }
            | Fault::Restart { target }
            | Fault::PowerCut { target }
            | Fault::SlowDisk { target, .. }
            | Fault::FsyncFail { target }
            | Fault::Isolate { target } => Some(target),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Only `from -> to` is cut; answers still flow back.
    OneWay,
    Both,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expect {
    pub lost: Outcome,
    pub duplicates: Outcome,
    pub other_anomalies: Anomalies,
    /// Longest window without a successful produce the drill tolerates.
    pub max_unavailability_ms: Option<u64>,
    /// Of the partitions whose leader changed during the steps, at least this percentage got the
    /// next term (+1): more means elections split votes and had to be retried (an election storm).
    pub min_term_plus_one_pct: Option<f64>,
    /// The cluster must fail to start with an error containing this text (the workload never runs).
    /// `{port}` stands for the port the `take_port` step occupied: ports are allocated per run.
    pub start_fails_with: Option<String>,
    /// What the watched group's Raft trace must show (the spec's `watch`).
    pub raft: RaftExpect,
}

/// Expectations over the Raft trace of the watched group, from the moment the steps start.
/// Each is something a lesson demonstrates: if the cluster stops showing it, the run fails.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RaftExpect {
    /// A candidate got a majority of votes in a term above the one the steps started in.
    pub elected_in_higher_term: bool,
    /// A replica discarded entries from its log (uncommitted ones a new leader overwrote).
    pub discarded_uncommitted: bool,
    /// The commit index advanced at least this many times.
    pub min_commits: Option<u64>,
    /// Some replica's log ran at least this many entries ahead of what it had fsynced (a slow
    /// disk: appended at once, flushed late).
    pub min_flush_lag: Option<u64>,
}

impl RaftExpect {
    pub fn is_empty(&self) -> bool {
        *self == RaftExpect::default()
    }
}

/// Expected count of an anomaly. `some` means the drill *demonstrates* it (e.g. fsync=never loses
/// writes): the verdict fails if none shows up, because then the lesson did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    None,
    Some,
    Any,
}

/// Reordering, divergence, phantom reads...: never expected to be demonstrated, so no `some`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anomalies {
    None,
    Any,
}
