//! Topic-level configs, as Kafka names them: which names exist, which values each takes, its
//! default, and whether this broker acts on it.
//!
//! Clients and tools set these through CreateTopics, AlterConfigs and IncrementalAlterConfigs
//! and read them back with DescribeConfigs. Every Kafka topic config name is accepted (tools set
//! `retention.ms` routinely) and its value checked, so a typo or a bad value is refused with
//! INVALID_CONFIG instead of being stored; the ones the broker acts on are marked `applied`
//! (docs/compatibility.md lists them). Only values that differ from the default are stored.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

/// A topic's explicitly set configs, name -> value.
pub type TopicConfigs = BTreeMap<String, String>;

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

const fn def(name: &'static str, kind: ValueKind, default: &'static str, min: i64) -> ConfigDef {
    ConfigDef { name, kind, default, choices: &[], min, applied: false }
}

const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

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

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

fn invalid(msg: String) -> ConfigError {
    (ResponseError::InvalidConfig, msg)
}

/// Checks one value against its definition; the error says what was wrong.
pub fn check_value(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = find(name).ok_or_else(|| invalid(format!("unknown topic config name: {name}")))?;
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

fn list_items(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Builds a topic's configs from `(name, value)` pairs as CreateTopics and AlterConfigs send
/// them (a null value means the default). Values equal to the default are not stored.
pub fn from_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<TopicConfigs, ConfigError> {
    let mut out = TopicConfigs::new();
    for (name, value) in pairs {
        match value {
            Some(v) => {
                check_value(name, v)?;
                set(&mut out, name, v);
            }
            None => {
                find(name).ok_or_else(|| invalid(format!("unknown topic config name: {name}")))?;
                out.remove(name);
            }
        }
    }
    Ok(out)
}

fn set(configs: &mut TopicConfigs, name: &str, value: &str) {
    if find(name).is_some_and(|d| d.default == value) {
        configs.remove(name);
    } else {
        configs.insert(name.to_string(), value.to_string());
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

/// Applies IncrementalAlterConfigs' operations to `current`; APPEND and SUBTRACT only on lists.
pub fn alter(
    current: &TopicConfigs,
    ops: &[(String, AlterOp, Option<String>)],
) -> Result<TopicConfigs, ConfigError> {
    let mut out = current.clone();
    for (name, op, value) in ops {
        let def = find(name).ok_or_else(|| invalid(format!("unknown topic config name: {name}")))?;
        let value = value.as_deref().unwrap_or("");
        match op {
            AlterOp::Delete => {
                out.remove(name);
            }
            AlterOp::Set => {
                check_value(name, value)?;
                set(&mut out, name, value);
            }
            AlterOp::Append | AlterOp::Subtract => {
                if def.kind != ValueKind::List {
                    return Err(invalid(format!(
                        "{op:?} applies to list configs only, and {name} is not one"
                    )));
                }
                let now = out.get(name.as_str()).map(String::as_str).unwrap_or(def.default);
                let mut items: Vec<&str> = list_items(now).collect();
                for item in list_items(value) {
                    if *op == AlterOp::Append && !items.contains(&item) {
                        items.push(item);
                    } else if *op == AlterOp::Subtract {
                        items.retain(|i| *i != item);
                    }
                }
                let joined = items.join(",");
                check_value(name, &joined)?;
                set(&mut out, name, &joined);
            }
        }
    }
    Ok(out)
}

/// The value in effect: the stored one or the default.
pub fn value<'a>(configs: &'a TopicConfigs, def: &'static ConfigDef) -> &'a str {
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
        let err = from_pairs([("dummy.doesntexist", Some("1"))]).unwrap_err();
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
            let err = from_pairs([(name, Some(value))]).unwrap_err();
            assert!(err.1.contains(name) && err.1.contains(value), "{name}={value}: {}", err.1);
        }
    }

    #[test]
    fn defaults_are_not_stored_and_set_values_are() {
        let c = from_pairs([("compression.type", Some("lz4")), ("retention.ms", Some("604800000"))]).unwrap();
        assert_eq!(c, TopicConfigs::from([("compression.type".into(), "lz4".into())]));
    }

    #[test]
    fn incremental_operations_edit_lists_and_values() {
        let c = TopicConfigs::new();
        let op = |name: &str, op, v: Option<&str>| (name.to_string(), op, v.map(str::to_string));
        let c = alter(&c, &[op("cleanup.policy", AlterOp::Append, Some("compact"))]).unwrap();
        assert_eq!(c["cleanup.policy"], "delete,compact");
        assert!(is_compacted(&c));
        let c = alter(&c, &[op("cleanup.policy", AlterOp::Subtract, Some("compact"))]).unwrap();
        assert!(!c.contains_key("cleanup.policy"), "back to the default: {c:?}");
        let c = alter(&c, &[op("retention.ms", AlterOp::Set, Some("1000"))]).unwrap();
        assert_eq!(c["retention.ms"], "1000");
        let c = alter(&c, &[op("retention.ms", AlterOp::Delete, None)]).unwrap();
        assert!(c.is_empty());
        let err = alter(&c, &[op("retention.ms", AlterOp::Append, Some("1"))]).unwrap_err();
        assert!(err.1.contains("list"), "{}", err.1);
    }
}
