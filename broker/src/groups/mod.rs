//! TEMPORARY stub with the coordinator API; replaced by the real module.
#![allow(unused)]
use std::sync::Arc;
use std::time::Duration;
use bytes::Bytes;
use serde::Serialize;
use crate::error::Result;
pub struct CoordinatorConfig { pub initial_rebalance_delay: Duration, pub min_session_timeout: Duration, pub max_session_timeout: Duration }
pub struct GroupCoordinator;
#[derive(Debug, Clone, Serialize)] pub struct GroupEvent { pub group: String }
#[derive(Debug, Clone, Serialize)] pub struct GroupsSnapshot {}
pub struct JoinRequest { pub group_id: String, pub member_id: String, pub group_instance_id: Option<String>, pub client_id: String, pub client_host: String, pub session_timeout_ms: i32, pub rebalance_timeout_ms: i32, pub protocol_type: String, pub protocols: Vec<(String, Bytes)>, pub require_known_member_id: bool }
pub struct JoinedMember { pub member_id: String, pub group_instance_id: Option<String>, pub metadata: Bytes }
pub struct JoinResponse { pub error_code: i16, pub generation_id: i32, pub protocol_type: Option<String>, pub protocol_name: Option<String>, pub leader: String, pub member_id: String, pub members: Vec<JoinedMember> }
pub struct SyncRequest { pub group_id: String, pub generation_id: i32, pub member_id: String, pub group_instance_id: Option<String>, pub protocol_type: Option<String>, pub protocol_name: Option<String>, pub assignments: Vec<(String, Bytes)> }
pub struct SyncResponse { pub error_code: i16, pub protocol_type: Option<String>, pub protocol_name: Option<String>, pub assignment: Bytes }
pub struct LeaveMember { pub member_id: String, pub group_instance_id: Option<String> }
pub struct OffsetCommit { pub topic: String, pub partition: i32, pub offset: i64, pub metadata: Option<String> }
pub struct CommittedOffset { pub topic: String, pub partition: i32, pub offset: i64, pub metadata: Option<String>, pub error_code: i16 }
pub struct DescribedMember { pub member_id: String, pub group_instance_id: Option<String>, pub client_id: String, pub client_host: String, pub metadata: Bytes, pub assignment: Bytes }
pub struct GroupDescription { pub error_code: i16, pub state: String, pub protocol_type: String, pub protocol: String, pub members: Vec<DescribedMember> }
pub struct GroupListing { pub group_id: String, pub protocol_type: String, pub state: String }
impl GroupCoordinator {
  pub fn new(config: CoordinatorConfig, persisted_offsets: Option<Vec<u8>>, persist: Arc<dyn Fn(&[u8]) -> Result<()> + Send + Sync>) -> Result<Arc<Self>> { todo!() }
  pub async fn join(&self, req: JoinRequest) -> JoinResponse { todo!() }
  pub async fn sync(&self, req: SyncRequest) -> SyncResponse { todo!() }
  pub fn heartbeat(&self, group_id: &str, generation_id: i32, member_id: &str) -> i16 { todo!() }
  pub fn leave(&self, group_id: &str, members: &[LeaveMember]) -> (i16, Vec<i16>) { todo!() }
  pub fn describe(&self, group_id: &str) -> GroupDescription { todo!() }
  pub fn list(&self) -> Vec<GroupListing> { todo!() }
  pub fn commit_offsets(&self, group_id: &str, generation_id: i32, member_id: &str, offsets: &[OffsetCommit]) -> Vec<i16> { todo!() }
  pub fn fetch_offsets(&self, group_id: &str, partitions: Option<&[(String, i32)]>) -> Vec<CommittedOffset> { todo!() }
  pub fn snapshot(&self) -> GroupsSnapshot { todo!() }
  pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<GroupEvent> { todo!() }
  pub async fn run_timers(self: Arc<Self>, cancel: tokio_util::sync::CancellationToken) { todo!() }
}
