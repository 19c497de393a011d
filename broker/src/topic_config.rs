//! Topic-level configs, as Kafka names them: which names exist, which values each takes, its
//! default, and whether this broker acts on it. The checks and the incremental operations work on
//! any [`Catalogue`]; `dynamic_config` has the second one, Kafka's dynamic broker configs.
//!
//! Clients and tools set these through CreateTopics, AlterConfigs and IncrementalAlterConfigs
//! and read them back with DescribeConfigs. Every Kafka topic config name is accepted (tools set
//! `retention.ms` routinely) and its value checked, so a typo or a bad value is refused with
//! INVALID_CONFIG instead of being stored; the ones the broker acts on are marked `applied`
//! (docs/compatibility.md lists them). Only values that differ from the default are stored.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

/// Explicitly set configs, name -> value.
pub type ConfigValues = BTreeMap<String, String>;

/// A topic's explicitly set configs.
pub type TopicConfigs = ConfigValues;

/// A Kafka error code and its message.
pub type ConfigError = (ResponseError, String);

/// The value types of DescribeConfigs v3+ (`config_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Boolean,
    String,
    Int,
    Long,
    Double,
    List,
}

impl ValueKind {
    pub fn code(self) -> i8 {
        match self {
            ValueKind::Boolean => 1,
            ValueKind::String => 2,
            ValueKind::Int => 3,
            ValueKind::Long => 5,
            ValueKind::Double => 6,
            ValueKind::List => 7,
        }
    }
}

/// One config: its name, type, default and the values it accepts.
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ValueKind,
    pub default: &'static str,
    /// For strings and lists: the values allowed (empty: any).
    pub choices: &'static [&'static str],
    /// For numbers: the smallest value allowed.
    pub min: i64,
    /// Whether this broker acts on the value (the others are stored and described only).
    pub applied: bool,
}

pub const fn def(name: &'static str, kind: ValueKind, default: &'static str, min: i64) -> ConfigDef {
    ConfigDef { name, kind, default, choices: &[], min, applied: false }
}

pub const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Kafka 3.x's topic configs with its defaults.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    ConfigDef {
        choices: &["delete", "compact"],
        applied: true,
        ..def("cleanup.policy", ValueKind::List, "delete", 0)
    },
    ConfigDef { choices: COMPRESSION, ..def("compression.type", ValueKind::String, "producer", 0) },
    def("delete.retention.ms", ValueKind::Long, "86400000", 0),
    def("file.delete.delay.ms", ValueKind::Long, "60000", 0),
    def("flush.messages", ValueKind::Long, "9223372036854775807", 1),
    def("flush.ms", ValueKind::Long, "9223372036854775807", 0),
    def("follower.replication.throttled.replicas", ValueKind::List, "", 0),
    def("index.interval.bytes", ValueKind::Int, "4096", 0),
    def("leader.replication.throttled.replicas", ValueKind::List, "", 0),
    def("local.retention.bytes", ValueKind::Long, "-2", -2),
    def("local.retention.ms", ValueKind::Long, "-2", -2),
    def("max.compaction.lag.ms", ValueKind::Long, "9223372036854775807", 1),
    def("max.message.bytes", ValueKind::Int, "1048588", 0),
    def("message.downconversion.enable", ValueKind::Boolean, "true", 0),
    def("message.format.version", ValueKind::String, "3.0-IV1", 0),
    def("message.timestamp.after.max.ms", ValueKind::Long, "9223372036854775807", 0),
    def("message.timestamp.before.max.ms", ValueKind::Long, "9223372036854775807", 0),
    def("message.timestamp.difference.max.ms", ValueKind::Long, "9223372036854775807", 0),
    ConfigDef {
        choices: &["CreateTime", "LogAppendTime"],
        ..def("message.timestamp.type", ValueKind::String, "CreateTime", 0)
    },
    def("min.cleanable.dirty.ratio", ValueKind::Double, "0.5", 0),
    def("min.compaction.lag.ms", ValueKind::Long, "0", 0),
    def("min.insync.replicas", ValueKind::Int, "1", 1),
    def("preallocate", ValueKind::Boolean, "false", 0),
    def("remote.storage.enable", ValueKind::Boolean, "false", 0),
    def("retention.bytes", ValueKind::Long, "-1", -1),
    def("retention.ms", ValueKind::Long, "604800000", -1),
    def("segment.bytes", ValueKind::Int, "1073741824", 14),
    def("segment.index.bytes", ValueKind::Int, "10485760", 4),
    def("segment.jitter.ms", ValueKind::Long, "0", 0),
    def("segment.ms", ValueKind::Long, "604800000", 1),
    def("unclean.leader.election.enable", ValueKind::Boolean, "false", 0),
];

/// A set of config definitions and what they configure ("topic", "dynamic broker"), for the
/// error messages.
pub struct Catalogue {
    pub what: &'static str,
    pub defs: &'static [ConfigDef],
}

/// Kafka's topic configs.
pub const TOPIC: Catalogue = Catalogue { what: "topic", defs: TOPIC_CONFIGS };

fn invalid(msg: String) -> ConfigError {
    (ResponseError::InvalidConfig, msg)
}

impl Catalogue {
    pub fn find(&self, name: &str) -> Option<&'static ConfigDef> {
        self.defs.iter().find(|d| d.name == name)
    }

    fn known(&self, name: &str) -> Result<&'static ConfigDef, ConfigError> {
        self.find(name).ok_or_else(|| invalid(format!("unknown {} config name: {name}", self.what)))
    }

    /// Checks one value against its definition; the error says what was wrong.
    pub fn check_value(&self, name: &str, value: &str) -> Result<(), ConfigError> {
        check_value(self.known(name)?, value)
    }

    /// Builds a resource's configs from `(name, value)` pairs as CreateTopics and AlterConfigs
    /// send them (a null value means the default). Values equal to the default are not stored.
    pub fn from_pairs<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<ConfigValues, ConfigError> {
        let mut out = ConfigValues::new();
        for (name, value) in pairs {
            let def = self.known(name)?;
            match value {
                Some(v) => {
                    check_value(def, v)?;
                    set(&mut out, def, v);
                }
                None => {
                    out.remove(name);
                }
            }
        }
        Ok(out)
    }

    /// Applies IncrementalAlterConfigs' operations to `current`; APPEND and SUBTRACT only on
    /// lists.
    pub fn alter(
        &self,
        current: &ConfigValues,
        ops: &[(String, AlterOp, Option<String>)],
    ) -> Result<ConfigValues, ConfigError> {
        let mut out = current.clone();
        for (name, op, value) in ops {
            let def = self.known(name)?;
            let value = value.as_deref().unwrap_or("");
            match op {
                AlterOp::Delete => {
                    out.remove(name);
                }
                AlterOp::Set => {
                    check_value(def, value)?;
                    set(&mut out, def, value);
                }
                AlterOp::Append | AlterOp::Subtract => {
                    let joined = edit_list(def, value_of(&out, def), *op, value)?;
                    check_value(def, &joined)?;
                    set(&mut out, def, &joined);
                }
            }
        }
        Ok(out)
    }
}

fn check_value(def: &ConfigDef, value: &str) -> Result<(), ConfigError> {
    let name = def.name;
    let bad = |what: &str| invalid(format!("invalid value {value:?} for {name}: {what}"));
    match def.kind {
        ValueKind::Boolean => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(bad("expected true or false"));
            }
        }
        ValueKind::Int | ValueKind::Long => {
            let n: i64 = value.trim().parse().map_err(|_| bad("expected an integer"))?;
            if def.kind == ValueKind::Int && i32::try_from(n).is_err() {
                return Err(bad("out of the 32-bit range"));
            }
            if n < def.min {
                return Err(bad(&format!("must be at least {}", def.min)));
            }
        }
        ValueKind::Double => {
            let x: f64 = value.trim().parse().map_err(|_| bad("expected a number"))?;
            if !(0.0..=1.0).contains(&x) {
                return Err(bad("must be between 0 and 1"));
            }
        }
        ValueKind::String => {
            if !def.choices.is_empty() && !def.choices.contains(&value) {
                return Err(bad(&format!("expected one of {}", def.choices.join(", "))));
            }
        }
        ValueKind::List => {
            for item in list_items(value) {
                if !def.choices.is_empty() && !def.choices.contains(&item) {
                    return Err(bad(&format!("{item:?} is not one of {}", def.choices.join(", "))));
                }
            }
        }
    }
    Ok(())
}

/// APPEND or SUBTRACT `items` on a list config's value `now`.
fn edit_list(def: &ConfigDef, now: &str, op: AlterOp, items: &str) -> Result<String, ConfigError> {
    if def.kind != ValueKind::List {
        return Err(invalid(format!("{op:?} applies to list configs only, and {} is not one", def.name)));
    }
    let mut out: Vec<&str> = list_items(now).collect();
    for item in list_items(items) {
        if op == AlterOp::Append && !out.contains(&item) {
            out.push(item);
        } else if op == AlterOp::Subtract {
            out.retain(|i| *i != item);
        }
    }
    Ok(out.join(","))
}

fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn set(configs: &mut ConfigValues, def: &ConfigDef, value: &str) {
    if def.default == value {
        configs.remove(def.name);
    } else {
        configs.insert(def.name.to_string(), value.to_string());
    }
}

/// IncrementalAlterConfigs' operations (its `config_operation` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    pub fn from_code(code: i8) -> Result<AlterOp, ConfigError> {
        match code {
            0 => Ok(AlterOp::Set),
            1 => Ok(AlterOp::Delete),
            2 => Ok(AlterOp::Append),
            3 => Ok(AlterOp::Subtract),
            other => Err((ResponseError::InvalidRequest, format!("unknown config operation {other}"))),
        }
    }
}

/// The value in effect: the stored one or the default.
pub fn value_of<'a>(configs: &'a ConfigValues, def: &'static ConfigDef) -> &'a str {
    configs.get(def.name).map(String::as_str).unwrap_or(def.default)
}

/// `cleanup.policy` includes `compact`: Kafka refuses records without a key there.
pub fn is_compacted(configs: &TopicConfigs) -> bool {
    configs.get("cleanup.policy").is_some_and(|v| list_items(v).any(|i| i == "compact"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_and_bad_values_are_refused_with_what_was_wrong() {
        let err = TOPIC.from_pairs([("dummy.doesntexist", Some("1"))]).unwrap_err();
        assert_eq!(err.0, ResponseError::InvalidConfig);
        assert!(err.1.contains("dummy.doesntexist"), "{}", err.1);
        for (name, value) in [
            ("retention.ms", "soon"),
            ("cleanup.policy", "compact,shred"),
            ("compression.type", "brotli"),
            ("min.insync.replicas", "0"),
            ("preallocate", "yes"),
            ("segment.bytes", "99999999999"),
        ] {
            let err = TOPIC.from_pairs([(name, Some(value))]).unwrap_err();
            assert!(err.1.contains(name) && err.1.contains(value), "{name}={value}: {}", err.1);
        }
    }

    #[test]
    fn defaults_are_not_stored_and_set_values_are() {
        let c = TOPIC
            .from_pairs([("compression.type", Some("lz4")), ("retention.ms", Some("604800000"))])
            .unwrap();
        assert_eq!(c, TopicConfigs::from([("compression.type".into(), "lz4".into())]));
    }

    #[test]
    fn incremental_operations_edit_lists_and_values() {
        let c = TopicConfigs::new();
        let op = |name: &str, op, v: Option<&str>| (name.to_string(), op, v.map(str::to_string));
        let c = TOPIC.alter(&c, &[op("cleanup.policy", AlterOp::Append, Some("compact"))]).unwrap();
        assert_eq!(c["cleanup.policy"], "delete,compact");
        assert!(is_compacted(&c));
        let c = TOPIC.alter(&c, &[op("cleanup.policy", AlterOp::Subtract, Some("compact"))]).unwrap();
        assert!(!c.contains_key("cleanup.policy"), "back to the default: {c:?}");
        let c = TOPIC.alter(&c, &[op("retention.ms", AlterOp::Set, Some("1000"))]).unwrap();
        assert_eq!(c["retention.ms"], "1000");
        let c = TOPIC.alter(&c, &[op("retention.ms", AlterOp::Delete, None)]).unwrap();
        assert!(c.is_empty());
        let err = TOPIC.alter(&c, &[op("retention.ms", AlterOp::Append, Some("1"))]).unwrap_err();
        assert!(err.1.contains("list"), "{}", err.1);
    }
}
