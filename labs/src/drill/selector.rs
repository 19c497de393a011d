//! The small string languages inside a drill file: targets (`leader:orders/0`), waits
//! (`leader_elected:orders/0`), the fsync policy (`interval:50`) and acks (`"all"`).
//!
//! They are strings rather than TOML tables because an instructor reads `target = "leader:orders/0"`
//! at a glance. Each type parses with `FromStr` (errors list every accepted form) and goes through
//! serde as that same string, so a bad value in a file is reported by `toml` at its exact span, and
//! the UI receives the same text the author wrote.

use std::fmt;
use std::str::FromStr;

/// `<topic>/<partition>`, as written in `leader:orders/0`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: u32,
}

impl FromStr for TopicPartition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (topic, p) = s.rsplit_once('/').ok_or("missing '/<partition>'")?;
        if topic.is_empty() {
            return Err("empty topic".into());
        }
        let partition = p.parse().map_err(|_| format!("partition '{p}' is not a number"))?;
        Ok(TopicPartition { topic: topic.to_string(), partition })
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

/// Which node(s) a fault hits. Roles are resolved by the engine at the moment the step runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A node by its 1-based id.
    Node(u32),
    Leader(TopicPartition),
    /// One follower of the partition (the engine picks one, from the drill's seed).
    Follower(TopicPartition),
    /// The leader of the controller Raft group.
    Controller,
    /// The node leading the most partitions right now (a leader storm is largest there).
    Busiest,
    /// One node, chosen from the drill's seed so a rerun hits the same node.
    Random,
    /// The minority side of the last `split` (only valid after one).
    Minority,
    /// The node(s) hit by the most recent fault that hit nodes (`heal` hits none). Without it,
    /// "kill the follower, then bring *that* node back" cannot be written: by then `follower:`
    /// may resolve to another node.
    Previous,
    All,
}

const TARGET_FORMS: &str = "node:<id>, leader:<topic>/<p>, follower:<topic>/<p>, controller, busiest, \
                            random, minority, previous or all";

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("bad target '{s}': {why}");
        Ok(match s.split_once(':') {
            Some(("node", id)) => match id.parse::<u32>() {
                Ok(id) if id >= 1 => Target::Node(id),
                _ => return Err(bad(format!("node id '{id}' must be a number from 1"))),
            },
            Some(("leader", tp)) => Target::Leader(
                tp.parse().map_err(|e| bad(format!("{e}, expected leader:<topic>/<partition>")))?,
            ),
            Some(("follower", tp)) => Target::Follower(
                tp.parse().map_err(|e| bad(format!("{e}, expected follower:<topic>/<partition>")))?,
            ),
            None if s == "controller" => Target::Controller,
            None if s == "busiest" => Target::Busiest,
            None if s == "random" => Target::Random,
            None if s == "minority" => Target::Minority,
            None if s == "previous" => Target::Previous,
            None if s == "all" => Target::All,
            _ => return Err(format!("unknown target '{s}': expected {TARGET_FORMS}")),
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Node(id) => write!(f, "node:{id}"),
            Target::Leader(tp) => write!(f, "leader:{tp}"),
            Target::Follower(tp) => write!(f, "follower:{tp}"),
            Target::Controller => f.write_str("controller"),
            Target::Busiest => f.write_str("busiest"),
            Target::Random => f.write_str("random"),
            Target::Minority => f.write_str("minority"),
            Target::Previous => f.write_str("previous"),
            Target::All => f.write_str("all"),
        }
    }
}

impl Target {
    /// The partition a role selector refers to, for checking it against the drill's topic.
    pub fn partition(&self) -> Option<&TopicPartition> {
        match self {
            Target::Leader(tp) | Target::Follower(tp) => Some(tp),
            _ => None,
        }
    }

    /// Whether this always resolves to exactly one node (what `caught_up:` and links need).
    pub fn is_single_node(&self) -> bool {
        !matches!(self, Target::All | Target::Minority)
    }
}

/// What a wait step blocks on (each with the step's `timeout_ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Until {
    /// A leader *different from the one before the last fault* is elected for the partition.
    LeaderElected(TopicPartition),
    /// Every partition and the controller group have a leader.
    AllLeaders,
    /// The node's replicas have matched their leaders' logs.
    CaughtUp(Target),
    /// The node's Kafka listener answers.
    NodeReady(Target),
    /// The workload has this many acknowledged messages in total.
    Acked(u64),
}

const UNTIL_FORMS: &str =
    "leader_elected:<topic>/<p>, all_leaders, caught_up:<node>, node_ready:<node> or acked:<n>";

impl FromStr for Until {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| format!("bad wait '{s}': {why}");
        let node = |t: &str| -> Result<Target, String> {
            let target: Target = t.parse().map_err(&bad)?;
            match target.is_single_node() && target != Target::Random {
                true => Ok(target),
                false => Err(bad(format!(
                    "'{t}' is not one node; use node:<id>, leader:.., follower:.., controller or previous"
                ))),
            }
        };
        Ok(match s.split_once(':') {
            Some(("leader_elected", tp)) => Until::LeaderElected(
                tp.parse().map_err(|e| bad(format!("{e}, expected leader_elected:<topic>/<partition>")))?,
            ),
            Some(("caught_up", t)) => Until::CaughtUp(node(t)?),
            Some(("node_ready", t)) => Until::NodeReady(node(t)?),
            Some(("acked", n)) => match n.parse::<u64>() {
                Ok(n) if n > 0 => Until::Acked(n),
                _ => return Err(bad(format!("'{n}' is not a positive count, expected acked:<n>"))),
            },
            None if s == "all_leaders" => Until::AllLeaders,
            _ => return Err(format!("unknown wait '{s}': expected {UNTIL_FORMS}")),
        })
    }
}

impl fmt::Display for Until {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Until::LeaderElected(tp) => write!(f, "leader_elected:{tp}"),
            Until::AllLeaders => f.write_str("all_leaders"),
            Until::CaughtUp(t) => write!(f, "caught_up:{t}"),
            Until::NodeReady(t) => write!(f, "node_ready:{t}"),
            Until::Acked(n) => write!(f, "acked:{n}"),
        }
    }
}

/// When a broker fsyncs its log (the broker's own config values, passed through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    IntervalMs(u64),
    Never,
}

impl FromStr for Fsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Fsync::Always),
            "never" => Ok(Fsync::Never),
            _ => match s.strip_prefix("interval:").map(str::parse::<u64>) {
                Some(Ok(ms)) if ms > 0 => Ok(Fsync::IntervalMs(ms)),
                _ => Err(format!(
                    "unknown fsync policy '{s}': expected always, interval:<ms> (e.g. interval:50) or never"
                )),
            },
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fsync::Always => f.write_str("always"),
            Fsync::IntervalMs(ms) => write!(f, "interval:{ms}"),
            Fsync::Never => f.write_str("never"),
        }
    }
}

/// The producer's `acks` setting. Written as a string because `"all"` is one of the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    All,
    One,
    Zero,
}

impl FromStr for Acks {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" | "-1" => Ok(Acks::All),
            "1" => Ok(Acks::One),
            "0" => Ok(Acks::Zero),
            _ => Err(format!("unknown acks '{s}': expected \"all\", \"1\" or \"0\"")),
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Acks::All => "all",
            Acks::One => "1",
            Acks::Zero => "0",
        })
    }
}

/// serde for all of the above: as the same string the author wrote. A parse error becomes a
/// `custom` error, which `toml` pins to the value's span.
macro_rules! serde_as_string {
    ($($ty:ty),*) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serde_as_string!(Target, Until, Fsync, Acks);
