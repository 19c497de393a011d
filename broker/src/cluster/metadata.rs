//! The controller group's state: topics and their replica assignment, committed consumer-group
//! offsets, the producer-id counter and ACL bindings. Changed only by applying committed `ControllerCommand`s,
//! so every node holds the same metadata in the same order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::acls::{AclBinding, AclFilter, AclSet};
use crate::groups::{decode_offsets, merge_offsets, GroupCommit, OffsetMap};
use crate::raft::state_machine::Applier;
use crate::raft::typ::{Command, CommandResult, NodeId};
use crate::topic_config::TopicConfigs;

/// One topic: `replicas[p][0]` is partition p's preferred leader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicAssignment {
    pub replicas: Vec<Vec<NodeId>>,
    pub id: [u8; 16],
    pub created_at_ns: u64,
    /// Topic configs set explicitly (see `topic_config`); older commands carry none.
    #[serde(default)]
    pub configs: TopicConfigs,
    /// Log start offsets moved by DeleteRecords, by partition: every replica's log starts there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_starts: BTreeMap<i32, i64>,
}

/// Everything the controller group agrees on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterMetadata {
    pub topics: BTreeMap<String, TopicAssignment>,
    /// Committed consumer-group offsets, replicated so they survive the loss of the controller
    /// leader. The coordinator reads them from here: what is applied is what is committed.
    pub offsets: OffsetMap,
    pub next_producer_id: i64,
    /// ACL bindings (CreateAcls): stored and described, not enforced (see `crate::acls`).
    #[serde(default, skip_serializing_if = "AclSet::is_empty")]
    pub acls: AclSet,
    /// Raft index of the last applied command: lets waiters know their command is visible.
    pub applied_index: u64,
}

impl ClusterMetadata {
    /// CreateTopic: refused if the name is taken.
    fn create_topic(&mut self, name: String, assignment: TopicAssignment) -> ControllerReply {
        if self.topics.contains_key(&name) {
            return ControllerReply::TopicExists;
        }
        self.topics.insert(name, assignment);
        ControllerReply::Done
    }

    /// AddPartitions: refused unless the topic still has `current` partitions.
    fn add_partitions(&mut self, name: &str, current: usize, replicas: Vec<Vec<NodeId>>) -> ControllerReply {
        match self.topics.get_mut(name) {
            None => ControllerReply::NoSuchTopic,
            Some(t) if t.replicas.len() != current => ControllerReply::Invalid(format!(
                "topic '{name}' has {} partitions now, not {current}",
                t.replicas.len()
            )),
            Some(t) => {
                t.replicas.extend(replicas);
                ControllerReply::Done
            }
        }
    }

    /// DeleteRecords: the partition's log start moves up to `offset`, never down.
    fn raise_log_start(&mut self, name: &str, partition: i32, offset: i64) -> ControllerReply {
        match self.topics.get_mut(name) {
            Some(t) if (0..t.replicas.len() as i32).contains(&partition) => {
                let start = t.log_starts.entry(partition).or_insert(0);
                *start = (*start).max(offset);
                ControllerReply::Done
            }
            _ => ControllerReply::NoSuchTopic,
        }
    }
}

/// What the controller replicates. Values that are not deterministic (ids, clocks) are chosen by
/// the proposer and carried in the command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerCommand {
    CreateTopic {
        name: String,
        assignment: TopicAssignment,
    },
    DeleteTopic {
        name: String,
    },
    /// Appends partitions with these replicas; refused unless the topic still has `current`
    /// partitions (two racing requests must not both add theirs).
    AddPartitions {
        name: String,
        current: usize,
        replicas: Vec<Vec<NodeId>>,
    },
    SetTopicConfigs {
        name: String,
        configs: TopicConfigs,
    },
    /// Replaced by `CommitOffsets`; still applied, since logs written before hold it: the
    /// coordinator's whole map, which replaced every offset (a stale coordinator's map so
    /// overwrote newer offsets of other partitions).
    SetGroupOffsets {
        json: String,
    },
    /// Offset commits, applied in order on top of the offsets before: only the partitions they
    /// name change.
    CommitOffsets {
        commits: Vec<GroupCommit>,
    },
    AllocateProducerIds {
        count: i64,
    },
    /// DeleteRecords: partition's log start moves up to `offset` (never down).
    DeleteRecords {
        name: String,
        partition: i32,
        offset: i64,
    },
    /// CreateAcls: adds bindings (validated by the proposer); ones already stored stay.
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: removes what the filters match (validated by the proposer).
    DeleteAcls {
        filters: Vec<AclFilter>,
    },
}

/// The answer to a command, as seen by its proposer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ControllerReply {
    Done,
    TopicExists,
    NoSuchTopic,
    ProducerIds {
        first: i64,
    },
    /// DeleteAcls: per filter, the bindings it matched and that are now gone.
    AclsDeleted {
        matched: Vec<Vec<AclBinding>>,
    },
    Invalid(String),
}

impl ControllerCommand {
    pub fn to_command(&self) -> Command {
        Command::Controller(Bytes::from(serde_json::to_vec(self).expect("controller commands serialize")))
    }
}

impl ControllerReply {
    pub fn from_result(r: &CommandResult) -> ControllerReply {
        match r {
            CommandResult::Controller(b) => {
                serde_json::from_slice(b).unwrap_or_else(|e| ControllerReply::Invalid(e.to_string()))
            }
            other => ControllerReply::Invalid(format!("not a controller result: {other:?}")),
        }
    }
}

/// The controller's applier: holds the metadata and publishes every change.
pub struct ControllerApplier {
    state: Mutex<ClusterMetadata>,
    tx: watch::Sender<Arc<ClusterMetadata>>,
}

impl ControllerApplier {
    pub fn new() -> Arc<ControllerApplier> {
        let (tx, _) = watch::channel(Arc::new(ClusterMetadata::default()));
        Arc::new(ControllerApplier { state: Mutex::new(ClusterMetadata::default()), tx })
    }

    pub fn current(&self) -> Arc<ClusterMetadata> {
        self.tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<ClusterMetadata>> {
        self.tx.subscribe()
    }

    fn execute(state: &mut ClusterMetadata, cmd: ControllerCommand) -> ControllerReply {
        match cmd {
            ControllerCommand::CreateTopic { name, assignment } => state.create_topic(name, assignment),
            ControllerCommand::AddPartitions { name, current, replicas } => {
                state.add_partitions(&name, current, replicas)
            }
            ControllerCommand::DeleteTopic { name } => match state.topics.remove(&name) {
                Some(_) => ControllerReply::Done,
                None => ControllerReply::NoSuchTopic,
            },
            ControllerCommand::SetTopicConfigs { name, configs } => match state.topics.get_mut(&name) {
                None => ControllerReply::NoSuchTopic,
                Some(t) => {
                    t.configs = configs;
                    ControllerReply::Done
                }
            },
            ControllerCommand::SetGroupOffsets { json } => match decode_offsets(json.as_bytes()) {
                Ok(offsets) => {
                    state.offsets = offsets;
                    ControllerReply::Done
                }
                Err(e) => ControllerReply::Invalid(e.to_string()),
            },
            ControllerCommand::CommitOffsets { commits } => {
                merge_offsets(&mut state.offsets, &commits);
                ControllerReply::Done
            }
            ControllerCommand::DeleteRecords { name, partition, offset } => {
                state.raise_log_start(&name, partition, offset)
            }
            ControllerCommand::CreateAcls { bindings } => {
                crate::acls::create(&mut state.acls, &bindings);
                ControllerReply::Done
            }
            ControllerCommand::DeleteAcls { filters } => {
                ControllerReply::AclsDeleted { matched: crate::acls::delete(&mut state.acls, &filters) }
            }
            ControllerCommand::AllocateProducerIds { count } => {
                let first = state.next_producer_id;
                state.next_producer_id += count.max(1);
                ControllerReply::ProducerIds { first }
            }
        }
    }
}

impl Applier for ControllerApplier {
    fn apply(&self, index: u64, command: &Command, _offsets: (i64, i64)) -> CommandResult {
        let Command::Controller(bytes) = command else {
            return CommandResult::None;
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let reply = match serde_json::from_slice::<ControllerCommand>(bytes) {
            Ok(cmd) => Self::execute(&mut state, cmd),
            // A command this version cannot read is skipped on every node alike.
            Err(e) => {
                ControllerReply::Invalid(format!("unreadable controller command at index {index}: {e}"))
            }
        };
        state.applied_index = index;
        self.tx.send_replace(Arc::new(state.clone()));
        CommandResult::Controller(Bytes::from(serde_json::to_vec(&reply).expect("replies serialize")))
    }
}

/// Spreads partition leaders over the nodes: partition p's preferred leader is node
/// `(p + offset) mod n`, followed by the next ones, as Kafka's default assignor does.
pub fn assign_replicas(
    nodes: &[NodeId],
    partitions: i32,
    replication_factor: usize,
    offset: usize,
) -> Vec<Vec<NodeId>> {
    let n = nodes.len();
    let rf = replication_factor.clamp(1, n.max(1));
    (0..partitions as usize).map(|p| (0..rf).map(|r| nodes[(p + offset + r) % n]).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_are_spread_and_replicas_distinct() {
        let a = assign_replicas(&[1, 2, 3], 3, 3, 0);
        assert_eq!(a, vec![vec![1, 2, 3], vec![2, 3, 1], vec![3, 1, 2]]);
        let b = assign_replicas(&[1, 2, 3], 4, 2, 1);
        assert_eq!(b[0], vec![2, 3]);
        assert_eq!(b[3], vec![2, 3]);
    }

    #[test]
    fn commands_apply_deterministically() {
        let applier = ControllerApplier::new();
        let create = ControllerCommand::CreateTopic {
            name: "t".into(),
            assignment: TopicAssignment {
                replicas: vec![vec![1, 2, 3]],
                id: [1; 16],
                created_at_ns: 5,
                configs: TopicConfigs::new(),
                log_starts: BTreeMap::new(),
            },
        };
        let r = applier.apply(1, &create.to_command(), (0, 1));
        assert_eq!(ControllerReply::from_result(&r), ControllerReply::Done);
        let r = applier.apply(2, &create.to_command(), (1, 2));
        assert_eq!(ControllerReply::from_result(&r), ControllerReply::TopicExists);
        let ids = ControllerCommand::AllocateProducerIds { count: 1000 };
        assert_eq!(
            ControllerReply::from_result(&applier.apply(3, &ids.to_command(), (2, 3))),
            ControllerReply::ProducerIds { first: 0 }
        );
        assert_eq!(
            ControllerReply::from_result(&applier.apply(4, &ids.to_command(), (3, 4))),
            ControllerReply::ProducerIds { first: 1000 }
        );
        assert_eq!(applier.current().applied_index, 4);
        assert!(applier.current().topics.contains_key("t"));
    }

    #[test]
    fn offset_commits_change_only_the_partitions_they_name() {
        use crate::groups::OffsetCommit;
        let commit = |partition: i32, offset: i64| GroupCommit {
            group: "g".into(),
            offsets: vec![OffsetCommit {
                topic: "t".into(),
                partition,
                offset,
                metadata: None,
                leader_epoch: -1,
            }],
            delete: false,
            removed: Vec::new(),
        };
        let applier = ControllerApplier::new();
        let both = ControllerCommand::CommitOffsets { commits: vec![commit(0, 10), commit(1, 10)] };
        applier.apply(1, &both.to_command(), (0, 1));
        let one = ControllerCommand::CommitOffsets { commits: vec![commit(1, 30)] };
        applier.apply(2, &one.to_command(), (1, 2));
        let offsets = &applier.current().offsets["g"]["t"];
        assert_eq!((offsets[&0].offset, offsets[&1].offset), (10, 30));
        // Logs written before hold whole maps; they still apply, as they did.
        let legacy = r#"{"version":1,"groups":{"g":[{"topic":"t","partition":0,"offset":7}]}}"#;
        let set = ControllerCommand::SetGroupOffsets { json: legacy.into() };
        applier.apply(3, &set.to_command(), (2, 3));
        let offsets = &applier.current().offsets["g"]["t"];
        assert_eq!((offsets[&0].offset, offsets.get(&1)), (7, None));
    }

    #[test]
    fn acl_commands_add_once_and_delete_what_filters_match() {
        let binding = |name: &str| AclBinding {
            resource_type: 2,
            resource_name: name.into(),
            pattern_type: crate::acls::code::LITERAL,
            principal: "User:a".into(),
            host: "*".into(),
            operation: 3,
            permission: 3,
        };
        let applier = ControllerApplier::new();
        let create = ControllerCommand::CreateAcls { bindings: vec![binding("t"), binding("u")] };
        applier.apply(1, &create.to_command(), (0, 1));
        applier.apply(2, &create.to_command(), (1, 2));
        assert_eq!(applier.current().acls.len(), 2, "a binding created twice is stored once");
        let filter = AclFilter {
            resource_type: 2,
            resource_name: Some("t".into()),
            pattern_type: crate::acls::code::MATCH,
            principal: None,
            host: None,
            operation: crate::acls::code::ANY,
            permission: crate::acls::code::ANY,
        };
        let delete = ControllerCommand::DeleteAcls { filters: vec![filter] };
        let reply = ControllerReply::from_result(&applier.apply(3, &delete.to_command(), (2, 3)));
        assert_eq!(reply, ControllerReply::AclsDeleted { matched: vec![vec![binding("t")]] });
        assert_eq!(applier.current().acls.iter().collect::<Vec<_>>(), [&binding("u")]);
    }
}
