//! A broker's configs as Kafka's admin APIs see them (DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs on a BROKER resource).
//!
//! Two kinds, as in Kafka:
//! - **static**: what this broker runs with, from its flags and config file (`Config`). They are
//!   described read-only; altering one is refused, because the broker would keep running with the
//!   old value while describing the new one.
//! - **dynamic**: the names Kafka lets an admin change on a running broker (thread pools, SASL
//!   and cleaner settings, log defaults...). The lab has no SASL, no cleaner and no thread pools
//!   of that shape, so it acts on none of them, but it stores them per broker, durably, and
//!   describes them back with their source, so admin tools and scripts that set them work
//!   (docs/compatibility.md). Kafka's cluster-wide defaults (the empty broker name) are not kept.

use std::sync::{Arc, Mutex};

use kafka_protocol::ResponseError;

use crate::config::Config;
use crate::error::Result;
use crate::log::LogStore;
use crate::topic_config::{def, Catalogue, ConfigDef, ConfigError, ConfigValues, ValueKind, COMPRESSION};

const DYNAMIC_FILE: &str = "dynamic-broker-configs.json";

/// Kafka 3.x's dynamically updatable per-broker configs, with its defaults; those this broker
/// takes from its own config (`log.segment.bytes`, `max.connections`) are static here instead.
const DYNAMIC_CONFIGS: &[ConfigDef] = &[
    def("background.threads", ValueKind::Int, "10", 1),
    ConfigDef { choices: COMPRESSION, ..def("compression.type", ValueKind::String, "producer", 0) },
    def("follower.replication.throttled.rate", ValueKind::Long, "9223372036854775807", 0),
    def("leader.replication.throttled.rate", ValueKind::Long, "9223372036854775807", 0),
    def("log.cleaner.backoff.ms", ValueKind::Long, "15000", 0),
    def("log.cleaner.dedupe.buffer.size", ValueKind::Long, "134217728", 0),
    def("log.cleaner.threads", ValueKind::Int, "1", 0),
    ConfigDef { choices: &["delete", "compact"], ..def("log.cleanup.policy", ValueKind::List, "delete", 0) },
    def("log.flush.interval.messages", ValueKind::Long, "9223372036854775807", 1),
    def("log.index.interval.bytes", ValueKind::Int, "4096", 0),
    ConfigDef {
        choices: &["CreateTime", "LogAppendTime"],
        ..def("log.message.timestamp.type", ValueKind::String, "CreateTime", 0)
    },
    def("log.preallocate", ValueKind::Boolean, "false", 0),
    def("log.retention.bytes", ValueKind::Long, "-1", -1),
    def("log.segment.delete.delay.ms", ValueKind::Long, "60000", 0),
    def("max.connection.creation.rate", ValueKind::Int, "2147483647", 0),
    def("max.connections.per.ip", ValueKind::Int, "2147483647", 0),
    def("message.max.bytes", ValueKind::Int, "1048588", 0),
    def("metric.reporters", ValueKind::List, "", 0),
    def("min.insync.replicas", ValueKind::Int, "1", 1),
    def("num.io.threads", ValueKind::Int, "8", 1),
    def("num.network.threads", ValueKind::Int, "3", 1),
    def("num.recovery.threads.per.data.dir", ValueKind::Int, "2", 1),
    def("num.replica.fetchers", ValueKind::Int, "1", 1),
    def("producer.id.expiration.ms", ValueKind::Int, "86400000", 1),
    def("sasl.enabled.mechanisms", ValueKind::List, "GSSAPI", 0),
    def("sasl.kerberos.kinit.cmd", ValueKind::String, "/usr/bin/kinit", 0),
    def("sasl.kerberos.min.time.before.relogin", ValueKind::Long, "60000", 0),
    def("sasl.kerberos.service.name", ValueKind::String, "", 0),
    def("sasl.kerberos.ticket.renew.jitter", ValueKind::Double, "0.05", 0),
    def("sasl.kerberos.ticket.renew.window.factor", ValueKind::Double, "0.8", 0),
    def("sasl.login.refresh.window.factor", ValueKind::Double, "0.8", 0),
    def("unclean.leader.election.enable", ValueKind::Boolean, "false", 0),
];

/// Kafka's dynamic broker configs.
pub const DYNAMIC: Catalogue = Catalogue { what: "dynamic broker", defs: DYNAMIC_CONFIGS };

/// The static configs this broker describes: name, value, type.
pub fn static_configs(c: &Config) -> Vec<(&'static str, String, ValueKind)> {
    let replication = c.cluster.as_ref().map_or(1, |cl| cl.replication_factor);
    vec![
        ("broker.id", c.node_id.to_string(), ValueKind::Int),
        ("num.partitions", c.default_partitions.to_string(), ValueKind::Int),
        ("default.replication.factor", replication.to_string(), ValueKind::Int),
        ("auto.create.topics.enable", c.auto_create_topics.to_string(), ValueKind::Boolean),
        ("log.segment.bytes", c.segment_bytes.to_string(), ValueKind::Int),
        ("socket.request.max.bytes", c.max_frame_bytes.to_string(), ValueKind::Int),
        ("max.connections", c.max_connections.to_string(), ValueKind::Int),
        ("queued.max.request.bytes", c.max_request_bytes_in_progress.to_string(), ValueKind::Long),
        ("fetch.max.bytes", c.fetch_max_bytes.to_string(), ValueKind::Int),
        ("connections.max.idle.ms", c.connections_max_idle_ms.to_string(), ValueKind::Long),
        ("group.initial.rebalance.delay.ms", c.group_initial_rebalance_delay_ms.to_string(), ValueKind::Int),
        ("log.flush.policy", c.fsync.to_string(), ValueKind::String),
    ]
}

/// Checks that a BROKER resource names this broker, and that none of `names` is static here.
pub fn check_alter<'a>(
    c: &Config,
    resource: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ConfigError> {
    check_resource(c, resource, true)?;
    let statics = static_configs(c);
    for name in names {
        if statics.iter().any(|(s, _, _)| *s == name) {
            return Err((
                ResponseError::InvalidConfig,
                format!("{name} is static here: set it in the broker's config file or flags and restart"),
            ));
        }
    }
    Ok(())
}

/// Whether a BROKER resource name is this broker. The empty name is Kafka's "the broker that
/// answers" for DescribeConfigs and its cluster-wide default for the alter APIs, which this lab
/// does not keep.
pub fn check_resource(c: &Config, resource: &str, altering: bool) -> Result<(), ConfigError> {
    if resource.is_empty() && altering {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "cluster-wide dynamic broker defaults are not kept here; alter each broker by its id ({})",
                c.node_id
            ),
        ));
    }
    if !resource.is_empty() && resource != c.node_id.to_string() {
        return Err((ResponseError::InvalidRequest, format!("this is broker {}, not {resource}", c.node_id)));
    }
    Ok(())
}

/// This broker's dynamic configs, persisted in the data dir before a change is acknowledged.
pub struct DynamicConfigs {
    store: Arc<LogStore>,
    values: Mutex<ConfigValues>,
}

impl DynamicConfigs {
    pub fn load(store: Arc<LogStore>) -> Result<DynamicConfigs> {
        let values: ConfigValues =
            store.read_json_meta(DYNAMIC_FILE, "dynamic broker config file")?.unwrap_or_default();
        Ok(DynamicConfigs { store, values: Mutex::new(values) })
    }

    /// The values set (those left at Kafka's default are not stored).
    pub fn get(&self) -> ConfigValues {
        self.lock().clone()
    }

    /// Replaces every set value, durably first.
    pub fn replace(&self, values: ConfigValues) -> Result<()> {
        let mut current = self.lock();
        let bytes = serde_json::to_vec_pretty(&values).expect("config values serialize");
        self.store.write_meta(DYNAMIC_FILE, &bytes)?;
        *current = values;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ConfigValues> {
        // Replaced whole after the write, so a poisoned lock still holds a whole map.
        self.values.lock().unwrap_or_else(|p| p.into_inner())
    }
}
