//! Which Raft group: the one type for a group's identity on every side of every process.
//!
//! In JSON (answers, events, timelines, the UI) a group is its name, `controller` or
//! `<topic>-<partition>`, so files and the TypeScript side see a string (`GroupId = string`); in
//! the Raft transport's binary frames (bincode) it stays the compact enum. Parsing the name is
//! [`GroupId::from_str`], spelling it is `Display`: nothing else builds or splits the string.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The name of the controller's Raft group.
pub const CONTROLLER_GROUP: &str = "controller";

/// Which Raft group a message, an event or an answer is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ts_rs::TS)]
#[ts(type = "string")]
pub enum GroupId {
    /// Topics, partition assignment, committed offsets, producer ids.
    Controller,
    /// One Kafka partition.
    Partition { topic: String, partition: i32 },
}

impl GroupId {
    pub fn partition(topic: &str, partition: i32) -> GroupId {
        GroupId::Partition { topic: topic.to_string(), partition }
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupId::Controller => f.write_str(CONTROLLER_GROUP),
            GroupId::Partition { topic, partition } => write!(f, "{topic}-{partition}"),
        }
    }
}

impl FromStr for GroupId {
    type Err = String;

    /// `controller`, or `<topic>-<partition>` (the topic may itself contain `-`).
    fn from_str(name: &str) -> Result<GroupId, String> {
        if name == CONTROLLER_GROUP {
            return Ok(GroupId::Controller);
        }
        let not_a_group = || format!("{name:?} is not a Raft group: controller or <topic>-<partition>");
        let (topic, p) = name.rsplit_once('-').ok_or_else(not_a_group)?;
        let partition: i32 = p.parse().map_err(|_| not_a_group())?;
        if topic.is_empty() || partition < 0 {
            return Err(not_a_group());
        }
        Ok(GroupId::partition(topic, partition))
    }
}

impl PartialEq<str> for GroupId {
    /// Whether `name` spells this group (no allocation on the common miss).
    fn eq(&self, name: &str) -> bool {
        match self {
            GroupId::Controller => name == CONTROLLER_GROUP,
            GroupId::Partition { topic, partition } => name
                .rsplit_once('-')
                .is_some_and(|(t, p)| t == topic && p.parse::<i32>().is_ok_and(|p| p == *partition)),
        }
    }
}

impl PartialEq<&str> for GroupId {
    fn eq(&self, name: &&str) -> bool {
        self == *name
    }
}

impl PartialEq<String> for GroupId {
    fn eq(&self, name: &String) -> bool {
        self == name.as_str()
    }
}

/// The enum as the transport's bincode frames carry it.
#[derive(Serialize, Deserialize)]
enum Compact {
    Controller,
    Partition { topic: String, partition: i32 },
}

impl Serialize for GroupId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return s.collect_str(self);
        }
        match self {
            GroupId::Controller => Compact::Controller,
            GroupId::Partition { topic, partition } => {
                Compact::Partition { topic: topic.clone(), partition: *partition }
            }
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for GroupId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<GroupId, D::Error> {
        if d.is_human_readable() {
            let name = String::deserialize(d)?;
            return name.parse().map_err(serde::de::Error::custom);
        }
        Ok(match Compact::deserialize(d)? {
            Compact::Controller => GroupId::Controller,
            Compact::Partition { topic, partition } => GroupId::Partition { topic, partition },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_print_and_compare_both_ways() {
        let g = GroupId::partition("my-topic", 12);
        assert_eq!(g.to_string(), "my-topic-12");
        assert_eq!("my-topic-12".parse::<GroupId>(), Ok(g.clone()));
        assert_eq!("controller".parse::<GroupId>(), Ok(GroupId::Controller));
        assert!(g == *"my-topic-12" && g != *"my-topic-1" && g != *"my-topic" && g != *"controller");
        for bad in ["nope", "-1", "t-x", "t-", ""] {
            assert!(bad.parse::<GroupId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn json_carries_the_name_and_bincode_the_enum() {
        let g = GroupId::partition("t", 3);
        assert_eq!(serde_json::to_string(&g).unwrap(), r#""t-3""#);
        assert_eq!(serde_json::from_str::<GroupId>(r#""t-3""#).unwrap(), g);
        assert!(serde_json::from_str::<GroupId>(r#""t""#)
            .unwrap_err()
            .to_string()
            .contains("not a Raft group"));
        let bytes = bincode::serialize(&g).unwrap();
        assert_eq!(bincode::deserialize::<GroupId>(&bytes).unwrap(), g);
        assert!(!bytes.windows(3).any(|w| w == b"t-3"), "bincode keeps topic and partition apart");
    }
}
