//! Request, response and report types of the group coordinator API.
//!
//! They mirror the fields of Kafka's JoinGroup/SyncGroup/LeaveGroup/OffsetCommit/OffsetFetch/
//! DescribeGroups/ListGroups messages without any wire encoding, so the protocol layer can map
//! every request version onto them.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Tunables of the coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// How long a group leaving Empty waits for more members before completing its first
    /// rebalance (Kafka's `group.initial.rebalance.delay.ms`); restarted per new member, capped
    /// by the rebalance timeout.
    pub initial_rebalance_delay: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
}

impl CoordinatorConfig {
    /// The coordinator's timing from the node config.
    pub fn from_config(config: &crate::config::Config) -> CoordinatorConfig {
        CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(300),
        }
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay: Duration::from_millis(300),
            min_session_timeout: Duration::from_secs(1),
            max_session_timeout: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty on a member's first join.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// JoinGroup v0 has no rebalance timeout: pass `<= 0` and the session timeout is used, as
    /// Kafka does.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// (assignor name, subscription metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a member without an id first gets MEMBER_ID_REQUIRED and its id.
    pub require_known_member_id: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinResponse {
    pub error_code: i16,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Non-empty only for the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    pub(crate) fn error(code: i16, member_id: &str) -> Self {
        JoinResponse {
            error_code: code,
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation_id: i32,
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// SyncGroup v5+; `None` skips the check.
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// Only the leader sends assignments: (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyncResponse {
    pub error_code: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub(crate) fn error(code: i16) -> Self {
        SyncResponse { error_code: code, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

#[derive(Debug, Clone)]
pub struct LeaveMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// Also the unit of a replicated commit (`ControllerCommand::CommitOffsets`), hence serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub metadata: Option<String>,
    /// The leader epoch the client saw at `offset` (OffsetCommit v6+), -1 when not given;
    /// stored and fetched back as Kafka does. Older commits in a controller log have none.
    #[serde(default = "no_leader_epoch")]
    pub leader_epoch: i32,
}

/// Kafka's "no leader epoch".
pub fn no_leader_epoch() -> i32 {
    -1
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    /// -1 when the group has committed nothing for this partition.
    pub offset: i64,
    pub metadata: Option<String>,
    /// -1 when none was committed with it.
    pub leader_epoch: i32,
    pub error_code: i16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Subscription metadata for the group's chosen protocol.
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupDescription {
    pub error_code: i16,
    pub group_id: String,
    /// "Empty", "PreparingRebalance", "CompletingRebalance", "Stable" or "Dead".
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

/// A group changed state (or generation); broadcast to telemetry subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupEvent {
    pub group: String,
    pub old_state: String,
    pub new_state: String,
    pub generation: i32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberSnapshot {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub assignment_bytes: usize,
    pub awaiting_join: bool,
    pub awaiting_sync: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupSnapshot {
    pub group_id: String,
    pub state: String,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberSnapshot>,
    pub committed_offsets: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupsSnapshot {
    pub groups: Vec<GroupSnapshot>,
}
