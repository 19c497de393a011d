//! TEMPORARY stub with the storage API; replaced by the real module.
#![allow(unused)]
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use crate::config::FsyncPolicy;
use crate::error::Result;
#[derive(Debug, Clone)]
pub struct BatchHeader { pub base_offset: i64, pub batch_length: i32, pub partition_leader_epoch: i32, pub magic: i8, pub crc: u32, pub attributes: i16, pub last_offset_delta: i32, pub base_timestamp: i64, pub max_timestamp: i64, pub producer_id: i64, pub producer_epoch: i16, pub base_sequence: i32, pub record_count: i32 }
impl BatchHeader { pub fn parse(b: &[u8]) -> Result<BatchHeader> { todo!() } pub fn record_count_i64(&self) -> i64 { todo!() } }
pub fn split_batches(r: &Bytes) -> Result<Vec<Bytes>> { todo!() }
pub struct LogStore;
#[derive(Debug, Clone, Serialize, Default)] pub struct StoreStats { pub fsync_count: u64, pub fsync_nanos_total: u64, pub bytes_appended: u64, pub entries_appended: u64 }
#[derive(Debug, Clone, Serialize)] pub struct RecoveryReport { pub partitions: Vec<PartitionRecovery>, pub last_power_cut: Option<PowerCutReport> }
#[derive(Debug, Clone, Serialize)] pub struct PartitionRecovery { pub topic: String, pub partition: i32, pub segments: usize, pub entries: u64, pub log_end_offset: i64, pub torn_tail_bytes: u64, pub corruption: Option<Corruption> }
#[derive(Debug, Clone, Serialize)] pub struct Corruption { pub file: PathBuf, pub position: u64, pub reason: String, pub quarantined_to: PathBuf }
#[derive(Debug, Clone, Serialize, Deserialize)] pub struct PowerCutReport { pub at_ns: u64, pub partitions: Vec<PowerCutPartition> }
#[derive(Debug, Clone, Serialize, Deserialize)] pub struct PowerCutPartition { pub topic: String, pub partition: i32, pub log_end_offset: i64, pub flushed_offset: i64, pub lost_records: i64 }
impl LogStore {
  pub fn open(dir: &Path, policy: FsyncPolicy, segment_bytes: u64) -> Result<(Arc<LogStore>, RecoveryReport)> { todo!() }
  pub fn policy(&self) -> FsyncPolicy { todo!() }
  pub fn dir(&self) -> &Path { todo!() }
  pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> { todo!() }
  pub fn create_partition(&self, topic: &str, partition: i32) -> Result<Arc<PartitionLog>> { todo!() }
  pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<()> { todo!() }
  pub fn partitions(&self) -> Vec<Arc<PartitionLog>> { todo!() }
  pub fn flush_all(&self) -> Result<()> { todo!() }
  pub fn set_fsync_delay(&self, d: Duration) { todo!() } pub fn fsync_delay(&self) -> Duration { todo!() }
  pub fn stats(&self) -> StoreStats { todo!() }
  pub fn power_cut(&self) -> Result<PowerCutReport> { todo!() }
  pub fn close(&self) -> Result<()> { todo!() }
  pub fn write_meta(&self, name: &str, bytes: &[u8]) -> Result<()> { todo!() }
  pub fn read_meta(&self, name: &str) -> Result<Option<Vec<u8>>> { todo!() }
}
pub struct PartitionLog;
pub struct AppendOutcome { pub base_offset: i64, pub last_offset: i64, pub log_append_time_ms: i64 }
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PartitionOffsets { pub log_start_offset: i64, pub log_end_offset: i64, pub flushed_offset: i64, pub high_watermark: i64, pub appended_at_ns: u64, pub flushed_at_ns: u64 }
impl PartitionLog {
  pub fn topic(&self) -> &str { todo!() } pub fn partition(&self) -> i32 { todo!() }
  pub fn append(&self, batches: &[Bytes], leader_epoch: i32) -> Result<AppendOutcome> { todo!() }
  pub async fn wait_flushed(&self, end_offset_exclusive: i64) -> Result<()> { todo!() }
  pub fn read(&self, from_offset: i64, upto_exclusive: i64, max_bytes: usize) -> Result<Vec<Bytes>> { todo!() }
  pub fn offsets(&self) -> PartitionOffsets { todo!() }
  pub fn subscribe(&self) -> tokio::sync::watch::Receiver<PartitionOffsets> { todo!() }
  pub fn offset_for_timestamp(&self, ts_ms: i64) -> Option<i64> { todo!() }
  pub fn batch_headers(&self) -> Result<Vec<BatchHeader>> { todo!() }
}
