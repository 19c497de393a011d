//! The topic catalogue: which topics exist and how many partitions each has.
//!
//! Persisted as `topics.json` through the store's atomic metadata writes, so a restart (or a
//! power cut) never loses a topic whose creation was acknowledged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};

use crate::error::{BrokerError, Result};
use crate::log::{LogStore, PartitionLog};
use crate::topic_config::TopicConfigs;

const CATALOGUE_FILE: &str = "topics.json";
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME: usize = 249;
/// Partitions one topic may have. Real deployments run thousands per broker and the scale bench
/// creates 10,000 in one topic; the cap only stops a typo (`--partitions 300000`) from creating
/// hundreds of thousands of files.
pub const MAX_PARTITIONS: i32 = 20_000;

/// Kafka's rule for CreatePartitions: the count only grows, and stays within our cap.
pub fn check_partition_growth(
    name: &str,
    current: i32,
    total: i32,
) -> std::result::Result<(), (ResponseError, String)> {
    if total <= current {
        return Err((
            ResponseError::InvalidPartitions,
            format!("topic '{name}' has {current} partitions; the count can only grow, {total} asked"),
        ));
    }
    if total > MAX_PARTITIONS {
        return Err((
            ResponseError::InvalidPartitions,
            format!("partitions must be 1..={MAX_PARTITIONS}, got {total}"),
        ));
    }
    Ok(())
}

/// A topic and the logs of the partitions just created for it.
pub type WithLogs = (TopicInfo, Vec<Arc<PartitionLog>>);

/// One topic as the catalogue knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicInfo {
    pub name: String,
    pub partitions: i32,
    /// Kafka topic id (Metadata v10+), stable across restarts.
    pub id: [u8; 16],
    pub created_at_ns: u64,
    /// Topic configs set explicitly (see `topic_config`); older catalogues have none.
    #[serde(default)]
    pub configs: TopicConfigs,
    /// Log start offsets moved by DeleteRecords, by partition (none: each log's first record).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub log_starts: BTreeMap<i32, i64>,
}

/// The catalogue, shared by every connection.
pub struct Topics {
    store: Arc<LogStore>,
    topics: Mutex<BTreeMap<String, TopicInfo>>,
}

impl Topics {
    /// Loads `topics.json` and makes sure every partition's log exists.
    pub fn load(store: Arc<LogStore>) -> Result<Topics> {
        let topics: BTreeMap<String, TopicInfo> =
            store.read_json_meta(CATALOGUE_FILE, "topic catalogue")?.unwrap_or_default();
        for topic in topics.values() {
            for p in 0..topic.partitions {
                let log = store.create_partition(&topic.name, p)?;
                if let Some(start) = topic.log_starts.get(&p) {
                    log.set_log_start(*start);
                }
            }
        }
        Ok(Topics { store, topics: Mutex::new(topics) })
    }

    pub fn get(&self, name: &str) -> Option<TopicInfo> {
        self.lock().get(name).cloned()
    }

    pub fn list(&self) -> Vec<TopicInfo> {
        self.lock().values().cloned().collect()
    }

    /// The log of one partition, if the topic and partition exist.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        let known = self.lock().get(topic).is_some_and(|t| (0..t.partitions).contains(&partition));
        if known {
            self.store.partition(topic, partition)
        } else {
            None
        }
    }

    /// Creates a topic. Kafka-level refusals come back as the error code to send.
    pub fn create(
        &self,
        name: &str,
        partitions: i32,
        configs: TopicConfigs,
    ) -> std::result::Result<WithLogs, (ResponseError, String)> {
        validate_name(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err((
                ResponseError::InvalidPartitions,
                format!("partitions must be 1..={MAX_PARTITIONS}, got {partitions}"),
            ));
        }
        let mut topics = self.lock();
        if topics.contains_key(name) {
            return Err((ResponseError::TopicAlreadyExists, format!("topic '{name}' already exists")));
        }
        let now = crate::telemetry::now_ns();
        let info = TopicInfo {
            name: name.to_string(),
            partitions,
            id: topic_id(name, now),
            created_at_ns: now,
            configs,
            log_starts: BTreeMap::new(),
        };
        let internal = |e: BrokerError| (ResponseError::UnknownServerError, e.to_string());
        let mut logs = Vec::new();
        for p in 0..partitions {
            logs.push(self.store.create_partition(name, p).map_err(internal)?);
        }
        topics.insert(name.to_string(), info.clone());
        self.persist(&topics).map_err(internal)?;
        tracing::info!(topic = name, partitions, "topic created");
        Ok((info, logs))
    }

    /// Grows a topic to `total` partitions (Kafka's CreatePartitions: counts only grow).
    pub fn add_partitions(
        &self,
        name: &str,
        total: i32,
    ) -> std::result::Result<WithLogs, (ResponseError, String)> {
        let mut topics = self.lock();
        let Some(info) = topics.get(name).cloned() else {
            return Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")));
        };
        check_partition_growth(name, info.partitions, total)?;
        let internal = |e: BrokerError| (ResponseError::UnknownServerError, e.to_string());
        let mut logs = Vec::new();
        for p in info.partitions..total {
            logs.push(self.store.create_partition(name, p).map_err(internal)?);
        }
        let grown = TopicInfo { partitions: total, ..info };
        topics.insert(name.to_string(), grown.clone());
        self.persist(&topics).map_err(internal)?;
        tracing::info!(topic = name, partitions = total, "partitions added");
        Ok((grown, logs))
    }

    /// Replaces a topic's configs (already checked by `topic_config`).
    pub fn set_configs(
        &self,
        name: &str,
        configs: TopicConfigs,
    ) -> std::result::Result<(), (ResponseError, String)> {
        let mut topics = self.lock();
        let Some(info) = topics.get_mut(name) else {
            return Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")));
        };
        info.configs = configs;
        self.persist(&topics).map_err(|e| (ResponseError::UnknownServerError, e.to_string()))
    }

    /// DeleteRecords: records the new log start of a partition (durably, before clients see
    /// it), moves the log's start and drops the segments wholly below it. `offset` is checked
    /// by the caller against the high watermark. Returns the log start now.
    pub fn delete_records(
        &self,
        name: &str,
        partition: i32,
        offset: i64,
    ) -> std::result::Result<i64, (ResponseError, String)> {
        let mut topics = self.lock();
        let (Some(info), Some(log)) = (topics.get_mut(name), self.store.partition(name, partition)) else {
            return Err((
                ResponseError::UnknownTopicOrPartition,
                format!("{name}-{partition} does not exist"),
            ));
        };
        let internal = |e: BrokerError| (ResponseError::UnknownServerError, e.to_string());
        if offset > info.log_starts.get(&partition).copied().unwrap_or(0) {
            info.log_starts.insert(partition, offset);
            self.persist(&topics).map_err(internal)?;
        }
        drop(topics);
        let start = log.set_log_start(offset);
        log.delete_segments_below(start).map_err(internal)?;
        Ok(start)
    }

    /// Deletes a topic and its partition files.
    pub fn delete(&self, name: &str) -> std::result::Result<(), (ResponseError, String)> {
        let mut topics = self.lock();
        let Some(info) = topics.remove(name) else {
            return Err((ResponseError::UnknownTopicOrPartition, format!("topic '{name}' does not exist")));
        };
        let internal = |e: BrokerError| (ResponseError::UnknownServerError, e.to_string());
        self.persist(&topics).map_err(internal)?;
        for p in 0..info.partitions {
            self.store.delete_partition(name, p).map_err(internal)?;
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(())
    }

    fn persist(&self, topics: &BTreeMap<String, TopicInfo>) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(topics).expect("topic catalogue serializes");
        self.store.write_meta(CATALOGUE_FILE, &bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, TopicInfo>> {
        // A panic while holding this lock cannot leave the map half-updated (inserts are single
        // operations), so a poisoned lock is still safe to use.
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn validate_name(name: &str) -> std::result::Result<(), (ResponseError, String)> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty()
        || name.len() > MAX_TOPIC_NAME
        || name == "."
        || name == ".."
        || !name.chars().all(legal)
    {
        return Err((
            ResponseError::InvalidTopicException,
            format!(
                "topic name '{name}' must be 1..={MAX_TOPIC_NAME} characters of [a-zA-Z0-9._-] \
                 and not '.' or '..'"
            ),
        ));
    }
    Ok(())
}

/// A topic id that differs between a topic and its re-creation under the same name.
fn topic_id(name: &str, created_at_ns: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&created_at_ns.to_be_bytes());
    id[8..12].copy_from_slice(&crc32c::crc32c(name.as_bytes()).to_be_bytes());
    id[12..].copy_from_slice(&(name.len() as u32).to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_kafka_rules() {
        assert!(validate_name("orders-v2.eu_1").is_ok());
        for bad in ["", ".", "..", "has space", "slash/name", &"x".repeat(250)] {
            let (code, msg) = validate_name(bad).unwrap_err();
            assert_eq!(code, ResponseError::InvalidTopicException);
            assert!(msg.contains("[a-zA-Z0-9._-]"));
        }
    }
}
